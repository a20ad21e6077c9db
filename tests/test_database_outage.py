"""The API in-process on a PostgreSQL of the test's own, which stops (pg_ctl) and starts again: while it is down every
route that needs the database answers 503 DATABASE_UNAVAILABLE with Retry-After (never a 500), health is degraded
naming it, /metrics keeps this replica's series, a WebSocket subscription gets the error as a message; afterwards
everything answers again from the same rows."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from benchmarks.backing_services import PostgresServer
from tests.support.fakes import FakeBackend, make_settings, running_app, wait_for

pytestmark = pytest.mark.integration

GENERATE = "/api/v1/generate/video"


@pytest.fixture
def server() -> Iterator[PostgresServer]:
    with PostgresServer() as own:  # stopped and started by the test: never the session's server
        yield own


def requests_needing_the_database(request_id: str, video_id: str) -> list[tuple[str, str, dict]]:
    return [
        ("POST", GENERATE, {"json": {"prompt": "during the outage"}}),
        ("POST", GENERATE, {"json": {"prompt": "keyed"}, "headers": {"Idempotency-Key": "outage-key-1"}}),
        ("GET", f"/api/v1/generate/status/{request_id}", {}),
        ("DELETE", f"/api/v1/generate/{request_id}", {}),
        ("GET", "/api/v1/assets/videos", {}),
        ("GET", f"/api/v1/assets/videos/{video_id}", {}),
        ("DELETE", f"/api/v1/assets/videos/{video_id}", {}),
        ("GET", "/api/v1/metrics", {}),
    ]


def test_every_route_answers_503_while_the_database_is_down_and_all_again_after(
    server: PostgresServer, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, database_url=server.url, replica_id="replica-x")
    with running_app(settings, FakeBackend()) as client:
        request_id = client.post(GENERATE, json={"prompt": "before"}).json()["request_id"]
        video_id = wait_for(client, request_id, {"completed"})["result"]["video_url"].rsplit("/", 1)[1].split(".")[0]
        server.halt()
        try:
            health = client.get("/api/v1/health").json()  # first: from then on requests wait 1 s, not the pool's 10
            assert health["status"] == "degraded" and health["database"]["status"] == "down", health
            assert [p for p in health["problems"] if "job database" in p], health
            for method, path, kwargs in requests_needing_the_database(request_id, video_id):
                response = client.request(method, path, **kwargs)
                assert response.status_code == 503, (method, path, response.text)
                assert response.json()["error"]["code"] == "DATABASE_UNAVAILABLE", (method, path, response.text)
                assert response.headers["retry-after"] == "5"
            metrics = client.get("/metrics")
            assert metrics.status_code == 200 and 'visualizr_workers_alive{replica="replica-x"} 1.0' in metrics.text
            assert "visualizr_jobs_total" not in metrics.text  # the table's series are left out, not made up
            assert_subscription_error(client, request_id)
        finally:
            server.resume()
        until_healthy(client)
        assert client.get(f"/api/v1/generate/status/{request_id}").json()["status"] == "completed"
        after = client.post(GENERATE, json={"prompt": "after"}).json()["request_id"]
        assert wait_for(client, after, {"completed"})["status"] == "completed"
        assert len(client.get("/api/v1/assets/videos").json()["videos"]) == 2  # nothing lost, nothing half-written


def until_healthy(client: TestClient, timeout_s: float = 30) -> None:
    """Until health finds the database again (the pool reconnects on its own within seconds)."""
    deadline = time.monotonic() + timeout_s
    while (health := client.get("/api/v1/health").json())["database"]["status"] != "up":
        assert time.monotonic() < deadline, health
        time.sleep(0.1)


def assert_subscription_error(client: TestClient, request_id: str) -> None:
    with client.websocket_connect("/api/v1/ws/generation") as ws:
        ws.send_json({"type": "subscribe", "request_id": request_id})
        message = json.loads(ws.receive_text(timeout=30))
    assert message["type"] == "error" and message["error"]["code"] == "DATABASE_UNAVAILABLE", message
