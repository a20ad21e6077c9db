"""`python -m visualizr.serve` (what `make serve` runs) as a test's own process: the supervised tritonserver and the
API together, on free ports and a data folder of the test's. Only processes it started are ever signalled: the
serve process, and the tritonserver (or a stub of it) whose parent is checked to be that serve / tritonserver."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks.stack import stack_settings
from visualizr import process_tree
from visualizr.settings import Settings
from visualizr.stubs import is_stub, model_of
from visualizr.supervisor_status import SupervisorStatus, read_supervisor_status

ACCESS_LOG_PREFIX = "INFO:     127.0.0.1:"


@dataclass
class ServeProcess:
    process: subprocess.Popen[bytes]
    settings: Settings
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.port}"

    def log_tail(self, chars: int = 4000) -> str:
        """The end of serve's log, without uvicorn's access lines (the tests' own polling)."""
        if not self.log_path.exists():
            return ""
        lines = self.log_path.read_text(errors="replace").splitlines(keepends=True)
        return "".join(line for line in lines if not line.startswith(ACCESS_LOG_PREFIX))[-chars:]

    def wait_until(self, what: str, check: Callable[[], object], timeout_s: float = 300) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited ({self.process.returncode}) waiting for {what}:\n{self.log_tail()}")
            if check():
                return
            time.sleep(0.2)
        raise AssertionError(f"no {what} within {timeout_s}s:\n{self.log_tail()}")

    def health(self) -> httpx.Response | None:
        try:
            return httpx.get(f"{self.base_url}/api/v1/health", timeout=5)
        except httpx.HTTPError:
            return None

    def healthy(self) -> bool:
        response = self.health()
        return response is not None and response.status_code == 200 and response.json()["status"] == "healthy"

    def status(self) -> SupervisorStatus:
        status = read_supervisor_status(self.settings.supervisor_status_path)
        assert status is not None
        return status

    def tritonserver_pid(self) -> int:
        """The running tritonserver's pid, checked to be a child of this serve process."""
        pid = self.status().pid
        info = process_tree.read_process(pid) if pid is not None else None
        assert info is not None and info.ppid == self.process.pid, f"tritonserver {pid} is not serve's child"
        return pid  # type: ignore[return-value]

    def stub_pid(self, model: str) -> int:
        """The live Python-backend stub of ``model`` of the running tritonserver (its child)."""
        server = self.tritonserver_pid()
        for info in process_tree.children(server):
            if info.state != "Z" and is_stub(info) and model_of(info) == model:
                return info.pid
        raise AssertionError(f"no stub of {model} under tritonserver {server}")

    def kill_stub(self, model: str) -> int:
        """SIGKILL the stub of ``model``, re-checked through a pidfd to be our tritonserver's child; its pid."""
        server, pid = self.tritonserver_pid(), self.stub_pid(model)
        ours = lambda info: info.ppid == server and is_stub(info) and model_of(info) == model  # noqa: E731
        assert process_tree.signal_if(pid, signal.SIGKILL, ours), f"stub {pid} of {model} is gone"
        return pid

    def metrics(self) -> str:
        return httpx.get(f"{self.base_url}/metrics", timeout=10).text

    def job_row_count(self) -> int:
        with sqlite3.connect(self.settings.database_path) as db:
            return int(db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0])

    def job_row(self, request_id: str) -> dict[str, object]:
        """The job's row in the job database."""
        with sqlite3.connect(self.settings.database_path) as db:
            db.row_factory = sqlite3.Row
            found = db.execute("SELECT * FROM jobs WHERE request_id = ?", (request_id,)).fetchone()
        assert found is not None, request_id
        return dict(found)

    def kill_tritonserver(self) -> int:
        pid = self.tritonserver_pid()
        os.kill(pid, signal.SIGKILL)
        return pid

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_serve(data_dir: Path, model_repository: Path, **env_overrides: str) -> ServeProcess:
    """Start serve and wait until its API is healthy. Its tritonserver loads the animatediff demo only (the faults
    these tests cause do not depend on the family; other models load on demand): half the stubs to start at every
    (re)start. ``VISUALIZR_LOAD_MODELS=""`` loads every model."""
    env_overrides = {"VISUALIZR_LOAD_MODELS": "animatediff", **env_overrides}
    settings, env = stack_settings(
        data_dir, VISUALIZR_MODEL_REPOSITORY=str(model_repository), VISUALIZR_LOG_LEVEL="info", **env_overrides
    )
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir.parent / f"{data_dir.name}-serve.log"
    with log_path.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "visualizr.serve"], env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
        )
    serve = ServeProcess(process, settings, log_path)
    try:
        serve.wait_until("a healthy API", serve.healthy)
    except BaseException:
        serve.stop()
        raise
    return serve


def leftovers(server_pids: list[int]) -> list[process_tree.ProcessInfo]:
    """Processes left of the tritonservers ``server_pids`` (each its own process group): none, after a stop."""
    return [info for pid in server_pids for info in process_tree.group_members(pid)]
