"""Signed webhooks on the real stack: an API process of the test's own on the session's Triton (its data folder
kept across a restart), a job made by the tiny demo, a receiver on 127.0.0.1 that fails until the API has been
restarted and once more after: the delivery, stored in the job table, is made by the new process with the same
webhook id and body, its signature checked by the SDK's ``verify_webhook``; URLs outside the allow-list and
garbage are 400 (docs/ARCHITECTURE.md, "Webhooks")."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

from benchmarks.stack import ApiProcess
from tests.support.stack import start_sibling_api
from tests.support.webhook_receiver import webhook_receiver
from visualizr.launcher import TritonServer
from visualizr.settings import Settings
from visualizr_client import BadRequestError, VisualizrClient, verify_webhook

SECRET = "whsec_" + base64.b64encode(b"integration webhook secret").decode()
WEBHOOKS = {
    "VISUALIZR_WEBHOOK_SECRET": SECRET,
    "VISUALIZR_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",  # the receiver; private addresses otherwise stay refused
    "VISUALIZR_WEBHOOK_POLL_MS": "100",
}
TINY = {"width": 64, "height": 64, "num_frames": 2, "num_inference_steps": 1, "seed": 7}


def deliveries(api: ApiProcess, request_id: str) -> list[dict[str, object]]:
    with VisualizrClient(api.base_url, timeout=30) as client:
        return [d.to_dict() for d in client.get_status(request_id).webhook_deliveries or []]


def test_a_signed_webhook_survives_an_api_restart_between_attempts(
    triton: TritonServer, stack_env: tuple[Settings, dict[str, str]], tmp_path: Path
) -> None:
    data_dir = tmp_path / "api"
    with webhook_receiver() as receiver:
        receiver.answers = [500] * 100  # every attempt fails while the first process lives
        first = start_sibling_api(stack_env[1], data_dir, **WEBHOOKS)
        try:
            with VisualizrClient(first.base_url, timeout=30) as client:
                for url in ("http://10.0.0.1/hook", "http://localhost/hook", "ftp://127.0.0.1/", "http://"):
                    try:
                        client.generate_video("refused", webhook_url=url, **TINY)
                        raise AssertionError(f"{url} was accepted")
                    except BadRequestError as exc:
                        assert exc.code == "INVALID_PARAMETERS" and exc.details["field"] == "webhook_url", exc
                job = client.generate_video("a red balloon", webhook_url=receiver.url, **TINY)
            receiver.wait_for(1, timeout=180)
        finally:
            first.stop()
        failed = len(receiver.received)
        receiver.answers = [503]  # the new process's first try fails too, its second succeeds
        started = time.monotonic()
        second = start_sibling_api(stack_env[1], data_dir, **WEBHOOKS)
        try:
            posts = receiver.wait_for(failed + 2, timeout=60)
            assert {p.headers["webhook-id"] for p in posts} == {f"msg_{job.request_id}_completed"}
            assert len({p.body for p in posts}) == 1
            document = json.loads(verify_webhook(posts[-1].body, posts[-1].headers, SECRET))
            assert (document["request_id"], document["status"]) == (job.request_id, "completed")
            assert document["result"]["video_url"].endswith(".mp4")
            time.sleep(0.5)
            (delivery,) = deliveries(second, job.request_id)
            codes = [a["status_code"] for a in delivery["attempts"]]  # type: ignore[union-attr]
            assert delivery["status"] == "delivered" and codes == [500] * failed + [503, 200]
        finally:
            second.stop()
        time.sleep(0.5)
        assert len(receiver.received) == failed + 2, time.monotonic() - started  # exactly once delivered
