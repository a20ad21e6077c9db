"""GET /api/v1/health (minimal for now: the GPU, loaded-model and metrics parts come with a later issue)."""

from __future__ import annotations

import time

import msgspec
from litestar import get

from frontend import clock
from frontend.generation.schemas import DEFAULT_MODEL
from frontend.generation.service import GenerationService
from visualizr import __version__


class QueueStatus(msgspec.Struct):
    pending_requests: int
    processing_requests: int


class HealthResponse(msgspec.Struct):
    status: str  # "healthy" when Triton and the default model are ready, else "degraded"
    timestamp: str
    version: str
    uptime_seconds: int
    triton_ready: bool
    queue_status: QueueStatus


class Uptime:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def seconds(self) -> int:
        return int(time.monotonic() - self.started)


@get("/api/v1/health", tags=["system"])
async def health(service: GenerationService, uptime: Uptime) -> HealthResponse:
    ready = await service.backend.ready(DEFAULT_MODEL)
    return HealthResponse(
        status="healthy" if ready else "degraded",
        timestamp=clock.iso(clock.now()) or "",
        version=__version__,
        uptime_seconds=uptime.seconds(),
        triton_ready=ready,
        queue_status=QueueStatus(
            pending_requests=service.waiting_count, processing_requests=service.running_count
        ),
    )
