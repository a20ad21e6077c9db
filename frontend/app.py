"""The application factory: one object graph per app, every collaborator passed to its constructor, and the one
list of routes. docs/ARCHITECTURE.md draws the layers (jobs and infra below the domains) and the job path."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.di import Provide
from litestar.middleware import DefineMiddleware

from visualizr.export.characters import PICTURES_DIRNAME
from visualizr.frontend.assets.controllers import AssetsController
from visualizr.frontend.assets.files import serve_asset
from visualizr.frontend.assets.service import AssetService
from visualizr.frontend.catalog import ModelCatalog
from visualizr.frontend.characters.controllers import CharactersController
from visualizr.frontend.characters.service import CharacterService
from visualizr.frontend.errors import EXCEPTION_HANDLERS, DatabaseUnavailableError
from visualizr.frontend.generation.controllers import GenerationController, generation_updates
from visualizr.frontend.generation.intake.characters import CHARACTERS
from visualizr.frontend.generation.intake.options import client_options
from visualizr.frontend.generation.reporting.hub import GenerationHub
from visualizr.frontend.generation.reporting.relay import EventRelay
from visualizr.frontend.generation.running.backend import GenerationBackend
from visualizr.frontend.generation.running.triton_backend import TritonBackend
from visualizr.frontend.generation.service import GenerationService
from visualizr.frontend.infra.control import BackendReadiness, ModelControl
from visualizr.frontend.infra.disk import DataDirError, DiskGuard, prepare_data_dir, unusable
from visualizr.frontend.infra.endpoints import Endpoint, EndpointPool
from visualizr.frontend.infra.gpu import GpuReader, NvmlReader
from visualizr.frontend.infra.memory import return_large_frees_to_the_os
from visualizr.frontend.infra.objects import open_object_store
from visualizr.frontend.infra.supervision import SupervisedTriton
from visualizr.frontend.infra.triton import TritonConnection
from visualizr.frontend.jobs.characters import CharacterBook
from visualizr.frontend.jobs.database import open_database
from visualizr.frontend.jobs.files import WORK_DIR, JobFiles
from visualizr.frontend.jobs.schema import SchemaTooNewError
from visualizr.frontend.jobs.store import JobStore
from visualizr.frontend.jobs.telemetry import JobTelemetry
from visualizr.frontend.models.controllers import ModelsController
from visualizr.frontend.models.healing import HealBudget, Healer
from visualizr.frontend.models.placement import Placement
from visualizr.frontend.models.service import ModelService
from visualizr.frontend.security import ApiKeyMiddleware, warn_if_open
from visualizr.frontend.server_logs import install_server_log_filters
from visualizr.frontend.studio.controllers import STUDIO_ROUTES, StudioPage
from visualizr.frontend.studio.docs import openapi_config
from visualizr.frontend.studio.tickets import TicketBook
from visualizr.frontend.system.health import Uptime, health
from visualizr.frontend.system.metrics import system_metrics
from visualizr.frontend.system.prometheus import (
    HttpMetrics,
    JobTableCollector,
    ReplicaLabel,
    RequestMetricsMiddleware,
    ServiceCollector,
    new_registry,
    prometheus_metrics,
)
from visualizr.frontend.system.watermark import QueueWatermark
from visualizr.frontend.webhooks.sender import WebhookSender
from visualizr.frontend.webhooks.service import Webhooks
from visualizr.frontend.webhooks.targets import WebhookPolicy
from visualizr.settings import Settings

logger = logging.getLogger("visualizr.frontend")

ROUTES = [
    GenerationController,
    generation_updates,
    ModelsController,
    AssetsController,
    serve_asset,
    CharactersController,
    health,
    system_metrics,
    prometheus_metrics,
    *STUDIO_ROUTES,
]
IN_PROCESS_URL = "in-process"  # the one endpoint of an injected (non-Triton) backend


def inference_pool(
    settings: Settings, catalog: ModelCatalog, backend: GenerationBackend | None, control: ModelControl | None
) -> EndpointPool:
    """Triton at every ``settings.inference_urls``; or, for an injected backend, one endpoint whose repository API
    is ``control`` (default: as ready as the backend says)."""
    if backend is None:
        connections = [TritonConnection(url) for url in settings.inference_urls]
        return EndpointPool([Endpoint(c.url, control=c, connection=c) for c in connections])
    if control is None:
        cards = lambda: {i: catalog.get(i).triton_models for i in catalog.ids()}  # noqa: E731
        control = BackendReadiness(getattr(backend, "ready"), cards)  # noqa: B009 - a test backend's own check
    return EndpointPool([Endpoint(IN_PROCESS_URL, control=control)])


# What a page on another origin may send and read (VISUALIZR_CORS_ORIGINS; no cookies, so no credentials mode).
CORS_HEADERS = ["Authorization", "Content-Type", "Range", "If-None-Match", "If-Range", "Idempotency-Key"]
CORS_EXPOSED = ["Retry-After", "WWW-Authenticate", "Content-Range", "Accept-Ranges", "Content-Length", "ETag"]


def cors_config(settings: Settings) -> CORSConfig | None:
    if not settings.cors_origins:
        return None
    return CORSConfig(
        allow_origins=list(settings.cors_origins),
        allow_methods=["GET", "HEAD", "POST", "DELETE", "OPTIONS"],
        allow_headers=CORS_HEADERS,
        expose_headers=CORS_EXPOSED,
    )


def prepare_storage(settings: Settings) -> tuple[JobStore, JobFiles]:
    """The data folder created and proven writable, the object store of the files named and the job database
    opened once: DataDirError with one line when one is unusable (a file, read-only, not a database, not an
    ``s3://`` URL ...), before anything else starts. An S3 server that is down is a health problem, not this."""
    try:
        objects = open_object_store(settings.asset_store, settings.data_dir, settings.s3_endpoint_url)
    except ValueError as exc:
        raise DataDirError(str(exc)) from None
    files = JobFiles(objects, settings.data_dir / WORK_DIR)
    prepare_data_dir(settings.data_dir, files.encode_dir)
    store = JobStore(open_database(settings.database_url, settings.database_path))
    try:
        store.check()
    except (sqlite3.Error, OSError) as exc:
        raise unusable(settings.database_path, "job database", exc) from None
    except (DatabaseUnavailableError, SchemaTooNewError) as exc:
        reason = exc.details.get("reason") if isinstance(exc, DatabaseUnavailableError) else str(exc)
        raise DataDirError(f"the job database {store.describe()} is not usable: {reason}") from None
    return store, files


def create_app(
    settings: Settings | None = None,
    backend: GenerationBackend | None = None,
    *,
    model_control: ModelControl | None = None,
    gpu: GpuReader | None = None,
    restart_triton: Callable[[str], bool] | None = None,
) -> Litestar:
    """The API over Triton (``settings.inference_urls``), or over an injected ``backend`` (tests) whose models are
    controlled by ``model_control``. ``gpu`` defaults to NVML. ``restart_triton(reason)`` restarts the Triton at
    ``settings.triton_grpc_url`` when healing cannot help (``make serve`` passes its supervisor's; False: a restart
    is under way already)."""
    settings = settings or Settings.from_env()
    store, files = prepare_storage(settings)
    catalog = ModelCatalog(settings.model_repository)
    gpu = gpu or NvmlReader()
    pool = inference_pool(settings, catalog, backend, model_control)
    supervised = SupervisedTriton.of(settings, pool, restart_triton)
    healer = Healer(HealBudget.from_settings(settings), escalate=supervised.escalate)
    models = ModelService(catalog, pool, gpu, store, healer, cpu_engine=settings.cpu_engine)
    placement = Placement(catalog, pool, models, healer, gpu)
    disk = DiskGuard(settings.data_dir, settings.min_free_disk_mb)
    relay = EventRelay(settings.database_url, settings.replica_id) if settings.database_url else None
    hub = GenerationHub(relay)
    metrics_registry, own_metrics = new_registry(), new_registry()  # all /metrics shows; this replica's series
    http_metrics = HttpMetrics(own_metrics)
    telemetry = JobTelemetry(own_metrics)
    service = GenerationService(
        settings, store, catalog, backend or TritonBackend(), placement, hub, disk, files, telemetry=telemetry
    )
    own_metrics.register(ServiceCollector(service, pool, healer, settings.supervisor_status_path))
    metrics_registry.register(ReplicaLabel(own_metrics, settings.replica_id))
    metrics_registry.register(JobTableCollector(store))
    webhook_policy = WebhookPolicy(settings)
    sender = WebhookSender(settings, store, webhook_policy, service.get_status, own_metrics, service.replica)
    webhooks = Webhooks(store, webhook_policy)
    assets = AssetService(store, files)
    book = CharacterBook(store, files.store)
    builtins = {character_id: c.appearance for character_id, c in CHARACTERS.items()}
    characters = CharacterService(book, builtins, settings.model_repository / PICTURES_DIRNAME)
    watermark = QueueWatermark(store.run)
    uptime = Uptime()
    tickets = TicketBook()
    install_server_log_filters()
    return_large_frees_to_the_os()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await store.open()
        await characters.register_builtins()
        watcher = asyncio.create_task(pool.watch(), name="inference-endpoints")
        follower = asyncio.create_task(healer.follow(supervised), name="triton-supervisor-feed")
        tasks = [watcher, follower, asyncio.create_task(sender.run(), name="webhooks")]
        if relay is not None:  # other replicas' job events, and ours to them
            tasks.append(asyncio.create_task(relay.run(hub, service.current_update), name="job-events"))
        try:
            await service.start()
            await watermark.restore()
            watermark.observe(service.waiting_count)
            warn_if_open(settings.api_keys, settings.host)
            logger.info(
                "visualizr API up: %d worker(s), inference servers %s",
                settings.workers,
                [e.url for e in pool.endpoints],
            )
            yield
        finally:
            await service.stop()
            if relay is not None:
                await relay.drain()
            await files.drain()
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await healer.aclose()
            await models.aclose()
            await store.close()
            await pool.aclose()

    provided: dict[str, Any] = {
        "settings": settings,
        "catalog": catalog,
        "store": store,
        "service": service,
        "webhooks": webhooks,
        "jobs": service,
        "models": models,
        "assets": assets,
        "characters": characters,
        "book": book,
        "pool": pool,
        "gpu": gpu,
        "disk": disk,
        "files": files,
        "uptime": uptime,
        "watermark": watermark,
        "metrics_registry": metrics_registry,
        "tickets": tickets,
        "events": relay,
        "studio": StudioPage(client_options()),
    }
    app = Litestar(
        route_handlers=ROUTES,
        dependencies={name: _provide(value) for name, value in provided.items()},
        middleware=[
            # outermost first: the request metrics see the 401s of the key check too
            DefineMiddleware(
                RequestMetricsMiddleware, metrics=http_metrics, after=lambda: watermark.observe(service.waiting_count)
            ),
            DefineMiddleware(ApiKeyMiddleware, keys=settings.api_keys, tickets=tickets),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
        openapi_config=openapi_config(),
        cors_config=cors_config(settings),
        debug=False,
    )
    app.state.settings = settings
    app.state.service = service
    app.state.models = models
    return app


def _provide(value: Any) -> Provide:
    def provide() -> Any:
        return value

    return Provide(provide, use_cache=True, sync_to_thread=False)
