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
from litestar.openapi import OpenAPIConfig
from litestar.static_files import create_static_files_router

from frontend.errors import EXCEPTION_HANDLERS
from frontend.generation.backend import GenerationBackend
from frontend.generation.controllers import GenerationController, generation_updates
from frontend.generation.service import ASSETS_URL_PREFIX, GenerationService
from frontend.generation.store import JobStore
from frontend.generation.triton_backend import TritonBackend
from frontend.generation.websocket import GenerationHub
from frontend.models_catalog import ModelCatalog
from frontend.system.health import Uptime, health
from visualizr import __version__
from visualizr.settings import Settings

logger = logging.getLogger("frontend")


def create_app(settings: Settings | None = None, generator: GenerationBackend | None = None) -> Litestar:
    settings = settings or Settings.from_env()
    backend: GenerationBackend = (
        generator if generator is not None else TritonBackend(settings.triton_grpc_url)
    )
    store = JobStore(settings.database_path)
    service = GenerationService(
        settings, store, ModelCatalog(settings.model_repository), backend, GenerationHub()
    )
    uptime = Uptime()
    settings.assets_dir.mkdir(parents=True, exist_ok=True)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await store.open()
        try:
            await service.start()
            logger.info(
                "visualizr API up: %d worker(s), triton at %s", settings.workers, settings.triton_grpc_url
            )
            yield
        finally:
            await service.stop()
            await store.close()
            await backend.aclose()

    app = Litestar(
        route_handlers=[
            GenerationController,
            generation_updates,
            health,
            create_static_files_router(
                path=ASSETS_URL_PREFIX, directories=[settings.assets_dir], name="video_assets"
            ),
        ],
        dependencies={
            "service": Provide(lambda: service, use_cache=True, sync_to_thread=False),
            "uptime": Provide(lambda: uptime, use_cache=True, sync_to_thread=False),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
        openapi_config=OpenAPIConfig(title="Visualizr API", version=__version__),
        debug=False,
    )
    app.state.settings = settings
    app.state.service = service
    return app
