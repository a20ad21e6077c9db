"""GET /api/v1/health: the API reference's shape. HTTP 200 ``healthy`` when Triton answers ready, else 503
``degraded`` (Triton unreachable or not ready). A model that is not loaded does not degrade the service:
generation loads it on demand.

* gpu_info: NVML (``available: false, count: 0, devices: []`` without a GPU or driver);
* loaded_models: models whose every Triton model is READY in Triton's repository index; ``memory_usage_gb``
  as measured by our own load (NVML used memory after - before), 0.0 without a GPU, null when the model was
  loaded by someone else (e.g. at server start); ``loaded_at`` our load's time, else when first seen loaded;
* queue_status: jobs waiting, jobs running, jobs completed since 00:00 UTC.

Never behind the API keys (load balancers and orchestrators probe it).
"""

from __future__ import annotations

import time

import msgspec
from litestar import Response, get
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from visualizr import __version__
from visualizr.frontend import clock
from visualizr.frontend.generation.service import GenerationService
from visualizr.frontend.models.schemas import LoadedModel
from visualizr.frontend.models.service import ModelService
from visualizr.frontend.system import job_stats
from visualizr.frontend.system.gpu import GpuInfo
from visualizr.frontend.system.metrics import utc_midnight

HEALTHY = "healthy"
DEGRADED = "degraded"


class QueueStatus(msgspec.Struct):
    pending_requests: int
    processing_requests: int
    completed_today: int


class HealthResponse(msgspec.Struct):
    status: str
    timestamp: str
    version: str
    uptime_seconds: int
    gpu_info: GpuInfo
    loaded_models: list[LoadedModel]
    queue_status: QueueStatus


class Uptime:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def seconds(self) -> int:
        return int(time.monotonic() - self.started)


@get("/api/v1/health", tags=["system"], status_code=HTTP_200_OK)
async def health(service: GenerationService, models: ModelService, uptime: Uptime) -> Response[HealthResponse]:
    """Service health: Triton readiness, GPUs, loaded models and the queue (503 when degraded)."""
    now = clock.now()
    ready = await models.control.server_ready()
    gpu = await models.gpu.snapshot()
    loaded = await models.loaded_models(gpu) if ready else None
    counts = await service.store.run(lambda conn: job_stats.request_counts(conn, utc_midnight(now)))
    body = HealthResponse(
        status=HEALTHY if ready else DEGRADED,
        timestamp=clock.iso(now) or "",
        version=__version__,
        uptime_seconds=uptime.seconds(),
        gpu_info=gpu,
        loaded_models=loaded or [],
        queue_status=QueueStatus(
            pending_requests=service.waiting_count,
            processing_requests=service.running_count,
            completed_today=counts.completed_since,
        ),
    )
    return Response(body, status_code=HTTP_200_OK if ready else HTTP_503_SERVICE_UNAVAILABLE)
