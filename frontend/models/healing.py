"""Healing a Triton model whose Python-backend stub died on one endpoint.

Triton keeps listing such a model READY while every request to it fails ("Stub process ... is not healthy"), and
an unload of it can hang, so a heal reloads it with fresh instances (``ModelControl.reload``). While it heals, the
model is unservable on that endpoint (jobs wait or go elsewhere). At most ``MAX_HEALS`` heals per model and
endpoint within ``WINDOW_SECONDS``; beyond that, or when a reload fails, it stays unservable with the reason until
a probe finds the endpoint restarted or someone loads the model (``POST /api/v1/models/{id}/load``), and
``escalate`` is told (``make serve`` restarts its supervised Triton then).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from visualizr.frontend.infra.control import ModelControlError
from visualizr.frontend.infra.endpoints import Endpoint

logger = logging.getLogger("visualizr.frontend.models")

MAX_HEALS = 3
WINDOW_SECONDS = 600.0
HEALING = "healing"
UNSERVABLE = "unservable"


@dataclass
class Sickness:
    state: str  # healing | unservable
    reason: str
    since: float


@dataclass(eq=False)
class Healer:
    on_change: Callable[[], None]
    escalate: Callable[[Endpoint, str], None] = lambda endpoint, reason: None
    now: Callable[[], float] = time.monotonic
    sick: dict[tuple[str, str], Sickness] = field(default_factory=dict)  # (endpoint url, triton model) ->
    _heals: dict[tuple[str, str], deque[float]] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    healed: int = 0

    def sickness(self, endpoint: Endpoint, names: list[str]) -> str | None:
        """Why one of ``names`` cannot serve on ``endpoint`` now (None: all can)."""
        for name in names:
            found = self.sick.get((endpoint.url, name))
            if found is not None:
                return f"{name} is {found.state} on {endpoint.url}: {found.reason}"
        return None

    def forget(self, endpoint: Endpoint, names: list[str] | None = None) -> None:
        """The endpoint restarted, or the model was loaded afresh: nothing known to be sick there any more."""
        keys = [k for k in self.sick if k[0] == endpoint.url and (names is None or k[1] in names)]
        for key in keys:
            if self.sick[key].state == UNSERVABLE:
                del self.sick[key]
        if keys:
            self.on_change()

    def heal(self, endpoint: Endpoint, name: str, reason: str) -> None:
        key = (endpoint.url, name)
        if key in self.sick:
            return  # healing already, or given up
        recent = self._heals.setdefault(key, deque())
        while recent and recent[0] < self.now() - WINDOW_SECONDS:
            recent.popleft()
        if len(recent) >= MAX_HEALS:
            self.sick[key] = Sickness(UNSERVABLE, f"{MAX_HEALS} heals in {WINDOW_SECONDS:.0f} s: {reason}", self.now())
            logger.error("giving up on %s at %s: %s", name, endpoint.url, reason)
            self.escalate(endpoint, f"{name} keeps failing: {reason}")
            return
        recent.append(self.now())
        self.sick[key] = Sickness(HEALING, reason, self.now())
        logger.warning("healing %s at %s: %s", name, endpoint.url, reason)
        task = asyncio.get_running_loop().create_task(self._reload(endpoint, name))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reload(self, endpoint: Endpoint, name: str) -> None:
        key = (endpoint.url, name)
        started = self.now()
        try:
            await endpoint.control.reload(name)
        except (ModelControlError, Exception) as exc:  # recorded, never lost in a background task
            reason = exc.reason if isinstance(exc, ModelControlError) else f"{type(exc).__name__}: {exc}"
            self.sick[key] = Sickness(UNSERVABLE, f"reload failed: {reason}", self.now())
            logger.error("could not heal %s at %s: %s", name, endpoint.url, reason)
            self.escalate(endpoint, f"reloading {name} failed: {reason}")
        else:
            self.sick.pop(key, None)
            self.healed += 1
            logger.warning("healed %s at %s in %.1f s", name, endpoint.url, self.now() - started)
        self.on_change()

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
