"""The Triton supervisor against the real tritonserver: stubs orphaned by a crashed server are removed at
start, a SIGKILLed server is restarted and serves the demo pipeline again, its process tree leaves nothing
behind. Only processes this test started (directly, or through the supervisor it runs) are signalled."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import tritonclient.grpc.aio as grpcclient

from benchmarks.stack import stack_settings
from visualizr import process_tree
from visualizr.launcher import TritonServer
from visualizr.pipeline import GenerationRequest, ProgressEvent
from visualizr.settings import Settings
from visualizr.supervisor import TritonSupervisor
from visualizr.supervisor_status import SupervisorStatus, read_supervisor_status
from visualizr.triton.client import stream_generation
from visualizr.triton_orphans import remove_stale_shm_regions

pytestmark = pytest.mark.integration

SMALL = GenerationRequest("a lighthouse at dusk", 64, 64, 4, 2, 7.5, 7)
READY_TIMEOUT_S = 300


@dataclass
class Supervised:
    supervisor: TritonSupervisor
    settings: Settings
    orphans: list[int]  # stubs of a SIGKILLed server of ours, alive when the supervisor started
    orphans_alive_when_ready: list[int]


def wait_status(path: Path, predicate: Callable[[SupervisorStatus], bool], timeout_s: float) -> SupervisorStatus:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = read_supervisor_status(path)
        if status is not None and predicate(status):
            return status
        time.sleep(0.2)
    raise AssertionError(f"supervisor status never matched within {timeout_s}s: {read_supervisor_status(path)}")


def our_zombies() -> list[process_tree.ProcessInfo]:
    return [p for p in process_tree.processes() if p.ppid == os.getpid() and p.state == "Z"]


def generate(settings: Settings) -> list[ProgressEvent]:
    async def collect() -> list[ProgressEvent]:
        client = grpcclient.InferenceServerClient(settings.triton_grpc_url)
        try:
            return [event async for event in stream_generation(client, "animatediff", SMALL)]
        finally:
            await client.close()

    return asyncio.run(collect())


@pytest.fixture(scope="module")
def supervised(tmp_path_factory: pytest.TempPathFactory, model_repository: Path) -> Iterator[Supervised]:
    data_dir = tmp_path_factory.mktemp("supervised")
    # The animatediff demo only: each of the four starts below loads half the stubs.
    settings, _ = stack_settings(
        data_dir, VISUALIZR_MODEL_REPOSITORY=str(model_repository), VISUALIZR_LOAD_MODELS="animatediff"
    )
    # A server of ours crashes (SIGKILL) while its parent does not reap it: its stubs live on, orphaned.
    crashed = TritonServer(settings).start()
    assert crashed.process is not None
    try:
        crashed.wait_ready(READY_TIMEOUT_S)
        orphans = [p.pid for p in process_tree.group_members(crashed.process.pid) if p.pid != crashed.process.pid]
        os.kill(crashed.process.pid, signal.SIGKILL)
        assert process_tree.wait_exit(crashed.process.pid, 30) == -signal.SIGKILL
        assert orphans and all(process_tree.read_process(pid) is not None for pid in orphans)
        supervisor = TritonSupervisor(settings).start()
        try:
            supervisor.wait_ready(READY_TIMEOUT_S)
            alive = [pid for pid in orphans if process_tree.read_process(pid) is not None]
            crashed.reap()
            yield Supervised(supervisor, settings, orphans, alive)
        finally:
            supervisor.stop()
    finally:
        crashed.reap()


def test_start_removes_stubs_orphaned_by_an_earlier_crash(supervised: Supervised) -> None:
    assert len(supervised.orphans) >= 4  # one stub per Python-backend model of the demo
    assert supervised.orphans_alive_when_ready == []
    status = supervised.supervisor.status
    assert status.state == "ready" and status.pid is not None
    assert len(process_tree.group_members(status.pid)) > 1  # the new server and its own stubs
    prefix = TritonServer(supervised.settings).shm_region_prefix
    assert remove_stale_shm_regions(prefix) == []  # the live server's regions are in use


def test_sigkilled_server_is_restarted_and_serves_again(supervised: Supervised) -> None:
    path = supervised.supervisor.status_path
    before = read_supervisor_status(path)
    assert before is not None and before.state == "ready" and before.pid is not None
    os.kill(before.pid, signal.SIGKILL)  # the supervisor in this process started it
    after = wait_status(path, lambda s: s.restarts == before.restarts + 1 and s.state == "ready", READY_TIMEOUT_S)
    assert after.last_exit_code == -signal.SIGKILL and after.pid not in (None, before.pid)
    assert after.last_exit_at is not None and after.ready_at is not None and after.ready_at > after.last_exit_at
    assert process_tree.group_members(before.pid) == []  # no stub of the killed server survived, none is a zombie
    assert our_zombies() == []
    frames = generate(supervised.settings)[-1].frames
    assert frames is not None and frames.shape == (4, 64, 64, 3)


def test_requested_restart(supervised: Supervised) -> None:
    path = supervised.supervisor.status_path
    before = read_supervisor_status(path)
    assert before is not None and before.state == "ready" and before.pid is not None
    supervised.supervisor.request_restart("test")
    after = wait_status(path, lambda s: s.restarts == before.restarts + 1 and s.state == "ready", READY_TIMEOUT_S)
    assert after.pid != before.pid and process_tree.group_members(before.pid) == [] and our_zombies() == []
