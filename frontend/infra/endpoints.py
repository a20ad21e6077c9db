"""The inference tier: one or more Triton servers (``VISUALIZR_TRITON_URLS``), each an ``Endpoint`` that is up or
down, with the jobs it is running counted.

* A job goes to an up endpoint with the least work in flight (``least_busy``); the model service narrows the
  candidates to endpoints that can serve its model.
* An endpoint that fails (a stream cannot reach it, a probe finds it not ready) is marked down at once: it is
  drained (no new jobs) and its channel is dropped, so the restarted server is dialled afresh.
* ``watch()`` probes every endpoint: down ones with exponential backoff (``PROBE_BACKOFF``: 0.25 s doubling to
  5 s), each on a fresh channel, up ones every ``PROBE_UP_SECONDS`` (Triton's liveness: readiness also says whether
  every model is loaded, which is the model service's business), so that a dead server is noticed before a job is
  thrown at it, and a restarted one as soon as it answers. Listeners (``on_change``) hear every up/down change; the
  job queue uses it to start waiting jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from visualizr.backoff import ExponentialBackoff
from visualizr.frontend.infra.address import EndpointAddress
from visualizr.frontend.infra.control import ModelControl

logger = logging.getLogger("visualizr.frontend.endpoints")

PROBE_BACKOFF = ExponentialBackoff(first_s=0.25, max_s=5.0)
PROBE_UP_SECONDS = 2.0
WATCH_TICK_SECONDS = 0.1


@dataclass(eq=False)
class Endpoint:
    """One inference server. ``control`` is its repository API; ``connection`` what a backend streams over (the
    TritonConnection, or None for a backend that is not Triton)."""

    url: str
    control: ModelControl
    connection: Any = None
    up: bool = True  # optimistic until a probe or a failure says otherwise
    down_reason: str = ""
    down_since: float | None = None
    in_flight: int = 0
    failures: int = 0  # probes failed in a row while down
    next_probe: float = 0.0
    outages: int = 0  # times it went down since the API started

    @property
    def address(self) -> EndpointAddress | None:
        return EndpointAddress.parse(self.url)

    def describe(self) -> str:
        return self.url if self.up else f"{self.url} (down: {self.down_reason})"


@dataclass(eq=False)
class EndpointPool:
    endpoints: list[Endpoint]
    now: Callable[[], float] = time.monotonic
    listeners: list[Callable[[], None]] = field(default_factory=list)

    def on_change(self, listener: Callable[[], None]) -> None:
        self.listeners.append(listener)

    def _changed(self) -> None:
        for listener in list(self.listeners):
            listener()

    # ------------------------------------------------------------------ state

    def up(self) -> list[Endpoint]:
        return [e for e in self.endpoints if e.up]

    def find(self, url: str) -> Endpoint | None:
        """The endpoint at the server ``url`` names, however either is spelled (None: no such endpoint)."""
        address = EndpointAddress.parse(url)
        return next((e for e in self.endpoints if address is not None and e.address == address), None)

    @property
    def any_up(self) -> bool:
        return any(e.up for e in self.endpoints)

    def down_reasons(self) -> str:
        return "; ".join(e.describe() for e in self.endpoints if not e.up) or "no inference server configured"

    @staticmethod
    def least_busy(candidates: Iterable[Endpoint]) -> Endpoint | None:
        return min((e for e in candidates if e.up), key=lambda e: e.in_flight, default=None)

    def mark_down(self, endpoint: Endpoint, reason: str) -> None:
        if not endpoint.up:
            return
        endpoint.up, endpoint.down_reason, endpoint.down_since = False, reason, self.now()
        endpoint.failures, endpoint.next_probe = 0, self.now() + PROBE_BACKOFF.delay(1)
        endpoint.outages += 1
        logger.warning("inference server %s is down: %s", endpoint.url, reason)
        self._reset(endpoint)
        self._changed()

    def mark_up(self, endpoint: Endpoint) -> None:
        if endpoint.up:
            return
        outage = self.now() - (endpoint.down_since or self.now())
        endpoint.up, endpoint.down_reason, endpoint.down_since, endpoint.failures = True, "", None, 0
        logger.warning("inference server %s is back after %.1f s", endpoint.url, outage)
        self._changed()

    @staticmethod
    async def _redial(endpoint: Endpoint) -> None:
        """Drop the endpoint's channel: the next call dials the server afresh."""
        reset = getattr(endpoint.connection, "reset", None)
        if reset is not None:
            await reset()

    def _reset(self, endpoint: Endpoint) -> None:
        with contextlib.suppress(RuntimeError):  # no running loop (unit tests): nothing to drop
            asyncio.get_running_loop().create_task(self._redial(endpoint))

    # ------------------------------------------------------------------ probing

    async def probe(self, endpoint: Endpoint) -> bool:
        try:
            ready = bool(await endpoint.control.server_live())
        except Exception as exc:  # a control that raises is as good as down
            logger.debug("probe of %s failed: %s", endpoint.url, exc)
            ready = False
        if ready:
            self.mark_up(endpoint)
        elif endpoint.up:
            self.mark_down(endpoint, "not reachable (probe)")
        else:  # still down: the next probe dials afresh (a reused channel retries on gRPC's backoff, up to 2 min)
            endpoint.failures += 1
            endpoint.next_probe = self.now() + PROBE_BACKOFF.delay(endpoint.failures + 1)
            await self._redial(endpoint)
        if endpoint.up:
            endpoint.next_probe = self.now() + PROBE_UP_SECONDS
        return ready

    async def probe_due(self) -> None:
        due = [e for e in self.endpoints if e.next_probe <= self.now()]
        if due:
            await asyncio.gather(*(self.probe(e) for e in due))

    async def watch(self) -> None:
        """Probe forever (the app's lifespan runs it as a task and cancels it)."""
        while True:
            try:
                await self.probe_due()
            except Exception:  # the watcher must outlive any one probe
                logger.exception("endpoint probe failed")
            await asyncio.sleep(WATCH_TICK_SECONDS)

    async def aclose(self) -> None:
        for endpoint in self.endpoints:
            with contextlib.suppress(Exception):
                await endpoint.control.aclose()
