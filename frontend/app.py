"""The application factory.

``create_app(settings, generator)`` wires one object graph per app: JobStore (SQLite), ModelCatalog (model
cards), GenerationHub (WebSocket pub/sub), the GenerationBackend (Triton over gRPC unless a test passes
another) and the GenerationService (queue + workers), started and stopped by the app's lifespan. Routes get
the service through dependency injection (``service``), so later domains (models, assets, metrics, API keys)
add a controller and, if they need state, a dependency here.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig

from visualizr import __version__
from visualizr.frontend.assets.controllers import ASSET_ROUTES
from visualizr.frontend.errors import EXCEPTION_HANDLERS
from visualizr.frontend.generation.backend import GenerationBackend
from visualizr.frontend.generation.controllers import GenerationController, generation_updates
from visualizr.frontend.generation.service import GenerationService
from visualizr.frontend.generation.store import JobStore
from visualizr.frontend.generation.triton_backend import TritonBackend
from visualizr.frontend.generation.websocket import GenerationHub
from visualizr.frontend.models.controllers import ModelsController
from visualizr.frontend.models.service import ModelService
from visualizr.frontend.models.triton_control import BackendReadiness, ModelControl, TritonModelControl
from visualizr.frontend.models_catalog import ModelCatalog
from visualizr.frontend.security import ApiKeyMiddleware, warn_if_open
from visualizr.frontend.system.gpu import GpuReader, NvmlReader
from visualizr.frontend.system.health import Uptime, health
from visualizr.frontend.system.metrics import QueueWatermark, prometheus_metrics, system_metrics
from visualizr.frontend.system.prometheus import HttpMetrics, RequestMetricsMiddleware
from visualizr.frontend.triton_connection import TritonConnection
from visualizr.settings import Settings

logger = logging.getLogger("visualizr.frontend")


def create_app(
    settings: Settings | None = None,
    generator: GenerationBackend | None = None,
    *,
    model_control: ModelControl | None = None,
    gpu: GpuReader | None = None,
) -> Litestar:
    """``model_control`` defaults to Triton's repository API, except with an injected ``generator`` and no
    control: then models are as ready as the generator says (BackendReadiness). ``gpu`` defaults to NVML."""
    settings = settings or Settings.from_env()
    triton = TritonConnection(settings.triton_grpc_url)
    backend: GenerationBackend = generator if generator is not None else TritonBackend(triton)
    store = JobStore(settings.database_path)
    catalog = ModelCatalog(settings.model_repository)
    service = GenerationService(settings, store, catalog, backend, GenerationHub())
    if model_control is None:
        model_control = (
            TritonModelControl(triton)
            if generator is None
            else BackendReadiness(backend.ready, lambda: {i: catalog.get(i).triton_models for i in catalog.ids()})
        )
    models = ModelService(catalog, model_control, gpu or NvmlReader(), store)
    service.gate = models
    watermark = QueueWatermark(store.run)
    http_metrics = HttpMetrics()
    uptime = Uptime()
    settings.assets_dir.mkdir(parents=True, exist_ok=True)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await store.open()
        try:
            await service.start()
            await watermark.restore()
            watermark.observe(service.waiting_count)
            warn_if_open(settings.api_keys)
            logger.info(
                "visualizr API up: %d worker(s), triton at %s", settings.workers, settings.triton_grpc_url
            )
            yield
        finally:
            await service.stop()
            await models.aclose()
            await store.close()
            await backend.aclose()
            await triton.aclose()

    app = Litestar(
        route_handlers=[
            GenerationController,
            generation_updates,
            health,
            ModelsController,
            system_metrics,
            prometheus_metrics,
            *ASSET_ROUTES,
        ],
        dependencies={
            "service": Provide(lambda: service, use_cache=True, sync_to_thread=False),
            "uptime": Provide(lambda: uptime, use_cache=True, sync_to_thread=False),
            "models": Provide(lambda: models, use_cache=True, sync_to_thread=False),
            "watermark": Provide(lambda: watermark, use_cache=True, sync_to_thread=False),
            "http_metrics": Provide(lambda: http_metrics, use_cache=True, sync_to_thread=False),
        },
        middleware=[
            # outermost first: the request metrics see the 401s of the key check too
            DefineMiddleware(
                RequestMetricsMiddleware, metrics=http_metrics, after=lambda: watermark.observe(service.waiting_count)
            ),
            DefineMiddleware(ApiKeyMiddleware, keys=settings.api_keys),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
        openapi_config=OpenAPIConfig(title="Visualizr API", version=__version__),
        debug=False,
    )
    app.state.settings = settings
    app.state.service = service
    app.state.models = models
    return app
