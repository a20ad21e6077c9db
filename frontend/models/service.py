"""Model state and lifecycle: the model cards (what a model is) merged with Triton's repository index (whether
it is loaded: Triton is the source of truth) and the job history (how it performs).

Status of a model (``frontend.models.schemas``): ``loading`` while a load of ours runs; ``unknown`` when
Triton cannot be reached; ``loaded`` when every Triton model of its card is READY; ``loading`` /
``unloading`` when Triton says so for one of them; ``failed`` when our last load failed or Triton reports one
of them UNAVAILABLE with a reason other than "unloaded" (e.g. a failed load at server start); else
``unloaded``.

Load (``POST /models/{id}/load``): loads the card's ``triton_models`` in order (components first, the pipeline
last; READY ones are skipped) in a background task, and waits up to ``load_wait_seconds`` for it:

* the load finished in that time -> ``status: loaded``;
* it failed in that time (unknown Triton model, broken config, Triton unreachable, ...) -> 500
  MODEL_LOAD_FAILED, details ``{"triton_model", "reason"}`` with Triton's own message;
* still running -> ``status: loading`` at once; a later failure shows on ``GET /models/{id}``
  (``status: failed``, ``load_error``) and the next ``POST .../load`` retries (and so answers 500 again if
  the failure is quick).

A load already running is joined, not repeated; a loaded model answers ``loaded`` at once.

Unload: the pipeline first, then its components (components another loaded card also lists stay), then
waits until Triton no longer reports them READY. ``freed_memory_gb`` = NVML used memory before - after (0.0
without a GPU).

Generation on an unloaded model loads it on demand: the worker calls ``ensure_loaded`` before streaming, the
job shows ``current_step: loading_model`` meanwhile, and a failed load fails the job with MODEL_LOAD_FAILED.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from visualizr.frontend import clock
from visualizr.frontend.errors import MODEL_LOAD_FAILED, ModelLoadFailedError
from visualizr.frontend.generation.schemas import ErrorInfo, GenerationParameters
from visualizr.frontend.generation.store import JobStore
from visualizr.frontend.models import schemas as s
from visualizr.frontend.models.triton_control import (
    LOADING,
    READY,
    UNAVAILABLE,
    UNLOADING,
    ModelControl,
    ModelControlError,
    ModelState,
)
from visualizr.frontend.models_catalog import ModelCatalog
from visualizr.frontend.system.gpu import GpuInfo, GpuReader, check_fits, required_memory_gb
from visualizr.frontend.system.job_stats import ModelStats, model_stats
from visualizr.model_card import ModelCard

logger = logging.getLogger("visualizr.frontend.models")

LOAD_WAIT_SECONDS = 2.0  # how long POST .../load waits for a quick outcome before answering "loading"
UNLOAD_WAIT_SECONDS = 60.0
POLL_SECONDS = 0.1
TRITON_UNLOADED_REASON = "unloaded"


@dataclass
class LoadFailure:
    message: str
    details: dict[str, Any]
    at: float

    def error(self) -> ErrorInfo:
        return ErrorInfo(code=MODEL_LOAD_FAILED, message=self.message, details=self.details)

    def exception(self) -> ModelLoadFailedError:
        return ModelLoadFailedError(self.message, self.details)


@dataclass
class LoadTask:
    task: asyncio.Task[None]
    started_at: float


def _states(card: ModelCard, index: dict[str, ModelState]) -> list[ModelState]:
    return [index.get(name, ModelState(UNAVAILABLE, "not in the model repository")) for name in card.triton_models]


def _all_ready(card: ModelCard, index: dict[str, ModelState]) -> bool:
    return all(st.state == READY for st in _states(card, index))


def _gb(value: float) -> float:
    return round(max(0.0, value), 3)


class ModelService:
    def __init__(
        self,
        catalog: ModelCatalog,
        control: ModelControl,
        gpu: GpuReader,
        store: JobStore,
        *,
        load_wait_seconds: float = LOAD_WAIT_SECONDS,
        now: Callable[[], float] = clock.now,
    ) -> None:
        self.catalog = catalog
        self.control = control
        self.gpu = gpu
        self.store = store
        self.load_wait_seconds = load_wait_seconds
        self._now = now
        self._loads: dict[str, LoadTask] = {}
        self._failures: dict[str, LoadFailure] = {}
        self._loaded_at: dict[str, float] = {}  # our loads, or when we first saw the model loaded
        self._memory_gb: dict[str, float] = {}  # measured by our loads (NVML used memory after - before)

    async def aclose(self) -> None:
        for load in list(self._loads.values()):
            load.task.cancel()
        for load in list(self._loads.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await load.task
        await self.control.aclose()

    # ------------------------------------------------------------------ state

    async def _index(self) -> dict[str, ModelState] | None:
        try:
            return await self.control.index()
        except ModelControlError as exc:
            logger.debug("triton repository index unavailable: %s", exc.reason)
            return None

    def _cards(self) -> list[ModelCard]:
        cards = []
        for model_id in self.catalog.ids():
            with contextlib.suppress(Exception):  # an unreadable card is simply not listed
                cards.append(self.catalog.get(model_id))
        return cards

    def _status(self, card: ModelCard, index: dict[str, ModelState] | None) -> tuple[str, ErrorInfo | None]:
        failure = self._failures.get(card.id)
        if card.id in self._loads:
            return s.LOADING, None
        if index is None:
            return s.UNKNOWN, None
        states = _states(card, index)
        if all(st.state == READY for st in states):
            self._loaded_at.setdefault(card.id, self._now())
            return s.LOADED, None
        self._loaded_at.pop(card.id, None)
        self._memory_gb.pop(card.id, None)
        if any(st.state == LOADING for st in states):
            return s.LOADING, None
        if any(st.state == UNLOADING for st in states):
            return s.UNLOADING, None
        if failure is not None:
            return s.LOAD_FAILED, failure.error()
        for name, st in zip(card.triton_models, states, strict=True):
            if st.state == UNAVAILABLE and st.reason and st.reason != TRITON_UNLOADED_REASON:
                return s.LOAD_FAILED, ErrorInfo(
                    MODEL_LOAD_FAILED, f"Triton could not load {name!r}", {"triton_model": name, "reason": st.reason}
                )
        return s.UNLOADED, None

    def _memory_of(self, model_id: str, gpu: GpuInfo) -> float | None:
        if model_id in self._memory_gb:
            return self._memory_gb[model_id]
        return None if gpu.available else 0.0

    async def _stats(self) -> dict[str, ModelStats]:
        return await self.store.run(model_stats)

    # ------------------------------------------------------------------ queries

    async def list_models(self) -> s.ModelList:
        index, stats = await self._index(), await self._stats()
        items = []
        for card in self._cards():
            status, _ = self._status(card, index)
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
        index, stats = await self._index(), await self._stats()
        status, error = self._status(card, index)
        measured = stats.get(card.id) or ModelStats(0, 0, None)
        return s.ModelDetail(
            id=card.id,
            name=card.name,
            description=card.description,
            version=card.version,
            type=card.type,
            capabilities=card.capabilities,
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
        )

    async def loaded_models(self, gpu: GpuInfo) -> list[s.LoadedModel] | None:
        """Models whose every Triton model is READY; None when Triton cannot be reached."""
        index = await self._index()
        if index is None:
            return None
        loaded = []
        for card in self._cards():
            if self._status(card, index)[0] == s.LOADED:
                loaded.append(
                    s.LoadedModel(
                        id=card.id,
                        memory_usage_gb=self._memory_of(card.id, gpu),
                        loaded_at=clock.iso(self._loaded_at.get(card.id)),
                    )
                )
        return loaded

    # ------------------------------------------------------------------ load

    async def _load_all(self, card: ModelCard) -> None:
        before = await self.gpu.snapshot()
        name = card.triton_models[0] if card.triton_models else card.id
        try:
            index = await self.control.index()
            for name in card.triton_models:
                if index.get(name, ModelState("")).state != READY:
                    logger.info("loading triton model %s (for %s)", name, card.id)
                    await self.control.load(name)
        except Exception as exc:  # recorded and shown, never lost in a background task
            reason = exc.reason if isinstance(exc, ModelControlError) else f"{type(exc).__name__}: {exc}"
            self._failures[card.id] = LoadFailure(
                f"Failed to load model {card.id!r}", {"triton_model": name, "reason": reason}, self._now()
            )
            logger.warning("loading %s failed at %s: %s", card.id, name, reason)
            return
        after = await self.gpu.snapshot()
        self._failures.pop(card.id, None)
        self._loaded_at[card.id] = self._now()
        self._memory_gb[card.id] = _gb(after.used_gb - before.used_gb) if after.available else 0.0
        logger.info("model %s loaded", card.id)

    def _start_load(self, card: ModelCard) -> LoadTask:
        running = self._loads.get(card.id)
        if running is not None:
            return running
        task = asyncio.create_task(self._load_all(card), name=f"load-{card.id}")
        load = LoadTask(task, self._now())
        self._loads[card.id] = load
        task.add_done_callback(lambda _: self._loads.pop(card.id, None))
        return load

    def _loaded_response(self, card: ModelCard) -> s.LoadResponse:
        started = self._loaded_at.get(card.id, self._now())
        return s.LoadResponse(card.id, s.LOADED, 0.0, clock.iso(started) or "")

    async def load(self, model_id: str) -> s.LoadResponse:
        card = self.catalog.get(model_id)
        if card.id not in self._loads:
            index = await self._index()
            if index is not None and _all_ready(card, index):
                self._status(card, index)  # records loaded_at when first seen
                return self._loaded_response(card)
        load = self._start_load(card)
        started = time.monotonic()
        await asyncio.wait({load.task}, timeout=self.load_wait_seconds)
        if load.task.done():
            failure = self._failures.get(card.id)
            if failure is not None:
                raise failure.exception()
            return self._loaded_response(card)
        remaining = card.requirements.estimated_load_time_seconds - (time.monotonic() - started)
        return s.LoadResponse(card.id, s.LOADING, round(max(0.0, remaining), 1), clock.iso(load.started_at) or "")

    async def ensure_loaded(self, model_id: str, on_loading: Callable[[], Awaitable[None]]) -> None:
        """Before a job streams: load the model unless it is loaded (MODEL_LOAD_FAILED when that fails).
        When Triton cannot be reached the job goes on and fails on its stream, as without this step."""
        card = self.catalog.get(model_id)
        if card.id not in self._loads:
            index = await self._index()
            if index is None or _all_ready(card, index):
                return
        await on_loading()
        load = self._start_load(card)
        await asyncio.shield(load.task)
        failure = self._failures.get(card.id)
        if failure is not None and failure.at >= load.started_at:
            raise failure.exception()

    async def check_capacity(self, card: ModelCard, parameters: GenerationParameters) -> None:
        """INSUFFICIENT_GPU_MEMORY when the request cannot fit the GPU's free memory (never without a GPU)."""
        gpu = await self.gpu.snapshot()
        if not gpu.available:
            return
        index = await self._index()
        loaded = index is None or _all_ready(card, index)
        need = required_memory_gb(card, parameters.width, parameters.height, parameters.num_frames, loaded)
        check_fits(gpu, need)

    # ------------------------------------------------------------------ unload

    def _shared(self, card: ModelCard, index: dict[str, ModelState]) -> set[str]:
        """Triton models of ``card`` that another loaded card needs too."""
        return {
            name
            for other in self._cards()
            if other.id != card.id and _all_ready(other, index)
            for name in other.triton_models
        }

    async def _wait_gone(self, names: list[str]) -> None:
        deadline = time.monotonic() + UNLOAD_WAIT_SECONDS
        while time.monotonic() < deadline:
            index = await self.control.index()
            if all(index.get(n, ModelState("")).state not in (READY, UNLOADING) for n in names):
                return
            await asyncio.sleep(POLL_SECONDS)
        logger.warning("triton still reports %s after %.0f s", names, UNLOAD_WAIT_SECONDS)

    async def unload(self, model_id: str) -> s.UnloadResponse:
        card = self.catalog.get(model_id)
        running = self._loads.get(card.id)
        if running is not None:  # let a running load finish first, so it cannot reload behind our back
            await asyncio.shield(running.task)
        before = await self.gpu.snapshot()
        try:
            index = await self.control.index()
            shared = self._shared(card, index)
            names = [
                n
                for n in reversed(card.triton_models)
                if n not in shared and index.get(n, ModelState("")).state in (READY, LOADING)
            ]
            for name in names:
                logger.info("unloading triton model %s (for %s)", name, card.id)
                await self.control.unload(name)
            await self._wait_gone(names)
        except ModelControlError as exc:
            raise ModelLoadFailedError(f"Failed to unload model {card.id!r}", {"reason": exc.reason}) from None
        after = await self.gpu.snapshot()
        self._loaded_at.pop(card.id, None)
        self._memory_gb.pop(card.id, None)
        self._failures.pop(card.id, None)
        freed = _gb(before.used_gb - after.used_gb) if before.available and after.available else 0.0
        return s.UnloadResponse(card.id, s.UNLOADED, freed, clock.iso(self._now()) or "")
