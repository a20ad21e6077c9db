"""WebSocket /api/v1/ws/generation against a scripted fake backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar.testing import TestClient

from tests.support.fakes import FakeBackend, make_settings, wait_for, wait_until
from visualizr.frontend.app import create_app

WS = "/api/v1/ws/generation"
GENERATE = "/api/v1/generate/video"


def receive(ws: Any) -> dict[str, Any]:
    return ws.receive_json(timeout=10)


def test_subscribe_progress_then_completed(tmp_path: Path) -> None:
    fake = FakeBackend(hold_at_step=2)
    with TestClient(create_app(make_settings(tmp_path), backend=fake), timeout=10) as client:
        rid = client.post(GENERATE, json={"prompt": "waves", "num_inference_steps": 4}).json()["request_id"]
        wait_until(lambda: len(fake.streams) == 1)
        with client.websocket_connect(WS) as ws:
            ws.send_json({"type": "subscribe", "request_id": rid})
            first = receive(ws)
            assert first["type"] == "progress" and first["request_id"] == rid
            assert first["status"] == "processing"
            assert set(first) == {
                "type",
                "request_id",
                "status",
                "progress",
                "current_step",
                "estimated_remaining_seconds",
            }
            fake.release.set()
            messages = [first]
            while messages[-1]["type"] == "progress":
                messages.append(receive(ws))
            done = messages[-1]
            assert done["type"] == "completed" and done["request_id"] == rid
            assert set(done["result"]) == {"video_url", "thumbnail_url", "preview_gif_url", "metadata"}
            progress = [m["progress"] for m in messages[:-1]]
            assert progress == sorted(progress) and progress[-1] >= 90
            steps = [m["current_step"] for m in messages[:-1]]
            assert "encoding" in steps
            # subscribing to a finished job answers its terminal state at once
            ws.send_json({"type": "subscribe", "request_id": rid})
            again = receive(ws)
            assert again["type"] == "completed" and again["result"] == done["result"]


def test_queued_then_cancelled_and_several_subscriptions(tmp_path: Path) -> None:
    fake = FakeBackend(hold_at_step=1)
    settings = make_settings(tmp_path, workers=1, queue_size=4)
    with TestClient(create_app(settings, backend=fake), timeout=10) as client:
        a = client.post(GENERATE, json={"prompt": "a"}).json()["request_id"]
        b = client.post(GENERATE, json={"prompt": "b"}).json()["request_id"]
        # `a` is held before step 1, after its text_encoding response: no update can race the subscription
        wait_until(lambda: client.get(f"/api/v1/generate/status/{a}").json()["progress"] == 5)
        with client.websocket_connect(WS) as ws:
            ws.send_json({"type": "subscribe", "request_id": a})
            ws.send_json({"type": "subscribe", "request_id": b})
            got = {m["request_id"]: m for m in (receive(ws), receive(ws))}
            assert got[a]["status"] == "processing"
            assert got[b]["status"] == "queued" and got[b]["current_step"] == "queued"
            assert got[b]["queue_position"] == 1 and got[b]["progress"] == 0
            client.delete(f"/api/v1/generate/{b}")
            message = receive(ws)
            assert message == {
                "type": "cancelled",
                "request_id": b,
                "status": "cancelled",
                "cancelled_at": message["cancelled_at"],
            }
            ws.send_json({"type": "unsubscribe", "request_id": a})
            fake.release.set()
            wait_for(client, a, {"completed"})
            # nothing more arrives for `a`; an error reply proves the socket is alive and the queue empty
            ws.send_text("nope")
            assert receive(ws)["type"] == "error"


def test_failed_message(tmp_path: Path) -> None:
    fake = FakeBackend(fail_at_step=3, hold_at_step=2)
    with TestClient(create_app(make_settings(tmp_path), backend=fake), timeout=10) as client:
        rid = client.post(GENERATE, json={"prompt": "boom"}).json()["request_id"]
        with client.websocket_connect(WS) as ws:
            ws.send_json({"type": "subscribe", "request_id": rid})
            fake.release.set()
            message = receive(ws)
            while message["type"] == "progress":
                message = receive(ws)
            assert message["type"] == "failed" and message["request_id"] == rid
            assert message["error"]["code"] == "GENERATION_FAILED"
            assert "exploded at step 3" in message["error"]["details"]


def test_bad_messages_keep_the_socket_open(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path), backend=FakeBackend())
    with TestClient(app, timeout=10) as client, client.websocket_connect(WS) as ws:
        for bad, code in (
            ("not json", "INVALID_PARAMETERS"),
            ('["subscribe"]', "INVALID_PARAMETERS"),
            ('{"type": "dance", "request_id": "x"}', "INVALID_PARAMETERS"),
            ('{"type": "subscribe"}', "INVALID_PARAMETERS"),
            ('{"type": "subscribe", "request_id": "video_req_missing"}', "REQUEST_NOT_FOUND"),
            ('{"type": "unsubscribe", "request_id": "video_req_missing"}', "REQUEST_NOT_FOUND"),
        ):
            ws.send_text(bad)
            message = receive(ws)
            assert message["type"] == "error" and message["error"]["code"] == code, (bad, message)
            assert set(message["error"]) == {"code", "message", "details"}
        ws.send_bytes(b"\x00\x01")
        assert receive(ws)["type"] == "error"
        rid = client.post(GENERATE, json={"prompt": "still works"}).json()["request_id"]
        ws.send_json({"type": "subscribe", "request_id": rid})
        message = receive(ws)
        while message["type"] == "progress":
            message = receive(ws)
        assert message["type"] == "completed"
