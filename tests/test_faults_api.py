"""Faults around the API, caused for real: the API process SIGKILLed mid-job, and one of two Triton servers
SIGKILLed mid-job. The job must complete either way: run again after the restart, or on the other server."""

from __future__ import annotations

import os
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.jobs import LONG, SMALL, submit, wait_running, wait_terminal
from tests.support.stack import env_for, private_tritons, start_sibling_api
from visualizr.launcher import TritonServer
from visualizr.settings import Settings

pytestmark = pytest.mark.integration


def attempts_of(database: Path, request_id: str) -> int:
    with sqlite3.connect(database) as db:
        return int(db.execute("SELECT attempts FROM jobs WHERE request_id = ?", (request_id,)).fetchone()[0])


@pytest.fixture
def one_triton(tmp_path: Path, model_repository: Path) -> Iterator[list[TritonServer]]:
    # its own server: a client killed mid-request keeps Triton 2.51 from unloading the pipeline model for minutes
    with private_tritons(tmp_path, model_repository, 1) as servers:
        yield servers


@pytest.fixture
def two_tritons(tmp_path: Path, model_repository: Path) -> Iterator[list[TritonServer]]:
    with private_tritons(tmp_path, model_repository, 2) as servers:
        yield servers


def test_a_killed_api_runs_the_interrupted_job_again_after_its_restart(
    one_triton: list[TritonServer], stack_env: tuple[Settings, dict[str, str]], tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    env = env_for(one_triton, stack_env[1])
    api = start_sibling_api(env, data_dir)
    try:
        running = submit(api, prompt="interrupted", seed=21, **LONG)["request_id"]
        queued = [submit(api, prompt=f"queued {i}", seed=30 + i, **SMALL)["request_id"] for i in range(3)]
        wait_running(api, running, 120)
        os.kill(api.process.pid, signal.SIGKILL)
        api.process.wait()
    finally:
        api.stop()
    again = start_sibling_api(env, data_dir)
    try:
        for request_id in (running, *queued):
            assert wait_terminal(again, request_id, 300)["status"] == "completed"
        assert attempts_of(data_dir / "jobs.sqlite3", running) == 2
    finally:
        again.stop()


def test_a_job_whose_triton_dies_completes_on_the_other_one(
    two_tritons: list[TritonServer], stack_env: tuple[Settings, dict[str, str]], tmp_path: Path
) -> None:
    urls = [server.settings.triton_grpc_url for server in two_tritons]
    api = start_sibling_api(env_for(two_tritons, stack_env[1]), tmp_path / "data")
    try:
        health = httpx.get(f"{api.base_url}/api/v1/health", timeout=30).json()
        assert [(s["url"], s["status"]) for s in health["inference_servers"]] == [(u, "up") for u in urls]
        job = submit(api, prompt="survives its server", seed=41, **LONG)["request_id"]
        wait_running(api, job, 120)
        servers = httpx.get(f"{api.base_url}/api/v1/health", timeout=30).json()["inference_servers"]
        [busy] = [s["url"] for s in servers if s["jobs_in_flight"] == 1]
        victim = two_tritons[urls.index(busy)]
        assert victim.process is not None
        os.kill(victim.process.pid, signal.SIGKILL)
        assert wait_terminal(api, job, 300)["status"] == "completed"
        assert attempts_of(tmp_path / "data" / "jobs.sqlite3", job) == 2
        after = httpx.get(f"{api.base_url}/api/v1/health", timeout=30)
        body = after.json()
        assert after.status_code == 200 and body["status"] == "degraded"  # one server left: degraded, serving
        assert {s["url"]: s["status"] for s in body["inference_servers"]} == {
            busy: "down",
            next(u for u in urls if u != busy): "up",
        }
        more = submit(api, prompt="on the survivor", seed=42, **SMALL)["request_id"]
        assert wait_terminal(api, more, 120)["status"] == "completed"
    finally:
        api.stop()
