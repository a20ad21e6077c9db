"""Healing dead Python-backend stubs, without Triton: which endpoint is the supervised Triton (by address, not by
spelling), what the supervisor's status file tells the API (each stub death once, a restart), the heal budget and
its escalation, and reacting to a death no job has met (over a fake repository API)."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support.system_fakes import FakeModelControl
from visualizr.frontend.infra.address import THIS_HOST, EndpointAddress
from visualizr.frontend.infra.endpoints import Endpoint, EndpointPool
from visualizr.frontend.infra.supervision import ServerRestarted, StubDied, SupervisedTriton, SupervisorFeed
from visualizr.frontend.models.healing import HealBudget, Healer
from visualizr.settings import Settings
from visualizr.supervisor_status import StubDeath, SupervisorStatus, write_status

UNET = "animatediff_unet"
KILLED = StubDied(UNET, 4242, "killed by SIGKILL")


@pytest.mark.parametrize(
    ("url", "host", "port"),
    [
        ("127.0.0.1:8001", THIS_HOST, 8001),
        ("localhost:8001", THIS_HOST, 8001),
        ("grpc://localhost:8001", THIS_HOST, 8001),
        ("grpc://127.0.0.1:8001/", THIS_HOST, 8001),
        ("dns:///localhost:8001", THIS_HOST, 8001),
        ("[::1]:8001", THIS_HOST, 8001),
        ("[::ffff:127.0.0.1]:8001", THIS_HOST, 8001),
        ("0.0.0.0:8001", THIS_HOST, 8001),
        ("GPU-Node.:8001", "gpu-node", 8001),
        ("10.0.0.5:9001", "10.0.0.5", 9001),
        ("[fe80::1]:8001", "fe80::1", 8001),
    ],
)
def test_an_address_is_the_server_however_spelled(url: str, host: str, port: int) -> None:
    assert EndpointAddress.parse(url) == EndpointAddress(host, port)


@pytest.mark.parametrize("url", ["localhost", "in-process", "fe80::1:8001", "host:port", ":8001", ""])
def test_an_address_without_host_or_port_is_none(url: str) -> None:
    assert EndpointAddress.parse(url) is None


def _pool(*urls: str) -> EndpointPool:
    return EndpointPool([Endpoint(url, control=FakeModelControl()) for url in urls])


@pytest.mark.parametrize("spelled", ["localhost:8001", "grpc://127.0.0.1:8001", "[::1]:8001"])
def test_escalation_restarts_the_supervised_triton_however_its_url_is_spelled(spelled: str) -> None:
    pool = _pool("gpu-node:8001", spelled, "127.0.0.1:9001")
    restarts: list[str] = []
    settings = Settings(triton_host="127.0.0.1", triton_grpc_port=8001)
    supervised = SupervisedTriton.of(settings, pool, lambda reason: restarts.append(reason) is None)
    assert supervised.endpoint is pool.endpoints[1]
    supervised.escalate(pool.endpoints[0], "another server's model")
    supervised.escalate(pool.endpoints[2], "another port")
    supervised.escalate(pool.endpoints[1], "animatediff_unet keeps failing")
    assert restarts == ["animatediff_unet keeps failing"]


def test_nothing_is_supervised_when_no_endpoint_is_the_supervised_triton() -> None:
    supervised = SupervisedTriton.of(Settings(triton_grpc_port=8001), _pool("gpu-node:8001"), lambda reason: True)
    assert supervised.endpoint is None


def _status(pid: int | None, *deaths: StubDeath, state: str = "ready") -> SupervisorStatus:
    return SupervisorStatus(os.getpid(), state, pid=pid, stub_deaths=deaths)  # type: ignore[arg-type]


def _death(seq: int, model: str = UNET, pid: int = 4242, exit_code: int = -9) -> StubDeath:
    return StubDeath(seq, model, pid, exit_code, datetime.now(UTC))


def test_the_feed_reports_each_stub_death_once_and_a_fresh_server(tmp_path: Path) -> None:
    path = Settings(data_dir=tmp_path).supervisor_status_path
    feed = SupervisorFeed(path)
    assert feed.poll() == []  # no file: not under make serve
    write_status(path, _status(100, _death(1)))
    assert feed.poll() == [KILLED]
    assert feed.poll() == []
    write_status(path, _status(100, _death(1), _death(2, "animatediff_vae_decoder", 77, 3)))
    assert feed.poll() == [StubDied("animatediff_vae_decoder", 77, "exit code 3")]
    write_status(path, _status(None, _death(1), _death(2), state="restarting"))
    write_status(path, _status(200, state="starting"))
    assert feed.poll() == []  # not ready yet
    write_status(path, _status(200, _death(3, pid=5151)))
    assert feed.poll() == [ServerRestarted(200), StubDied(UNET, 5151, "killed by SIGKILL")]
    dead_supervisor = SupervisorStatus(2**22 + 1, "ready", pid=300, stub_deaths=(_death(4),))
    write_status(path, dead_supervisor)  # no process has that pid (above pid_max's default)
    assert feed.poll() == []


class Healing:
    """A healer over one endpoint of a fake repository API, recording escalations and changes."""

    def __init__(self, max_heals: int = 3) -> None:
        self.control = FakeModelControl()
        self.endpoint = Endpoint("localhost:8001", control=self.control)
        self.escalations: list[str] = []
        self.changes = 0
        self.healer = Healer(HealBudget(max_heals, 600.0), escalate=lambda e, reason: self.escalations.append(reason))
        self.healer.on_change(self.changed)

    def changed(self) -> None:
        self.changes += 1

    def sickness(self) -> str | None:
        return self.healer.sickness(self.endpoint, [UNET])

    async def settle(self) -> None:
        for _ in range(20):
            await asyncio.sleep(0)


def test_a_stub_death_no_job_met_is_healed_and_the_model_serves_again() -> None:
    async def scenario(healing: Healing) -> None:
        healing.healer.react(healing.endpoint, KILLED)
        assert healing.sickness() == (
            f"{UNET} is healing on localhost:8001: its Python-backend stub (pid 4242) died: killed by SIGKILL"
        )
        await healing.settle()

    healing = Healing()
    asyncio.run(scenario(healing))
    assert healing.control.calls == [("reload", UNET)] and healing.sickness() is None
    assert healing.healer.healed == 1 and healing.changes == 2 and healing.escalations == []


def test_heals_beyond_the_budget_escalate_and_a_fresh_server_starts_a_new_budget() -> None:
    async def scenario(healing: Healing) -> None:
        healing.healer.react(healing.endpoint, KILLED)
        await healing.settle()
        healing.healer.react(healing.endpoint, StubDied(UNET, 5151, "killed by SIGKILL"))  # over a budget of 1
        assert healing.sickness() == (
            f"{UNET} is unservable on localhost:8001: 1 heal(s) in 600 s: "
            "its Python-backend stub (pid 5151) died: killed by SIGKILL"
        )
        healing.healer.heal(healing.endpoint, UNET, "a job met it too")  # the same death: no second escalation
        why = f"{UNET} keeps failing: its Python-backend stub (pid 5151) died: killed by SIGKILL"
        assert healing.escalations == [why]
        healing.healer.react(healing.endpoint, ServerRestarted(999))
        assert healing.sickness() is None
        healing.healer.react(healing.endpoint, StubDied(UNET, 6161, "killed by SIGKILL"))
        await healing.settle()

    healing = Healing(max_heals=1)
    asyncio.run(scenario(healing))
    assert healing.control.calls == [("reload", UNET), ("reload", UNET)]  # healed again, not escalated
    assert healing.healer.healed == 2 and healing.healer.escalations == 1 and len(healing.escalations) == 1


def test_a_reload_that_fails_gives_up_and_escalates() -> None:
    healing = Healing()
    healing.control.failures[UNET] = "failed to load 'animatediff_unet'"

    async def scenario() -> None:
        healing.healer.react(healing.endpoint, KILLED)
        await healing.settle()

    asyncio.run(scenario())
    assert healing.sickness() == f"{UNET} is unservable on localhost:8001: reload failed: failed to load '{UNET}'"
    assert healing.escalations == [f"reloading {UNET} failed: failed to load '{UNET}'"]
    healing.healer.forget(healing.endpoint, [UNET])  # loaded afresh by someone
    assert healing.sickness() is None


def test_the_healer_follows_the_supervisor_feed(tmp_path: Path) -> None:
    healing = Healing()
    path = Settings(data_dir=tmp_path).supervisor_status_path
    write_status(path, _status(100, _death(1)))
    supervised = SupervisedTriton(healing.endpoint, None, SupervisorFeed(path))

    async def scenario() -> None:
        follower = asyncio.create_task(healing.healer.follow(supervised))
        for _ in range(200):
            if healing.healer.healed:
                break
            await asyncio.sleep(0.01)
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)

    asyncio.run(scenario())
    assert healing.control.calls == [("reload", UNET)] and healing.healer.healed == 1
