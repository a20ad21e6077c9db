"""GET /api/v1/health: the API reference's shape, plus what an operator needs to see why it is not healthy.

``healthy`` only when a job would run: every inference endpoint up, every model servable (a model that is not
loaded, or loading, is fine: jobs load it on demand), every worker alive, the disk above its floor, the job
database and the object store reachable. Otherwise ``degraded`` with the reasons in ``problems``. HTTP 503 when no
inference endpoint is up (no job can run), else 200.

Beyond the reference: ``inference_servers`` (each Triton endpoint: up/down, jobs in flight, why it is down),
``models`` (each model's status and problems), ``workers`` (alive, configured, restarts), ``database`` (its
engine, up or down by a ``SELECT 1`` within ``DATABASE_TIMEOUT_S``, and on PostgreSQL whether this replica receives
the other replicas' job events), ``storage`` (free space of the data folder against the floor: with S3 too, videos
are encoded there), ``object_store`` (where the files live, up/down and why: an S3 bucket that cannot be reached
makes the service degraded), ``triton_supervisor`` (under ``make serve``: the supervised Triton's state, restarts
and why the last one happened, else null), ``problems``, ``replica`` (which API replica answered). Never behind the
API keys (load balancers and orchestrators probe it).
"""

from __future__ import annotations

import contextlib
import time

import msgspec
from litestar import Response, get
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from visualizr import __version__
from visualizr.frontend import clock
from visualizr.frontend.errors import DatabaseUnavailableError
from visualizr.frontend.infra.disk import MIB, DiskGuard
from visualizr.frontend.infra.endpoints import EndpointPool
from visualizr.frontend.infra.gpu import GpuInfo, GpuReader
from visualizr.frontend.jobs import stats
from visualizr.frontend.jobs.files import JobFiles
from visualizr.frontend.jobs.store import JobStore
from visualizr.frontend.system.sources import EventListener, JobCounts, ModelHealthSource, utc_midnight
from visualizr.settings import Settings
from visualizr.supervisor_status import read_supervisor_status

HEALTHY = "healthy"
DEGRADED = "degraded"
DATABASE_TIMEOUT_S = 2.0


class QueueStatus(msgspec.Struct):
    pending_requests: int
    processing_requests: int
    completed_today: int


class InferenceServer(msgspec.Struct):
    url: str
    status: str  # up | down
    jobs_in_flight: int
    problem: str | None = None


class ModelHealth(msgspec.Struct):
    id: str
    status: str
    serving: bool
    problems: list[str]


class LoadedModel(msgspec.Struct):
    id: str
    memory_usage_gb: float | None
    loaded_at: str | None


class Workers(msgspec.Struct):
    alive: int
    configured: int
    restarts: int


class DatabaseHealth(msgspec.Struct):
    engine: str  # sqlite | postgresql
    status: str  # up | down
    events: str | None  # postgresql: listening | reconnecting (other replicas' job events); sqlite: null
    problem: str | None = None


class Storage(msgspec.Struct):
    free_mb: float
    min_free_mb: float


class ObjectStoreHealth(msgspec.Struct):
    location: str  # the data folder, or s3://bucket/prefix at its endpoint
    status: str  # up | down
    problem: str | None = None


class TritonSupervision(msgspec.Struct):
    state: str  # starting | ready | restarting | stopped
    restarts: int
    last_exit_code: int | None
    last_restart_reason: str | None


class HealthResponse(msgspec.Struct):
    status: str
    timestamp: str
    version: str
    uptime_seconds: int
    gpu_info: GpuInfo
    loaded_models: list[LoadedModel]
    queue_status: QueueStatus
    inference_servers: list[InferenceServer]
    models: list[ModelHealth]
    workers: Workers
    database: DatabaseHealth
    storage: Storage
    object_store: ObjectStoreHealth
    triton_supervisor: TritonSupervision | None
    problems: list[str]
    replica: str


class Uptime:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def seconds(self) -> int:
        return int(time.monotonic() - self.started)


