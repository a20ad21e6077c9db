"""Two API replicas on one PostgreSQL, on the session tritonserver. Replica A accepts and runs the jobs; replica B
has no inference server (it cannot run them) and holds the WebSocket subscribers: what they get came from A through
LISTEN/NOTIFY. A database outage (the test's own PostgreSQL, stopped with pg_ctl and started again) degrades
health and answers new requests 503 DATABASE_UNAVAILABLE; afterwards the listener is back and nothing is lost."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from benchmarks.backing_services import PostgresServer
from benchmarks.stack import ApiProcess
from tests.support.jobs import LONG, SMALL, TERMINAL, status, submit
from tests.support.stack import start_sibling_api, without_inference
from visualizr.launcher import TritonServer
from visualizr.settings import Settings

pytestmark = pytest.mark.integration

WATCHED = {**SMALL, "num_inference_steps": 24}  # long enough for several progress notices (one per 0.25 s)


@contextmanager
def replicas(base_env: dict[str, str], root: Path, database_url: str) -> Iterator[tuple[ApiProcess, ApiProcess]]:
    """Replica A (runs jobs on the session Triton) and replica B (no inference server), started together."""
    shared = {"VISUALIZR_DATABASE_URL": database_url}
    with ThreadPoolExecutor(2) as starting:
        a = starting.submit(start_sibling_api, base_env, root / "a", **shared, VISUALIZR_REPLICA_ID="replica-a")
        b = starting.submit(
            start_sibling_api, base_env, root / "b", **shared, VISUALIZR_REPLICA_ID="replica-b", **without_inference()
        )
        started = [a.result(), b.result()]
    try:
        yield started[0], started[1]
    finally:
        for api in started:
            api.stop()


def health(api: ApiProcess) -> dict[str, Any]:
    return httpx.get(f"{api.base_url}/api/v1/health", timeout=30).json()


def wait_health(api: ApiProcess, accept: Any, timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while not accept(body := health(api)):
        assert time.monotonic() < deadline, f"{api.base_url}: {body}\n{api.log_tail()}"
        time.sleep(0.2)
    return body


def listening(body: dict[str, Any]) -> bool:
    return body["database"]["status"] == "up" and body["database"]["events"] == "listening"


async def follow(api: ApiProcess, request_id: str, timeout_s: float = 120) -> list[dict[str, Any]]:
    """Every message a subscriber on ``api`` gets for the job, up to its terminal one."""
    url = api.base_url.replace("http://", "ws://") + "/api/v1/ws/generation"
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"type": "subscribe", "request_id": request_id}))
        messages = [json.loads(await asyncio.wait_for(ws.recv(), timeout_s))]
        while messages[-1]["type"] not in TERMINAL:
            messages.append(json.loads(await asyncio.wait_for(ws.recv(), timeout_s)))
    assert {m["request_id"] for m in messages} == {request_id}, messages
    return messages


def assert_followed_to_the_end(messages: list[dict[str, Any]], final: dict[str, Any]) -> None:
    assert messages[-1]["type"] == "completed" and messages[-1]["result"] == final["result"], messages
    progress = [m["progress"] for m in messages[:-1]]
    assert progress == sorted(progress), messages  # monotonic


def test_a_subscriber_on_another_replica_follows_a_job_to_its_end(
    postgres: PostgresServer, triton: TritonServer, stack_env: tuple[Settings, dict[str, str]], tmp_path: Path
) -> None:
    with replicas(stack_env[1], tmp_path, postgres.new_database()) as (a, b):
        assert wait_health(b, listening)["replica"] == "replica-b"
        request_id = submit(a, prompt="seen from another replica", seed=5, **WATCHED)["request_id"]
        messages = asyncio.run(follow(b, request_id))
        final = status(a, request_id)
        assert_followed_to_the_end(messages, final)
        # B read the job running (its first message): the rest, the terminal message included, came from A
        assert messages[0]["type"] == "progress" and len(messages) >= 3, messages
        assert status(b, request_id) == final  # the same job from either replica
        exposition = httpx.get(f"{b.base_url}/metrics", timeout=30).text
        assert 'visualizr_workers_alive{replica="replica-b"}' in exposition
        assert 'visualizr_jobs_total{model="animatediff",outcome="completed"} 1.0' in exposition  # the shared table


def test_a_database_outage_degrades_health_refuses_writes_and_loses_nothing(
    triton: TritonServer, stack_env: tuple[Settings, dict[str, str]], tmp_path: Path
) -> None:
    with PostgresServer() as server, replicas(stack_env[1], tmp_path, server.url) as (a, b):
        wait_health(b, listening)
        before = submit(a, prompt="across the outage", seed=9, **LONG)["request_id"]

        async def scenario() -> tuple[list[dict[str, Any]], httpx.Response, dict[str, Any]]:
            watcher = asyncio.create_task(follow(b, before, timeout_s=180))
            while (await asyncio.to_thread(status, a, before))["status"] != "processing":
                await asyncio.sleep(0.1)
            await asyncio.to_thread(server.halt)
            down = await asyncio.to_thread(wait_health, a, lambda h: h["database"]["status"] == "down")
            async with httpx.AsyncClient(timeout=60) as client:
                refused = await client.post(f"{a.base_url}/api/v1/generate/video", json={"prompt": "now?", **SMALL})
            await asyncio.to_thread(server.resume)
            return await watcher, refused, down

        messages, refused, down = asyncio.run(scenario())
        assert down["status"] == "degraded" and any("job database" in p for p in down["problems"]), down
        assert refused.status_code == 503 and refused.headers["retry-after"], refused.text
        assert refused.json()["error"]["code"] == "DATABASE_UNAVAILABLE", refused.text
        final = status(a, before)
        assert final["status"] == "completed", final  # finished once the database was back
        assert_followed_to_the_end(messages, final)

        assert wait_health(a, lambda h: h["status"] == "healthy")["database"]["status"] == "up"
        wait_health(b, listening)  # B's listener reconnected: a new job is followed from B again
        after = submit(a, prompt="after the outage", seed=10, **WATCHED)["request_id"]
        assert_followed_to_the_end(asyncio.run(follow(b, after)), status(a, after))
