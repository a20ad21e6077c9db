"""What the system domain reads from the others, as protocols (the app passes the generation and model services):
the system domain depends on no other domain's modules. And the UTC day arithmetic its figures use."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

from visualizr.frontend.infra.gpu import GpuInfo


@runtime_checkable
class JobCounts(Protocol):
    """The job queue as health and metrics see it (``GenerationService``)."""

    @property
    def waiting_count(self) -> int: ...

    @property
    def running_count(self) -> int: ...

    @property
    def workers_alive(self) -> int: ...

    @property
    def workers_configured(self) -> int: ...

    @property
    def worker_restarts(self) -> int: ...


@runtime_checkable
class EventListener(Protocol):
    """The listener of other replicas' job events (``EventRelay``) as health sees it."""

    listening: bool


@runtime_checkable
class HealingCounts(Protocol):
    """Healing of dead Python-backend stubs as metrics see it (``Healer``)."""

    healed: int
    escalations: int


class LoadedModelView(Protocol):
    id: str
    memory_usage_gb: float | None
    loaded_at: str | None


class ModelHealthView(Protocol):
    id: str
    status: str
    serving: bool
    problems: list[str]


@runtime_checkable
class ModelHealthSource(Protocol):
    """The models as health sees them (``ModelService``)."""

    async def health(self, gpu: GpuInfo) -> tuple[Sequence[LoadedModelView], Sequence[ModelHealthView]]: ...


def utc_midnight(ts: float) -> float:
    day = datetime.fromtimestamp(ts, tz=UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day.timestamp()


def utc_day(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d")