def _storage(disk: DiskGuard) -> tuple[Storage, str | None]:
    try:
        free = disk.free_bytes() / MIB
    except OSError as exc:
        return Storage(0.0, disk.floor_bytes / MIB), f"the data folder cannot be read: {exc}"
    return Storage(round(free, 1), disk.floor_bytes / MIB), disk.shortage()


async def _database(store: JobStore, events: EventListener | None) -> DatabaseHealth:
    """A ``SELECT 1`` within ``DATABASE_TIMEOUT_S``, and whether other replicas' job events are being received."""
    listening = None if events is None else ("listening" if events.listening else "reconnecting")
    try:
        await store.database.ping(DATABASE_TIMEOUT_S)
    except Exception as exc:  # whatever the driver says, the answer is the same: down, and why
        reason = exc.details.get("reason") if isinstance(exc, DatabaseUnavailableError) else str(exc)
        return DatabaseHealth(store.database.dialect, "down", listening, reason or type(exc).__name__)
    return DatabaseHealth(store.database.dialect, "up", listening)


@get("/api/v1/health", tags=["system"], status_code=HTTP_200_OK)
async def health(
    jobs: JobCounts,
    models: ModelHealthSource,
    pool: EndpointPool,
    gpu: GpuReader,
    store: JobStore,
    disk: DiskGuard,
    files: JobFiles,
    settings: Settings,
    uptime: Uptime,
    events: EventListener | None,
) -> Response[HealthResponse]:
    """Service health: inference servers, models, workers, disk, GPUs and the queue (503 when no job can run)."""
    now = clock.now()
    gpu_info = await gpu.snapshot()
    loaded, model_health = await models.health(gpu_info)
    database = await _database(store, events)
    completed_today = 0
    if database.status == "up":
        with contextlib.suppress(DatabaseUnavailableError):  # down since the ping: reported by the next probe
            counts = await store.run(lambda conn: stats.request_counts(conn, utc_midnight(now)))
            completed_today = counts.completed_since
    servers = [
        InferenceServer(e.url, "up" if e.up else "down", e.in_flight, None if e.up else e.down_reason)
        for e in pool.endpoints
    ]
    storage, disk_problem = _storage(disk)
    problems = [f"inference server {s.url} is down: {s.problem}" for s in servers if s.status == "down"]
    if database.status == "down":
        problems.append(f"the job database {store.describe()} cannot be reached: {database.problem}")
    problems += [f"model {m.id} cannot serve: {'; '.join(m.problems)}" for m in model_health if not m.serving]
    if jobs.workers_alive < jobs.workers_configured:
        problems.append(f"{jobs.workers_configured - jobs.workers_alive} generation worker(s) not running")
    if disk_problem:
        problems.append(disk_problem)
    objects_problem = await files.problem()
    if objects_problem:
        problems.append(objects_problem)
    objects = ObjectStoreHealth(files.store.describe(), "down" if objects_problem else "up", objects_problem)
    supervised = read_supervisor_status(settings.supervisor_status_path)
    supervision = None
    if supervised is not None and supervised.supervisor_alive():
        supervision = TritonSupervision(
            supervised.state, supervised.restarts, supervised.last_exit_code, supervised.last_restart_reason
        )
        if supervised.state != "ready":
            problems.append(f"the supervised Triton is {supervised.state} (restarts: {supervised.restarts})")
    body = HealthResponse(
        status=DEGRADED if problems else HEALTHY,
        timestamp=clock.iso(now) or "",
        version=__version__,
        uptime_seconds=uptime.seconds(),
        gpu_info=gpu_info,
        loaded_models=[LoadedModel(m.id, m.memory_usage_gb, m.loaded_at) for m in loaded],
        queue_status=QueueStatus(jobs.waiting_count, jobs.running_count, completed_today),
        inference_servers=servers,
        models=[ModelHealth(m.id, m.status, m.serving, list(m.problems)) for m in model_health],
        workers=Workers(jobs.workers_alive, jobs.workers_configured, jobs.worker_restarts),
        database=database,
        storage=storage,
        object_store=objects,
        triton_supervisor=supervision,
        problems=problems,
        replica=settings.replica_id,
    )
    return Response(body, status_code=HTTP_200_OK if pool.any_up else HTTP_503_SERVICE_UNAVAILABLE)
