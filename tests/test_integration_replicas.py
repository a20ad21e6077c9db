"""Two API replicas on one PostgreSQL, in front of the session tritonserver: the queue in the database is theirs
to share. Jobs submitted to one are run by both; a cancel sent to the other replica stops a running job within a
step; a replica SIGKILLed mid-job (its process, started here) loses its lease and the other runs the job again
from the start, once: one terminal state, one set of files, one terminal event.

Leases are short here (VISUALIZR_JOB_LEASE=2 s, so a heartbeat and a reaper pass every 0.67 s) and workers poll
every 200 ms; the time from the SIGKILL to the job running again is printed."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from pathlib import Path

import httpx
import psycopg
import pytest
import websockets

from benchmarks.backing_services import PostgresServer
from benchmarks.stack import ApiProcess
from tests.support.jobs import LONG, SMALL, TERMINAL, submit, wait_terminal
from tests.support.stack import start_sibling_api
from visualizr.frontend.paths import WS_PATH
from visualizr.launcher import TritonServer
from visualizr.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.abandons_streams]

REPLICA_HEADER = "X-Visualizr-Job-Replica"
LEASE_S = 2


def replica_pair(postgres: PostgresServer, base_env: dict[str, str], root: Path) -> tuple[str, list[ApiProcess]]:
    url = postgres.new_database()
    common = {"VISUALIZR_DATABASE_URL": url, "VISUALIZR_WORKERS": "1", "VISUALIZR_JOB_LEASE": str(LEASE_S),
              "VISUALIZR_QUEUE_POLL_MS": "200"}  # fmt: skip
    apis = [start_sibling_api(base_env, root / name, VISUALIZR_REPLICA_ID=name, **common)
            for name in ("replica-a", "replica-b")]  # fmt: skip
    for api in apis:  # both see the session Triton serve the model before any job: both can claim
        deadline = time.monotonic() + 120
        while httpx.get(f"{api.base_url}/api/v1/health", timeout=30).json()["status"] != "healthy":
            assert time.monotonic() < deadline, api.log_tail()
            time.sleep(0.2)
    return url, apis


def runner_of(api: ApiProcess, request_id: str) -> tuple[dict[str, object], str | None]:
    response = httpx.get(f"{api.base_url}/api/v1/generate/status/{request_id}", timeout=30)
    assert response.status_code == 200, response.text
    return response.json(), response.headers.get(REPLICA_HEADER)


def wait_until_running(api: ApiProcess, request_id: str, timeout_s: float = 120) -> str:
    """Until the job generates frames; the replica running it."""
    deadline = time.monotonic() + timeout_s
    while True:
        body, replica = runner_of(api, request_id)
        if body.get("current_step") == "frame_generation" and replica:
            return replica
        assert body["status"] not in TERMINAL and time.monotonic() < deadline, body
        time.sleep(0.05)


def stopped(api: ApiProcess, request_id: str) -> bool:
    """Whether the replica logged that the job's run stops (its fenced write or its heartbeat was refused)."""
    return any(request_id in line and "its run stops" in line for line in api.log_tail(200_000).splitlines())


def videos_of(root: Path, request_id: str) -> list[Path]:
    """Every MP4 of the job in every replica's data folder."""
    stem = "video_" + request_id.removeprefix("video_req_")
    return sorted(p for p in root.glob("replica-*/assets/video/*.mp4") if p.stem.startswith(stem))


