"""Faults of the inference tier, caused for real under `python -m visualizr.serve` (what `make serve` runs): a
Python-backend stub SIGKILLed, the whole tritonserver SIGKILLed mid-job. Every accepted job must complete, health
must tell the truth meanwhile, and nothing of a killed server may outlive it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.jobs import LONG, SMALL, status, submit, wait_running, wait_terminal
from tests.support.serve import ServeProcess, leftovers, start_serve

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, model_repository: Path) -> Iterator[ServeProcess]:
    serve = start_serve(tmp_path_factory.mktemp("triton-faults") / "data", model_repository)
    try:
        yield serve
    finally:
        assert serve.stop() == 0


def test_a_stub_killed_under_a_job_is_healed_and_the_job_completes(served: ServeProcess) -> None:
    served.wait_until("healthy", served.healthy)
    unet = "animatediff_unet"
    job = submit(served, prompt="its stub dies under it", seed=5, **LONG)["request_id"]
    wait_running(served, job)
    dead = served.kill_stub(unet)
    problems: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and status(served, job)["status"] not in {"completed", "failed"}:
        health = served.health()
        if health is not None and health.json()["status"] == "degraded":
            problems += health.json()["problems"]
        time.sleep(0.02)
    final = wait_terminal(served, job, 120)
    assert final["status"] == "completed", final
    stored = served.job_row(job)
    assert stored["attempts"] == 2 and "is not healthy" in stored["last_error"], stored
    assert any(unet in problem for problem in problems), problems  # degraded, naming it, while it healed
    served.wait_until("healthy after the heal", served.healthy, 60)
    assert served.stub_pid(unet) != dead
    again = submit(served, prompt="later", seed=6, **SMALL)["request_id"]
    assert wait_terminal(served, again, 120)["status"] == "completed"


def test_a_killed_tritonserver_is_restarted_and_every_accepted_job_completes(served: ServeProcess) -> None:
    served.wait_until("healthy", served.healthy)
    restarts = served.status().restarts
    running = submit(served, prompt="mid-job", seed=1, **LONG)["request_id"]
    wait_running(served, running)
    killed = served.kill_tritonserver()
    killed_at = time.monotonic()
    during = [submit(served, prompt=f"during the outage {i}", seed=10 + i, **SMALL)["request_id"] for i in range(3)]
    waiting = {}
    served.wait_until(
        "a job saying it waits for the inference server",
        lambda: waiting.update(status(served, during[-1])) or waiting["current_step"] != "queued",
        60,
    )
    assert waiting["status"] == "queued" and waiting["current_step"] == "waiting_for_inference_server", waiting
    assert "no inference server is reachable" in waiting["waiting_reason"]
    finals = {rid: wait_terminal(served, rid, 300) for rid in [running, *during]}
    recovered_after = time.monotonic() - killed_at
    assert {rid: body["status"] for rid, body in finals.items()} == dict.fromkeys(finals, "completed")
    assert served.job_row(running)["attempts"] == 2
    assert served.status().restarts == restarts + 1
    assert leftovers([killed]) == []  # no stub of the killed server outlived it
    served.wait_until("healthy after the restart", served.healthy, 60)
    print(f"tritonserver SIGKILL -> all {len(finals)} jobs completed in {recovered_after:.1f} s")
