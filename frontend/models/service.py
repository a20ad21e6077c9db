"""Model state and lifecycle: the model cards (what a model is) merged with every inference endpoint's repository
index (whether it is loaded there: Triton is the source of truth; ``status`` says how) and the job history (how
it performs). ``inference_servers`` on the details shows each endpoint.

Load (``POST /models/{id}/load``) loads the card's ``triton_models`` in order (components first) on every reachable
endpoint in the background and waits up to ``load_wait_seconds``: ``loaded``, 500 MODEL_LOAD_FAILED with Triton's
reason, or ``loading`` (a later failure shows on the details and the next load retries). Unload: ``unloaded``,
or ``unloading`` while Triton still holds one of them after a bounded wait (``models.unloading``).
A job for a model that is not loaded loads it on demand on the endpoint it goes to (``ensure_loaded``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from visualizr.engines.check import StaleEngineError, stale_engines
from visualizr.frontend import clock
from visualizr.frontend.catalog import ModelCatalog
from visualizr.frontend.errors import ErrorInfo, ModelLoadFailedError
from visualizr.frontend.infra.control import READY, ModelControlError, ModelState
from visualizr.frontend.infra.endpoints import Endpoint, EndpointPool
from visualizr.frontend.infra.gpu import GpuInfo, GpuReader
from visualizr.frontend.jobs.stats import ModelStats, model_stats
from visualizr.frontend.jobs.store import JobStore
from visualizr.frontend.models import schemas as s
from visualizr.frontend.models.engines import component_engines
from visualizr.frontend.models.healing import Healer
from visualizr.frontend.models.status import Index, LoadFailure, LoadTask, all_ready, overall_status, status_on_endpoint
from visualizr.frontend.models.unloading import unload_on
from visualizr.model_card import ModelCard

logger = logging.getLogger("visualizr.frontend.models")

LOAD_WAIT_SECONDS = 2.0  # how long POST .../load waits for a quick outcome before answering "loading"


def _gb(value: float) -> float:
    return round(max(0.0, value), 3)


class ModelService:
    def __init__(
        self,
        catalog: ModelCatalog,
        pool: EndpointPool,
        gpu: GpuReader,
        store: JobStore,
        healer: Healer,
        *,
        load_wait_seconds: float = LOAD_WAIT_SECONDS,
        now: Callable[[], float] = clock.now,
        cpu_engine: str = "auto",  # VISUALIZR_CPU_ENGINE: what the details say serves each component
    ) -> None:
        self.catalog, self.pool, self.gpu, self.store, self.healer = catalog, pool, gpu, store, healer
        self.load_wait_seconds, self._now, self.cpu_engine = load_wait_seconds, now, cpu_engine
        self._loads: dict[tuple[str, str], LoadTask] = {}  # (card id, endpoint url) -> our load there
        self._failures: dict[str, LoadFailure] = {}
        self._loaded_at: dict[str, float] = {}  # our loads, or when we first saw the model loaded
        self._memory_gb: dict[str, float] = {}  # measured by our loads (NVML used memory after - before)

    async def aclose(self) -> None:
        tasks = [load.task for load in self._loads.values()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # ------------------------------------------------------------------ state

    async def index_of(self, endpoint: Endpoint) -> Index | None:
        """The endpoint's repository index; None when it cannot be reached (and then it is marked down)."""
        if not endpoint.up:
            return None
        try:
            return await endpoint.control.index()
        except ModelControlError as exc:
            logger.debug("repository index of %s unavailable: %s", endpoint.url, exc.reason)
            if exc.unreachable:
                self.pool.mark_down(endpoint, exc.reason)
            return None

    async def indices(self) -> list[tuple[Endpoint, Index | None]]:
        endpoints = self.pool.endpoints
        return list(zip(endpoints, await asyncio.gather(*(self.index_of(e) for e in endpoints)), strict=True))

    def _loading(self, card: ModelCard) -> bool:
        return any(key[0] == card.id for key in self._loads)

    def _status_on(self, card: ModelCard, endpoint: Endpoint, index: Index | None) -> tuple[str, ErrorInfo | None]:
        loading = (card.id, endpoint.url) in self._loads
        return status_on_endpoint(card, index, loading, self._failures.get(card.id))

    def _status(self, card: ModelCard, indices: list[tuple[Endpoint, Index | None]]) -> tuple[str, ErrorInfo | None]:
        """The card's status over every endpoint (``models.status``)."""
        status, error = overall_status([self._status_on(card, e, index) for e, index in indices], self._loading(card))
        if status == s.LOADED:
            self._loaded_at.setdefault(card.id, self._now())
        elif not self._loading(card):
            self._loaded_at.pop(card.id, None)
            self._memory_gb.pop(card.id, None)
        return status, error

    def _servers(self, card: ModelCard, indices: list[tuple[Endpoint, Index | None]]) -> list[s.ServerStatus]:
        servers = []
        for endpoint, index in indices:
            status = self._status_on(card, endpoint, index)[0] if endpoint.up else s.DOWN
            sick = self.healer.sickness(endpoint, card.triton_models) if endpoint.up else endpoint.down_reason
            servers.append(s.ServerStatus(url=endpoint.url, status=status, problem=sick))
        return servers

    def _memory_of(self, model_id: str, gpu: GpuInfo) -> float | None:
        return self._memory_gb.get(model_id, None if gpu.available else 0.0)

    async def _stats(self) -> dict[str, ModelStats]:
        return await self.store.run(model_stats)

    # ------------------------------------------------------------------ queries

    async def list_models(self) -> s.ModelList:
        indices, stats = await self.indices(), await self._stats()
        items = []
        for card in self.catalog.cards():
            status, _ = self._status(card, indices)
            measured = stats.get(card.id)
            caps = card.capabilities
            items.append(
                s.ModelSummary(
                    id=card.id,
                    name=card.name,
                    description=card.description,
                    type=card.type,
                    max_resolution=caps.max_resolution,
                    max_duration_seconds=caps.max_duration_seconds,
                    supported_formats=list(caps.supported_formats),
                    gpu_memory_required_gb=card.requirements.gpu_memory_gb,
                    average_generation_time_seconds=measured.average_time_seconds if measured else None,
                    status=status,
                    loaded=status == s.LOADED,
                )
            )
        return s.ModelList(models=items)

    async def get_model(self, model_id: str) -> s.ModelDetail:
        card = self.catalog.get(model_id)
        indices, stats = await self.indices(), await self._stats()
        status, error = self._status(card, indices)
        measured = stats.get(card.id) or ModelStats(0, 0, None)
        return s.ModelDetail(
            id=card.id,
            name=card.name,
            description=card.description,
            version=card.version,
            type=card.type,
            capabilities=s.ServedCapabilities.of(card),
            requirements=card.requirements,
            parameters=dict(card.parameters),
            performance=s.Performance(
                average_generation_time_seconds=measured.average_time_seconds,
                success_rate_percent=measured.success_rate_percent,
                total_generations=measured.generations,
            ),
            status=status,
            loaded=status == s.LOADED,
            loaded_at=clock.iso(self._loaded_at.get(card.id)) if status == s.LOADED else None,
            load_error=error,
            inference_servers=self._servers(card, indices),
            cpu_engines=component_engines(self.catalog.repository, card, self.cpu_engine),
        )

    async def health(self, gpu: GpuInfo) -> tuple[list[s.LoadedModel], list[s.ModelHealth]]:
        """(loaded models, every model's health) for the health endpoint. A model has problems when no up
        endpoint can serve it (its stub healing or given up on everywhere) or its last load failed."""
        indices = await self.indices()
        loaded, models = [], []
        for card in self.catalog.cards():
            status, error = self._status(card, indices)
            if status == s.LOADED:
                memory, loaded_at = self._memory_of(card.id, gpu), clock.iso(self._loaded_at.get(card.id))
                loaded.append(s.LoadedModel(id=card.id, memory_usage_gb=memory, loaded_at=loaded_at))
            servers = [server for server in self._servers(card, indices) if server.status != s.DOWN]
            problems = [] if any(sv.problem is None for sv in servers) else [sv.problem or "" for sv in servers]
            if status == s.LOAD_FAILED and error is not None:
                problems.append(f"{error.message}: {error.details}")
            models.append(s.ModelHealth(id=card.id, status=status, serving=not problems, problems=problems))
        return loaded, models

    # ------------------------------------------------------------------ load

    async def _load_on(self, card: ModelCard, endpoint: Endpoint) -> None:
        before = await self.gpu.snapshot()
        name = card.triton_models[0] if card.triton_models else card.id
        try:
            # Never hand Triton a stale TensorRT engine (visualizr.engines.check): fail naming what differs.
            for name, problems in (await asyncio.to_thread(stale_engines, self.catalog.repository, card)).items():
                raise ModelControlError(str(StaleEngineError(name, problems)))
            index = await endpoint.control.index()
            for name in card.triton_models:
                if index.get(name, ModelState("")).state != READY:
                    logger.info("loading triton model %s (for %s) on %s", name, card.id, endpoint.url)
                    await endpoint.control.load(name)
        except Exception as exc:  # recorded and shown, never lost in a background task
            reason = exc.reason if isinstance(exc, ModelControlError) else f"{type(exc).__name__}: {exc}"
            details = {"triton_model": name, "reason": reason, "inference_server": endpoint.url}
            self._failures[card.id] = LoadFailure(f"Failed to load model {card.id!r}", details, self._now())
            logger.warning("loading %s failed at %s on %s: %s", card.id, name, endpoint.url, reason)
            if isinstance(exc, ModelControlError) and exc.unreachable:
                self.pool.mark_down(endpoint, reason)
            return
        after = await self.gpu.snapshot()
        self._failures.pop(card.id, None)
        self._loaded_at[card.id] = self._now()
        self._memory_gb[card.id] = _gb(after.used_gb - before.used_gb) if after.available else 0.0
        self.healer.forget(endpoint, card.triton_models)
        logger.info("model %s loaded on %s", card.id, endpoint.url)

    def _start_load(self, card: ModelCard, endpoint: Endpoint) -> LoadTask:
        key = (card.id, endpoint.url)
        running = self._loads.get(key)
        if running is not None:
            return running
        task = asyncio.create_task(self._load_on(card, endpoint), name=f"load-{card.id}-{endpoint.url}")
        load = LoadTask(task, self._now())
        self._loads[key] = load
        task.add_done_callback(lambda _: self._loads.pop(key, None))
        return load

    def _loaded_response(self, card: ModelCard) -> s.LoadResponse:
        started = self._loaded_at.get(card.id, self._now())
        return s.LoadResponse(card.id, s.LOADED, 0.0, clock.iso(started) or "")

    async def load(self, model_id: str) -> s.LoadResponse:
        card = self.catalog.get(model_id)
        indices = await self.indices()
        reachable = [e for e, index in indices if index is not None]
        if not reachable:
            raise ModelLoadFailedError(
                f"Failed to load model {card.id!r}: no inference server can be reached",
                {"reason": self.pool.down_reasons()},
            )
        todo = [e for e, index in indices if index is not None and not all_ready(card, index)]
        for endpoint in reachable:
            self.healer.forget(endpoint, card.triton_models)
        if not todo and not self._loading(card):
            self._status(card, indices)  # records loaded_at when first seen
            return self._loaded_response(card)
        loads = [self._start_load(card, e) for e in todo] or [ld for k, ld in self._loads.items() if k[0] == card.id]
        started = time.monotonic()
        await asyncio.wait({ld.task for ld in loads}, timeout=self.load_wait_seconds)
        if all(ld.task.done() for ld in loads):
            failure = self._failures.get(card.id)
            if failure is not None:
                raise failure.exception()
            return self._loaded_response(card)
        remaining = card.requirements.estimated_load_time_seconds - (time.monotonic() - started)
        first = min(ld.started_at for ld in loads)
        return s.LoadResponse(card.id, s.LOADING, round(max(0.0, remaining), 1), clock.iso(first) or "")

    async def ensure_loaded(
        self, card: ModelCard, endpoint: Endpoint, index: Index, on_loading: Callable[[], Awaitable[None]]
    ) -> None:
        """Before a job streams on ``endpoint``: load the model there unless it is loaded (MODEL_LOAD_FAILED when
        that fails)."""
        if (card.id, endpoint.url) not in self._loads and all_ready(card, index):
            return
        await on_loading()
        load = self._start_load(card, endpoint)
        await asyncio.shield(load.task)
        failure = self._failures.get(card.id)
        if failure is not None and failure.at >= load.started_at:
            raise failure.exception()

    # ------------------------------------------------------------------ unload

    async def unload(self, model_id: str) -> s.UnloadResponse:
        card = self.catalog.get(model_id)
        running = [ld.task for key, ld in self._loads.items() if key[0] == card.id]
        if running:  # let running loads finish first, so they cannot reload behind our back
            await asyncio.gather(*(asyncio.shield(t) for t in running), return_exceptions=True)
        before = await self.gpu.snapshot()
        reachable = [(e, index) for e, index in await self.indices() if index is not None]
        if not reachable:
            raise ModelLoadFailedError(
                f"Failed to unload model {card.id!r}: no inference server can be reached",
                {"reason": self.pool.down_reasons()},
            )
        try:
            done = await asyncio.gather(*(unload_on(card, e, index, self.catalog.cards()) for e, index in reachable))
        except ModelControlError as exc:
            raise ModelLoadFailedError(f"Failed to unload model {card.id!r}", {"reason": exc.reason}) from None
        after = await self.gpu.snapshot()
        for known in (self._loaded_at, self._memory_gb, self._failures):
            known.pop(card.id, None)
        freed = _gb(before.used_gb - after.used_gb) if before.available and after.available else 0.0
        status = s.UNLOADED if all(done) else s.UNLOADING
        return s.UnloadResponse(card.id, status, freed, clock.iso(self._now()) or "")
