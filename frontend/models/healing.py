"""Healing a Triton model whose Python-backend stub died on one endpoint.

Triton keeps listing such a model READY while every request to it fails ("Stub process ... is not healthy"), and
an unload of it can hang, so a heal reloads it with fresh instances (``ModelControl.reload``). A heal starts when
a job meets the dead stub (``Placement.report``) or, on the Triton `make serve` supervises, as soon as the
supervisor sees the stub die (``follow``: no job needed). While it heals, the model is unservable on that endpoint
(jobs wait or go elsewhere). At most ``HealBudget.max_heals`` heals per model and endpoint within
``window_s`` (``VISUALIZR_HEAL_MAX`` / ``VISUALIZR_HEAL_WINDOW``); beyond that, or when a reload fails, it is given
up on there with the reason until the endpoint is found restarted (a fresh server: a fresh budget) or someone
loads the model (``POST /api/v1/models/{id}/load``), and ``escalate`` is told (``make serve`` restarts its
supervised Triton then).

    healthy --heal--> healing --reload done--> healthy
       |                 '--reload failed--> unservable --forget (restarted / loaded)--> healthy
       '--heal beyond the budget--> unservable (escalated)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from visualizr.frontend.infra.control import ModelControlError
from visualizr.frontend.infra.endpoints import Endpoint
from visualizr.frontend.infra.supervision import FEED_POLL_SECONDS, StubDied, SupervisedTriton, SupervisorEvent
from visualizr.settings import Settings

logger = logging.getLogger("visualizr.frontend.models")

SickState = Literal["healing", "unservable"]
HEALING: SickState = "healing"
UNSERVABLE: SickState = "unservable"
Key = tuple[str, str]  # (endpoint url, Triton model)


@dataclass(frozen=True)
class HealBudget:
    max_heals: int = 3
    window_s: float = 600.0

    @classmethod
    def from_settings(cls, settings: Settings) -> HealBudget:
        return cls(settings.heal_max, settings.heal_window_s)


@dataclass(frozen=True)
class Sickness:
    state: SickState
    reason: str


class Healer:
    def __init__(
        self,
        budget: HealBudget,
        escalate: Callable[[Endpoint, str], None] = lambda endpoint, reason: None,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.budget, self.escalate, self.now = budget, escalate, now
        self.sick: dict[Key, Sickness] = {}
        self.healed = 0  # heals that succeeded
        self.escalations = 0  # models given up on
        self._heals: dict[Key, deque[float]] = {}  # when each recent heal started
        self._tasks: set[asyncio.Task[None]] = set()
        self._listeners: list[Callable[[], None]] = []

    def on_change(self, listener: Callable[[], None]) -> None:
        """``listener()`` after every change of what is sick."""
        self._listeners.append(listener)

    def sickness(self, endpoint: Endpoint, names: list[str]) -> str | None:
        """Why one of ``names`` cannot serve on ``endpoint`` now (None: all can)."""
        for name in names:
            found = self.sick.get((endpoint.url, name))
            if found is not None:
                return f"{name} is {found.state} on {endpoint.url}: {found.reason}"
        return None

    def forget(self, endpoint: Endpoint, names: list[str] | None = None) -> None:
        """The endpoint restarted (``names`` None), or those models were loaded afresh: none of them is given up
        on any more, and their heal budget starts over. A heal under way goes on."""
        def ours(key: Key) -> bool:
            return key[0] == endpoint.url and (names is None or key[1] in names)

        given_up = [key for key, found in self.sick.items() if ours(key) and found.state == UNSERVABLE]
        for key in given_up:
            del self.sick[key]
        for key in [key for key in self._heals if ours(key)]:
            del self._heals[key]
        if given_up:
            self._changed()

    def heal(self, endpoint: Endpoint, name: str, reason: str) -> None:
        key = (endpoint.url, name)
        if key in self.sick:
            return  # healing already, or given up
        recent = self._heals.setdefault(key, deque())
        while recent and recent[0] < self.now() - self.budget.window_s:
            recent.popleft()
        if len(recent) >= self.budget.max_heals:
            heals = f"{self.budget.max_heals} heal(s) in {self.budget.window_s:.0f} s"
            self._give_up(endpoint, name, f"{heals}: {reason}", f"{name} keeps failing: {reason}")
            return
        recent.append(self.now())
        self._set(key, HEALING, reason)
        logger.warning("healing %s at %s: %s", name, endpoint.url, reason)
        task = asyncio.get_running_loop().create_task(self._reload(endpoint, name))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def react(self, endpoint: Endpoint, event: SupervisorEvent) -> None:
        """What the supervisor of ``endpoint``'s Triton saw: a stub died (heal it), or a fresh server is ready."""
        if isinstance(event, StubDied):
            self.heal(endpoint, event.model, f"its Python-backend stub (pid {event.pid}) died: {event.cause}")
        else:
            logger.warning("the Triton at %s was restarted (pid %d)", endpoint.url, event.pid)
            self.forget(endpoint)

    async def follow(self, supervised: SupervisedTriton) -> None:
        """React to what the supervised Triton's supervisor reports, until cancelled (the app's lifespan)."""
        if supervised.endpoint is None:
            return
        while True:
            try:
                for event in supervised.feed.poll():
                    self.react(supervised.endpoint, event)
            except Exception:  # the follower must outlive any one bad read
                logger.exception("reading the Triton supervisor's status failed")
            await asyncio.sleep(FEED_POLL_SECONDS)

    async def _reload(self, endpoint: Endpoint, name: str) -> None:
        started = self.now()
        try:
            await endpoint.control.reload(name)
        except Exception as exc:  # recorded, never lost in a background task
            reason = exc.reason if isinstance(exc, ModelControlError) else f"{type(exc).__name__}: {exc}"
            self._give_up(endpoint, name, f"reload failed: {reason}", f"reloading {name} failed: {reason}")
            return
        self.sick.pop((endpoint.url, name), None)
        self.healed += 1
        logger.warning("healed %s at %s in %.1f s", name, endpoint.url, self.now() - started)
        self._changed()

    def _give_up(self, endpoint: Endpoint, name: str, reason: str, escalation: str) -> None:
        self._set((endpoint.url, name), UNSERVABLE, reason)
        self.escalations += 1
        logger.error("giving up on %s at %s: %s", name, endpoint.url, reason)
        self.escalate(endpoint, escalation)

    def _set(self, key: Key, state: SickState, reason: str) -> None:
        self.sick[key] = Sickness(state, reason)
        self._changed()

    def _changed(self) -> None:
        for listener in list(self._listeners):
            listener()

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
