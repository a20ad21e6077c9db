"""The one exponential backoff (visualizr.backoff) and the waits built on it: Triton restarts, probes of a down
inference server (each on a fresh channel), job retries."""

from __future__ import annotations

import asyncio

from visualizr.backoff import ExponentialBackoff
from visualizr.frontend.generation.running.retry import RetryPolicy
from visualizr.frontend.infra.endpoints import Endpoint, EndpointPool
from visualizr.supervisor import RestartBackoff


def test_doubles_from_the_first_delay_up_to_the_max() -> None:
    backoff = ExponentialBackoff(first_s=1, max_s=30)
    assert [backoff.delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
    assert backoff.delay(0) == backoff.delay(-3) == 1  # no failure yet counts as the first
    assert backoff.delay(10_000) == 30  # no overflow however long the failures go on


def test_job_retries_wait_half_a_second_doubling_to_ten() -> None:
    assert [RetryPolicy.delay(attempts) for attempts in range(0, 8)] == [0.5, 0.5, 1, 2, 4, 8, 10, 10]


class Unreachable:
    """A down server's connection: every liveness probe fails; counts the channels dropped."""

    def __init__(self) -> None:
        self.resets = 0

    async def server_live(self) -> bool:
        return False

    async def reset(self) -> None:
        self.resets += 1


def test_a_down_endpoint_is_probed_on_a_fresh_channel_after_a_quarter_second_doubling_to_five() -> None:
    clock = [100.0]
    down = Unreachable()
    endpoint = Endpoint("127.0.0.1:1", control=down, connection=down)  # type: ignore[arg-type] - probes only
    pool = EndpointPool([endpoint], now=lambda: clock[0])

    async def waits() -> list[float]:
        pool.mark_down(endpoint, "test")
        found = [endpoint.next_probe - clock[0]]
        for _ in range(6):
            await pool.probe(endpoint)
            found.append(endpoint.next_probe - clock[0])
        await asyncio.sleep(0)  # the reset mark_down scheduled
        return found

    assert asyncio.run(waits()) == [0.25, 0.5, 1, 2, 4, 5, 5]
    assert down.resets == 1 + 6  # marked down, then after every failed probe: gRPC's own redial waits up to 2 min


def test_restarts_are_an_exponential_backoff_that_resets_after_a_stable_run() -> None:
    backoff = RestartBackoff(first_s=1, max_s=30, stable_s=60)
    assert isinstance(backoff, ExponentialBackoff) and backoff.delay(3) == 4