class TerminalEvents(threading.Thread):
    """A WebSocket subscriber of one job on one replica, in a thread: every message it got."""

    def __init__(self, api: ApiProcess, request_id: str) -> None:
        super().__init__(daemon=True)
        self.url = api.base_url.replace("http://", "ws://") + WS_PATH
        self.request_id = request_id
        self.messages: list[dict[str, object]] = []
        self.subscribed = threading.Event()

    def run(self) -> None:
        asyncio.run(self._follow())

    async def _follow(self) -> None:
        async with websockets.connect(self.url) as socket:
            await socket.send(json.dumps({"type": "subscribe", "request_id": self.request_id}))
            self.subscribed.set()
            with_deadline = time.monotonic() + 120
            while time.monotonic() < with_deadline:
                try:
                    message = json.loads(await asyncio.wait_for(socket.recv(), 2))
                except TimeoutError:
                    continue
                self.messages.append(message)
                if message.get("type") in TERMINAL:
                    with_deadline = time.monotonic() + 1.5  # anything after the terminal one would be a duplicate

    def terminal(self) -> list[dict[str, object]]:
        return [m for m in self.messages if m.get("type") in TERMINAL]


def test_two_replicas_share_the_queue_cancel_across_and_take_over_a_dead_ones_job(
    postgres: PostgresServer, triton: TritonServer, stack_env: tuple[Settings, dict[str, str]], tmp_path: Path
) -> None:
    url, (a, b) = replica_pair(postgres, stack_env[1], tmp_path)
    try:
        # jobs submitted to one replica are run by both
        ids = [submit(a, prompt=f"shared {index}", seed=index, **SMALL)["request_id"] for index in range(4)]
        runners = set()
        for request_id in ids:
            assert wait_terminal(b, request_id, 180)["status"] == "completed"
            runners.add(runner_of(b, request_id)[1])
        assert runners == {"replica-a", "replica-b"}
        assert all(len(videos_of(tmp_path, rid)) == 1 for rid in ids)

        # a cancel sent to the replica that does not run the job stops it within a step
        long_id = submit(a, prompt="cancel me elsewhere", seed=7, **LONG)["request_id"]
        runner = wait_until_running(a, long_id)
        other, running_api = (b, a) if runner == "replica-a" else (a, b)
        cancelled_at = time.monotonic()
        answer = httpx.delete(f"{other.base_url}/api/v1/generate/{long_id}", timeout=30).json()
        assert answer["status"] == "cancelled"
        while not stopped(running_api, long_id):
            assert time.monotonic() - cancelled_at < 5, running_api.log_tail()
            time.sleep(0.02)
        stopped_after = time.monotonic() - cancelled_at
        assert runner_of(running_api, long_id)[0]["status"] == "cancelled"
        time.sleep(0.5)
        assert videos_of(tmp_path, long_id) == []
        print(f"\ncancel on the other replica: the runner stopped {stopped_after:.2f} s after the DELETE")

        # a replica SIGKILLed mid-job: the other runs the job again from the start, once
        doomed_id = submit(a, prompt="outlive your replica", seed=11, **LONG)["request_id"]
        assert wait_until_running(b, doomed_id) == "replica-a"
        events = TerminalEvents(b, doomed_id)
        events.start()
        assert events.subscribed.wait(30)
        os.kill(a.process.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        a.process.wait(30)
        while runner_of(b, doomed_id)[1] != "replica-b":
            assert time.monotonic() - killed_at < 30, b.log_tail()
            time.sleep(0.05)
        rerun_after = time.monotonic() - killed_at
        final = wait_terminal(b, doomed_id, 180)
        assert final["status"] == "completed", final
        events.join(60)
        assert [m["type"] for m in events.terminal()] == ["completed"], events.messages
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "SELECT status, attempts, owner, last_error FROM jobs WHERE request_id = %s", (doomed_id,)
            ).fetchone()
        assert row is not None and row[:3] == ("completed", 2, "replica-b")
        assert row[3] == "interrupted: replica replica-a stopped renewing it"
        assert [p.parents[2].name for p in videos_of(tmp_path, doomed_id)] == ["replica-b"]  # one set of files
        print(f"SIGKILL of replica-a -> its job running again on replica-b after {rerun_after:.2f} s "
              f"(lease {LEASE_S} s, reaper every {LEASE_S / 3:.2f} s)")  # fmt: skip
    finally:
        for api in (a, b):
            api.stop()
