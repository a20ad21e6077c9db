"""A bounded soak of `python -m visualizr.serve` on loopback: concurrent clients keep the queue at its cap with
small jobs, cancel some, and the tritonserver is SIGKILLed once in the middle. Every accepted job must end
completed or cancelled, every completed MP4 must decode to its frame count, the table and the asset folder must
agree, and no 5xx but QUEUE_FULL may be seen. The summary line gives the numbers (run with -s to see it;
VISUALIZR_SOAK_JOBS sets the number of jobs, 60 by default)."""

from __future__ import annotations

import io
import os
import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path

import av
import httpx
import pytest

from tests.support.jobs import SMALL, TERMINAL
from tests.support.serve import ServeProcess, leftovers, start_serve

pytestmark = pytest.mark.integration

JOBS = int(os.environ.get("VISUALIZR_SOAK_JOBS", "60"))
CLIENTS = 6
CANCEL_EVERY = 9
QUEUE_SIZE = 8
DEADLINE_S = 900


class Soak:
    def __init__(self, serve: ServeProcess) -> None:
        self.serve = serve
        self.lock = threading.Lock()
        self.accepted: list[str] = []
        self.cancel_requested: set[str] = set()
        self.statuses: Counter[int] = Counter()
        self.server_errors: list[str] = []
        self.killed_at: float | None = None

    def client(self, index: int) -> None:
        with httpx.Client(base_url=self.serve.base_url, timeout=30) as http:
            while time.monotonic() < self.deadline:
                with self.lock:
                    if len(self.accepted) >= JOBS:
                        return
                seed = index * 100_000 + len(self.accepted)
                response = http.post("/api/v1/generate/video", json={"prompt": f"soak {seed}", "seed": seed, **SMALL})
                self.record(response)
                if response.status_code == 202:
                    self.accepted_one(http, response.json()["request_id"])
                elif response.status_code == 503:
                    time.sleep(min(1.0, float(response.headers.get("retry-after", "1")) / 4))

    def record(self, response: httpx.Response) -> None:
        with self.lock:
            self.statuses[response.status_code] += 1
            if response.status_code >= 500 and response.json()["error"]["code"] != "QUEUE_FULL":
                self.server_errors.append(response.text)

    def accepted_one(self, http: httpx.Client, request_id: str) -> None:
        with self.lock:
            self.accepted.append(request_id)
            count = len(self.accepted)
        if count % CANCEL_EVERY == 0:
            self.cancel_requested.add(request_id)
            self.record(http.delete(f"/api/v1/generate/{request_id}"))
        if count == JOBS // 3 and self.killed_at is None:
            self.killed = self.serve.kill_tritonserver()
            self.killed_at = time.time()

    def run(self) -> None:
        self.deadline = time.monotonic() + DEADLINE_S
        threads = [threading.Thread(target=self.client, args=(i,)) for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


def wait_all_terminal(serve: ServeProcess, request_ids: list[str], timeout_s: float) -> dict[str, dict]:
    final: dict[str, dict] = {}
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=serve.base_url, timeout=30) as http:
        while len(final) < len(request_ids) and time.monotonic() < deadline:
            for request_id in request_ids:
                if request_id not in final:
                    body = http.get(f"/api/v1/generate/status/{request_id}").json()
                    if body["status"] in TERMINAL:
                        final[request_id] = body
            time.sleep(0.5)
    return final


def frame_count(data: bytes) -> int:
    with av.open(io.BytesIO(data)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_soak_with_cancels_and_a_triton_kill(tmp_path: Path, model_repository: Path) -> None:
    serve = start_serve(tmp_path / "data", model_repository, VISUALIZR_QUEUE_SIZE=str(QUEUE_SIZE))
    try:
        soak = Soak(serve)
        started = time.monotonic()
        soak.run()
        final = wait_all_terminal(serve, soak.accepted, DEADLINE_S)
        elapsed = time.monotonic() - started
        outcomes = Counter(body["status"] for body in final.values())
        stuck = [rid for rid in soak.accepted if rid not in final]
        lost = [rid for rid, body in final.items() if body["status"] == "failed"]
        cancelled_in_time = [rid for rid in soak.cancel_requested if final.get(rid, {}).get("status") == "cancelled"]
        with sqlite3.connect(serve.settings.database_path) as db:
            rows = dict(db.execute("SELECT request_id, status FROM jobs").fetchall())
            completed_at = [r[0] for r in db.execute("SELECT completed_at FROM jobs WHERE status = 'completed'")]
        with httpx.Client(base_url=serve.base_url, timeout=30) as http:
            for body in final.values():
                if body["status"] == "completed":
                    video = http.get(body["result"]["video_url"])
                    assert video.status_code == 200 and frame_count(video.content) == SMALL["num_frames"]
        videos = {p.name for p in serve.settings.assets_dir.glob("*.mp4")}
        completed_ids = {rid for rid, body in final.items() if body["status"] == "completed"}
        assert soak.killed_at is not None
        first_after_kill = min(t for t in completed_at if t > soak.killed_at) - soak.killed_at
        print(
            f"\nsoak: {len(soak.accepted)} jobs accepted from {CLIENTS} clients in {elapsed:.0f} s; outcomes "
            f"{dict(outcomes)}; {len(soak.cancel_requested)} cancels requested ({len(cancelled_in_time)} took effect, "
            f"the rest had finished); 1 tritonserver SIGKILL; lost {len(lost)}, stuck {len(stuck)}, 5xx other than "
            f"QUEUE_FULL {len(soak.server_errors)}; HTTP statuses {dict(soak.statuses)}; first job completed "
            f"{first_after_kill:.1f} s after the kill"
        )
        assert stuck == [] and lost == [] and soak.server_errors == []
        assert set(outcomes) <= {"completed", "cancelled"}
        assert {rid for rid in soak.accepted if rows.get(rid) != final[rid]["status"]} == set()  # table == API
        assert videos == {body["result"]["video_url"].rsplit("/", 1)[1] for rid, body in final.items()
                          if rid in completed_ids}  # fmt: skip
        assert serve.status().restarts == 1
        killed = soak.killed
    finally:
        assert serve.stop() == 0
    assert leftovers([killed]) == []
