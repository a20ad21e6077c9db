"""Signed webhooks through the real app on the fake backend (in-process), with a real receiver on 127.0.0.1:
signatures checked by the SDK's helper, every terminal event once per webhook id, retries with the same id and
body, the attempts on the job's status, a restart between attempts, two replicas on one PostgreSQL sending each
event once, URL validation (docs/ARCHITECTURE.md, "Webhooks")."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from benchmarks.backing_services import PostgresServer
from tests.support.fakes import FakeBackend, error_of, make_settings, running_app, wait_for, wait_until
from tests.support.webhook_receiver import Received, webhook_receiver
from visualizr.frontend.errors import InvalidParametersError
from visualizr.frontend.webhooks.signing import signed_headers
from visualizr.frontend.webhooks.targets import WebhookPolicy
from visualizr_client import WebhookVerificationError, verify_webhook

SECRET = "whsec_" + base64.b64encode(b"a test secret of 24 bytes").decode()
GENERATE = "/api/v1/generate/video"
SMALL = {"prompt": "a red balloon", "width": 64, "height": 64, "num_frames": 2, "num_inference_steps": 2}


def webhook_settings(tmp_path: Path, **overrides: Any) -> Any:
    values = {"webhook_secret": SECRET, "webhook_allow_private": True, "webhook_poll_ms": 50, **overrides}
    return make_settings(tmp_path, **values)


def verified(post: Received) -> dict[str, Any]:
    return json.loads(verify_webhook(post.body, post.headers, SECRET))


# ---------------------------------------------------------------------------------------------- signatures


def test_signature_verifies_and_tampering_is_refused() -> None:
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    body = b'{"request_id":"video_req_1","status":"completed"}'
    headers = signed_headers(key, "msg_1", int(time.time()), body)
    assert verify_webhook(body, headers, SECRET) == body
    assert verify_webhook(body, {k.title(): v for k, v in headers.items()}, key) == body  # any case, raw bytes
    for payload, changed in [
        (body + b" ", headers),
        (body, {**headers, "webhook-id": "msg_2"}),
        (body, {**headers, "webhook-signature": "v1," + base64.b64encode(b"x" * 32).decode()}),
        (body, signed_headers(key, "msg_1", int(time.time()) - 301, body)),  # outside the tolerance
        (body, {k: v for k, v in headers.items() if k != "webhook-signature"}),
    ]:
        with pytest.raises(WebhookVerificationError):
            verify_webhook(payload, changed, SECRET)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(body, headers, "whsec_" + base64.b64encode(b"another secret").decode())
    rotated = {**headers, "webhook-signature": "v1,bm90IGl0 " + headers["webhook-signature"]}
    assert verify_webhook(body, rotated, SECRET) == body  # one of several signatures matches


# ---------------------------------------------------------------------------------------------- URLs


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/hook",
        "not a url",
        "http://",
        "http:///path",
        "http://exa mple.com/",
        "http://example.com:99999/",
        "javascript:alert(1)",
        "https://example.com/" + "x" * 2100,
    ],
)
def test_garbage_urls_are_refused(url: str) -> None:
    policy = WebhookPolicy(webhook_settings(Path("/nonexistent")))
    with pytest.raises(InvalidParametersError) as caught:
        asyncio.run(policy.target(url, None))
    assert caught.value.details["field"] == "webhook_url"


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:9/hook", "http://localhost/hook", "http://10.1.2.3/", "https://192.168.0.7/",
     "http://169.254.169.254/latest/meta-data", "http://[::1]:8080/", "http://[::ffff:127.0.0.1]/", "http://0.0.0.0/"],
)  # fmt: skip
def test_private_addresses_are_refused_unless_allowed(tmp_path: Path, url: str) -> None:
    strict = WebhookPolicy(webhook_settings(tmp_path, webhook_allow_private=False))
    with pytest.raises(InvalidParametersError, match="private, loopback or reserved") as caught:
        asyncio.run(strict.target(url, None))
    assert caught.value.details["field"] == "webhook_url"
    assert asyncio.run(WebhookPolicy(webhook_settings(tmp_path)).target(url, None)) is not None
    listed = WebhookPolicy(
        webhook_settings(tmp_path, webhook_allow_private=False, webhook_allowed_hosts=("h.example",))
    )
    assert asyncio.run(listed.target("https://h.example/hook", ["progress"])) is not None
    with pytest.raises(InvalidParametersError, match="not in VISUALIZR_WEBHOOK_ALLOWED_HOSTS"):
        asyncio.run(listed.target(url, None))


def test_the_api_refuses_bad_webhooks_with_400_naming_the_field(tmp_path: Path) -> None:
    with running_app(webhook_settings(tmp_path, webhook_allow_private=False), FakeBackend()) as client:
        for extra, field in [
            ({"webhook_url": "http://127.0.0.1:9/hook"}, "webhook_url"),
            ({"webhook_url": "gopher://example.com/"}, "webhook_url"),
            ({"webhook_url": 42}, "webhook_url"),
            ({"webhook_url": "http://93.184.215.14/", "webhook_events": ["done"]}, "webhook_events"),
            ({"webhook_url": "http://93.184.215.14/", "webhook_events": []}, "webhook_events"),
            ({"webhook_events": ["completed"]}, "webhook_events"),
        ]:
            error = error_of(client.post(GENERATE, json={**SMALL, **extra}), 400, "INVALID_PARAMETERS")
            assert error["details"]["field"] == field, (extra, error)
        form = {"motion_prompt": "sway", "webhook_url": "http://10.0.0.1/"}
        image = {"image": ("a.png", b"not read: the webhook is checked first", "image/png")}
        error = error_of(client.post(f"{GENERATE}/from-image", data=form, files=image), 400, "INVALID_PARAMETERS")
        assert error["details"]["field"] == "webhook_url"
        body = {"character_id": "assistant", "webhook_url": "http://localhost/"}
        error = error_of(client.post("/api/v1/generate/character-animation", json=body), 400, "INVALID_PARAMETERS")
        assert error["details"]["field"] == "webhook_url"
    with running_app(make_settings(tmp_path / "off"), FakeBackend()) as client:  # no secret: webhooks are off
        response = client.post(GENERATE, json={**SMALL, "webhook_url": "https://example.com/hook"})
        assert "VISUALIZR_WEBHOOK_SECRET" in error_of(response, 400, "INVALID_PARAMETERS")["message"]


# ---------------------------------------------------------------------------------------------- delivery


@pytest.mark.slow
def test_fails_twice_then_delivered_on_the_third_try_same_id_and_body(tmp_path: Path) -> None:
    with webhook_receiver() as receiver, running_app(webhook_settings(tmp_path), FakeBackend()) as client:
        receiver.answers = [500, 503]
        job = client.post(GENERATE, json={**SMALL, "webhook_url": receiver.url}).json()
        posts = receiver.wait_for(3)
        assert {p.headers["webhook-id"] for p in posts} == {f"msg_{job['request_id']}_completed"}
        assert len({p.body for p in posts}) == 1  # retries resend the same document
        document = verified(posts[-1])
        status = wait_for(client, job["request_id"], {"completed"})
        assert document == {k: v for k, v in status.items() if k != "webhook_deliveries"}
        time.sleep(0.3)  # the third attempt's record
        (delivery,) = client.get(f"/api/v1/generate/status/{job['request_id']}").json()["webhook_deliveries"]
        assert delivery["status"] == "delivered" and delivery["event"] == "completed"
        assert [a["status_code"] for a in delivery["attempts"]] == [500, 503, 200]
        first, second, third = (a["at"] for a in delivery["attempts"])
        assert second - first >= 0.9 and third - second >= 1.9  # the backoff: 1 s, then 2 s
        assert len(receiver.received) == 3
        scraped = client.get("/metrics").text
        counts = dict(re.findall(r'^visualizr_webhook_deliveries_total\{outcome="(\w+)"[^}]*\} (\S+)$', scraped, re.M))
        assert counts == {"delivered": "1.0", "retrying": "2.0", "failed": "0.0", "dropped": "0.0"}


@pytest.mark.slow
def test_every_terminal_event_once_and_progress_throttled(tmp_path: Path) -> None:
    with webhook_receiver() as receiver:
        fake = FakeBackend(fail_at_step=1)
        with running_app(webhook_settings(tmp_path), fake) as client:
            failing = client.post(GENERATE, json={**SMALL, "webhook_url": receiver.url}).json()["request_id"]
            wait_for(client, failing, {"failed"})
            fake.fail_at_step, fake.hold_at_step = None, 1
            events = ["progress", "completed", "cancelled"]
            held = client.post(GENERATE, json={**SMALL, "webhook_url": receiver.url, "webhook_events": events})
            waiting = client.post(GENERATE, json={**SMALL, "webhook_url": receiver.url})
            wait_until(lambda: any(json.loads(p.body)["status"] == "processing" for p in receiver.received))
            for job in (waiting, held):
                assert client.delete(f"/api/v1/generate/{job.json()['request_id']}").status_code == 200
            receiver.wait_for(4)  # failed; progress and cancelled; cancelled
            time.sleep(1.0)  # nothing more comes
        ids = [p.headers["webhook-id"] for p in receiver.received]
        documents = [verified(p) for p in receiver.received]
        assert len(ids) == len(set(ids)), ids
        terminal = {(d["request_id"], d["status"]) for d in documents if d["status"] != "processing"}
        assert terminal == {(failing, "failed"), (held.json()["request_id"], "cancelled"),
                            (waiting.json()["request_id"], "cancelled")}  # fmt: skip
        progress = [d for d in documents if d["status"] == "processing"]
        assert [d["request_id"] for d in progress] == [held.json()["request_id"]]  # one: the next is 5 s later
        assert len(receiver.received) == 4


@pytest.mark.slow
def test_a_restart_between_attempts_loses_nothing(tmp_path: Path) -> None:
    settings = webhook_settings(tmp_path)
    with webhook_receiver() as receiver:
        receiver.answers = [500] * 20  # every attempt of the first process fails
        with running_app(settings, FakeBackend()) as client:
            request_id = client.post(GENERATE, json={**SMALL, "webhook_url": receiver.url}).json()["request_id"]
            receiver.wait_for(1)
        failed = len(receiver.received)  # the API stopped with the delivery pending
        receiver.answers = []
        with running_app(settings, FakeBackend()) as client:
            last = receiver.wait_for(failed + 1)[-1]
            assert {p.headers["webhook-id"] for p in receiver.received} == {f"msg_{request_id}_completed"}
            assert verified(last)["status"] == "completed"
            time.sleep(0.3)
            (delivery,) = client.get(f"/api/v1/generate/status/{request_id}").json()["webhook_deliveries"]
        assert [a["status_code"] for a in delivery["attempts"]] == [500] * failed + [200]
        assert delivery["status"] == "delivered" and len(receiver.received) == failed + 1


def test_two_replicas_on_postgresql_send_each_event_once(tmp_path: Path, postgres: PostgresServer) -> None:
    url = postgres.new_database()
    replicas = [webhook_settings(tmp_path / name, database_url=url, replica_id=name) for name in ("a", "b")]
    with webhook_receiver() as receiver, running_app(replicas[0], FakeBackend()) as one:
        with running_app(replicas[1], FakeBackend()) as two:
            jobs = [(one if i % 2 else two).post(GENERATE, json={**SMALL, "webhook_url": receiver.url, "seed": i})
                    for i in range(6)]  # fmt: skip
            posts = receiver.wait_for(6, timeout=60)
            time.sleep(1.0)  # both senders poll every 50 ms: a second copy would have come
        ids = sorted(p.headers["webhook-id"] for p in receiver.received)
        assert len(receiver.received) == 6 and ids == sorted(f"msg_{j.json()['request_id']}_completed" for j in jobs)
        assert {verified(p)["status"] for p in posts} == {"completed"}
