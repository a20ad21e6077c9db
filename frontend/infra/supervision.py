"""`make serve`'s Triton supervisor as the API sees it (``SupervisedTriton``): which pool endpoint is the Triton it
supervises (compared by address, not by spelling), how to ask for its restart, and what its status file
(``visualizr.supervisor_status``) reports about it, as events each read once (``SupervisorFeed``):

* ``StubDied``: a Python-backend stub of the running server died (the supervisor watches its process tree);
* ``ServerRestarted``: a new tritonserver is ready after a restart, so nothing known about the old one holds.

The API only reads the file and calls ``restart``; the supervisor never calls into the API.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from visualizr.frontend.infra.endpoints import Endpoint, EndpointPool
from visualizr.process_tree import describe_exit
from visualizr.settings import Settings
from visualizr.supervisor_status import read_supervisor_status

logger = logging.getLogger("visualizr.frontend.supervision")

FEED_POLL_SECONDS = 0.25


@dataclass(frozen=True)
class StubDied:
    model: str  # the Triton model the stub served
    pid: int
    cause: str  # "killed by SIGKILL", "exit code 1"


@dataclass(frozen=True)
class ServerRestarted:
    pid: int  # the new tritonserver's


SupervisorEvent = StubDied | ServerRestarted


class SupervisorFeed:
    """Successive reads of the supervisor's status file as events, each once. Deaths recorded before the feed's
    first read count too (they are the running server's); a file whose supervisor is gone says nothing."""

    def __init__(self, status_path: Path) -> None:
        self.status_path = status_path
        self._ready_pid: int | None = None
        self._last_death = 0

    def poll(self) -> list[SupervisorEvent]:
        status = read_supervisor_status(self.status_path)
        if status is None or not status.supervisor_alive():
            return []
        events: list[SupervisorEvent] = []
        if status.state == "ready" and status.pid is not None and status.pid != self._ready_pid:
            if self._ready_pid is not None:
                events.append(ServerRestarted(status.pid))
            self._ready_pid = status.pid
        for death in status.stub_deaths:
            if death.seq > self._last_death:
                events.append(StubDied(death.model, death.pid, describe_exit(death.exit_code)))
                self._last_death = death.seq
        return events


class SupervisedTriton:
    """The supervised Triton: ``endpoint`` (None when the API sends no jobs there), ``restart(reason)`` (None when
    nothing supervises it from this process) and the ``feed`` of what its supervisor reports."""

    def __init__(self, endpoint: Endpoint | None, restart: Callable[[str], bool] | None, feed: SupervisorFeed) -> None:
        self.endpoint, self.restart, self.feed = endpoint, restart, feed

    @classmethod
    def of(cls, settings: Settings, pool: EndpointPool, restart: Callable[[str], bool] | None) -> SupervisedTriton:
        """The pool's endpoint at ``settings.triton_grpc_url``'s address (where `make serve` runs Triton)."""
        return cls(pool.find(settings.triton_grpc_url), restart, SupervisorFeed(settings.supervisor_status_path))

    def escalate(self, endpoint: Endpoint, reason: str) -> None:
        """Healing cannot help ``endpoint``: restart it when it is the supervised Triton."""
        if endpoint is not self.endpoint or self.restart is None:
            logger.error("%s needs a restart nobody here can do: %s", endpoint.url, reason)
        elif self.restart(reason):
            logger.error("restarting the Triton at %s: %s", endpoint.url, reason)
        else:
            logger.warning("the Triton at %s is restarting already: %s", endpoint.url, reason)
