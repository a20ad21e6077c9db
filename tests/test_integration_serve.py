"""`python -m visualizr.serve` end to end: the API comes up over a supervised tritonserver; a SIGKILLed
tritonserver is restarted and health is 200 again; SIGTERM stops everything, leaving no tritonserver, stub or
zombie. Only the serve process this test starts and the tritonserver it started (checked by parent pid) are
signalled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from benchmarks.stack import stack_settings
from tests.support.jobs import metric
from visualizr import process_tree
from visualizr.settings import Settings
from visualizr.supervisor_status import SupervisorStatus, read_supervisor_status

pytestmark = pytest.mark.integration

TIMEOUT_S = 300


def wait_until(what: str, check: object, timeout_s: float, serve: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if serve.poll() is not None:
            raise AssertionError(f"serve exited with {serve.returncode} waiting for {what}:\n{log.read_text()[-4000:]}")
        if check():  # type: ignore[operator]
            return
        time.sleep(0.3)
    raise AssertionError(f"no {what} within {timeout_s}s:\n{log.read_text(errors='replace')[-4000:]}")


def health_ok(settings: Settings) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{settings.port}/api/v1/health", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def status_of(settings: Settings) -> SupervisorStatus:
    status = read_supervisor_status(settings.supervisor_status_path)
    assert status is not None
    return status


def test_serve_restarts_a_killed_tritonserver_and_stops_cleanly(tmp_path: Path, model_repository: Path) -> None:
    settings, env = stack_settings(
        tmp_path / "data", VISUALIZR_MODEL_REPOSITORY=str(model_repository), VISUALIZR_LOG_LEVEL="info"
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        serve = subprocess.Popen(
            [sys.executable, "-m", "visualizr.serve"], env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
        )
    servers: list[int] = []
    try:
        wait_until("healthy API", lambda: health_ok(settings), TIMEOUT_S, serve, log)
        first = status_of(settings)
        assert first.state == "ready" and first.supervisor_pid == serve.pid and first.pid is not None
        triton = process_tree.read_process(first.pid)
        assert triton is not None and triton.ppid == serve.pid  # the tritonserver serve started, nothing else
        servers.append(first.pid)
        os.kill(first.pid, signal.SIGKILL)

        wait_until("restart", lambda: status_of(settings).restarts == 1, TIMEOUT_S, serve, log)
        wait_until("healthy API after the restart", lambda: health_ok(settings), TIMEOUT_S, serve, log)
        second = status_of(settings)
        assert second.state == "ready" and second.last_exit_code == -signal.SIGKILL and second.pid is not None
        servers.append(second.pid)
        assert process_tree.group_members(first.pid) == []  # the killed server's stubs are gone
        assert [p for p in process_tree.processes() if p.ppid == serve.pid and p.state == "Z"] == []
        assert "restart 1 in" in log.read_text(errors="replace")  # logged with the exit and the log tail
        base = f"http://127.0.0.1:{settings.port}"
        health = httpx.get(f"{base}/api/v1/health", timeout=10).json()
        assert health["triton_supervisor"] == {
            "state": "ready", "restarts": 1, "last_exit_code": -signal.SIGKILL,
            "last_restart_reason": "tritonserver killed by SIGKILL",
        }  # fmt: skip
        assert metric(httpx.get(f"{base}/metrics", timeout=10).text, "visualizr_triton_restarts_total") == 1

        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=90) == 0
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
    assert status_of(settings).state == "stopped"
    for pid in servers:
        assert process_tree.group_members(pid) == [], f"tritonserver group {pid} outlived serve"
