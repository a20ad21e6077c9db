"""Job lifecycle: bounded queue, workers streaming from the backend, progress, cancellation, persistence.

State: every non-terminal job lives in memory (``_live``) and is authoritative there; SQLite holds the durable
copy (progress writes throttled). A job leaves ``_live`` once its terminal state is written.

* ``queued``: waiting in ``_waiting`` (FIFO). An idle worker takes a job the moment it is submitted, so a
  POST answers ``processing`` when a worker was free and ``queued`` otherwise. ``queue_position`` is 1 for
  the next job to start, 0 for a job that is running.
* Bound: at most ``Settings.queue_size`` jobs waiting (not counting ones that start at once) -> QUEUE_FULL
  with Retry-After (estimated seconds until a running job finishes).
* Cancel: a queued job leaves the queue; a running one is marked cancelled at once and its stream cancelled
  (Triton stops within one step; a job already in video encoding finishes that and its files are deleted).
  Cancelling a cancelled job answers the same cancelled state again; a completed or failed job cannot be
  cancelled (400 INVALID_PARAMETERS naming its status).
* Models (``gate``, the model service when the app wires one): ``submit`` asks ``check_capacity`` first
  (INSUFFICIENT_GPU_MEMORY 507 when the request cannot fit the GPU); a worker calls ``ensure_loaded`` before
  streaming, which loads an unloaded model on demand (``current_step`` ``loading_model`` meanwhile) and fails
  the job with MODEL_LOAD_FAILED when that load fails. A pipeline error that says the GPU ran out of memory
  fails the job with INSUFFICIENT_GPU_MEMORY instead of GENERATION_FAILED.
* Startup: jobs left ``processing`` (the server died under them) -> failed, GENERATION_FAILED "interrupted
  by a server restart"; jobs left ``queued`` are queued again in their original order. Graceful shutdown
  puts running jobs back to ``queued`` (their seed is stored, so the rerun reproduces them).
* Kinds: text-to-video, image-to-video and character-animation jobs share this one path; they differ in the
  request id prefix (``anim_req_`` for character animations, ``video_req_`` otherwise) and in the source image
  of image-to-video jobs, written under the data folder before the job row (``image_input``), loaded by the
  worker into ``GenerationInput.image`` and deleted when the job ends (kept while it is queued, so a restart
  runs it again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import uuid
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from visualizr import names
from visualizr.frontend import clock
from visualizr.frontend.errors import (
    GENERATION_FAILED,
    INSUFFICIENT_GPU_MEMORY,
    InvalidParametersError,
    QueueFullError,
    RequestNotFoundError,
    VisualizrError,
)
from visualizr.frontend.generation import views
from visualizr.frontend.generation.backend import BackendError, GenerationBackend, GenerationInput, GenerationStream
from visualizr.frontend.generation.encoding import VideoAssets, encode_assets, remove_assets
from visualizr.frontend.generation.estimator import Estimator
from visualizr.frontend.generation.image_input import input_path, load_input, remove_input, write_input
from visualizr.frontend.generation.naming import (
    REQUEST_ID_PREFIX,
    REQUEST_ID_PREFIX_BY_KIND,
    video_id_of,
)
from visualizr.frontend.generation.schemas import (
    CANCELLED,
    COMPLETED,
    FAILED,
    PROCESSING,
    QUEUED,
    STEP_LOADING_MODEL,
    STEP_QUEUED,
    TERMINAL_STATES,
    CancelResponse,
    GenerateVideoResponse,
    GenerationParameters,
    JobStatus,
    VideoMetadata,
    WsProgress,
)
from visualizr.frontend.generation.stall import StreamStalled, within_stall_timeout
from visualizr.frontend.generation.store import JobRecord, JobStore
from visualizr.frontend.generation.validation import ValidatedRequest
from visualizr.frontend.generation.views import FAILED_MESSAGE
from visualizr.frontend.generation.websocket import GenerationHub, Subscriber
from visualizr.frontend.models_catalog import ModelCatalog
from visualizr.frontend.system.gpu import is_out_of_memory
from visualizr.model_card import ModelCard
from visualizr.settings import Settings

logger = logging.getLogger("visualizr.frontend.generation")

OUT_OF_MEMORY_MESSAGE = "Not enough GPU memory available"
INTERRUPTED_DETAILS = "interrupted by a server restart"
# Progress bands of the phases (percent).
TEXT_ENCODING_DONE = 5
FRAME_GENERATION_DONE = 90
DECODING_DONE = 95
PROGRESS_WRITE_INTERVAL = 0.1  # seconds between DB writes of one job's progress (phase changes always write)

Encoder = Callable[[np.ndarray, int, Path, str], tuple[VideoAssets, VideoMetadata]]


def progress_of(phase: str, step: int, total_steps: int) -> tuple[int, str]:
    """(progress percent, current_step) after a pipeline response of ``phase``."""
    if phase == names.PHASE_TEXT_ENCODING:
        return TEXT_ENCODING_DONE, names.PHASE_TEXT_ENCODING
    if phase == names.PHASE_FRAME_GENERATION:
        fraction = min(max(step / total_steps, 0.0), 1.0) if total_steps > 0 else 0.0
        span = FRAME_GENERATION_DONE - TEXT_ENCODING_DONE
        return TEXT_ENCODING_DONE + int(span * fraction), names.PHASE_FRAME_GENERATION
    if phase == names.PHASE_DECODING:
        return FRAME_GENERATION_DONE, names.PHASE_DECODING
    if phase == names.PHASE_DONE:
        return DECODING_DONE, names.PHASE_ENCODING
    return 0, phase


class ModelGate(Protocol):
    """What the workers need of model management (``frontend.models.service.ModelService``)."""

    async def check_capacity(self, card: ModelCard, parameters: GenerationParameters) -> None: ...

    async def ensure_loaded(self, model_id: str, on_loading: Callable[[], Awaitable[None]]) -> None: ...


@dataclass(eq=False)
class LiveJob:
    record: JobRecord
    estimate_seconds: float
    stream: GenerationStream | None = None
    cancel_requested: bool = False
    last_write: float = 0.0
    written_step: str = ""
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def request_id(self) -> str:
        return self.record.request_id

    @property
    def terminal(self) -> bool:
        return self.record.status in TERMINAL_STATES


class GenerationService:
    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        catalog: ModelCatalog,
        backend: GenerationBackend,
        hub: GenerationHub | None = None,
        *,
        encoder: Encoder = encode_assets,
        now: Callable[[], float] = clock.now,
    ) -> None:
        self.settings = settings
        self.store = store
        self.catalog = catalog
        self.backend = backend
        self.hub = hub or GenerationHub()
        self.estimator = Estimator()
        self._encoder = encoder
        self._now = now
        self._live: dict[str, LiveJob] = {}
        self._waiting: OrderedDict[str, LiveJob] = OrderedDict()
        self._idle: deque[asyncio.Future[LiveJob]] = deque()
        self._reserved = 0
        self._workers: list[asyncio.Task[None]] = []
        self._stopping = False
        self.gate: ModelGate | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        now = self._now()
        interrupted = await self.store.fail_interrupted(
            now, GENERATION_FAILED, FAILED_MESSAGE, INTERRUPTED_DETAILS
        )
        if interrupted:
            logger.warning(
                "marked %d interrupted job(s) failed: %s", len(interrupted), ", ".join(interrupted)
            )
            for request_id in interrupted:
                await asyncio.to_thread(remove_input, self.settings.data_dir, input_path(request_id))
        requeued = await self.store.list_by_status([QUEUED])
        for model in {r.model for r in requeued} | set(self.catalog.ids()):
            self.estimator.load(model, await self.store.history(model))
        for record in requeued:
            live = LiveJob(record, self.estimator.estimate(record.model, record.parameters.work_units))
            self._live[record.request_id] = live
            self._waiting[record.request_id] = live
        if requeued:
            logger.info("re-queued %d job(s) from the previous run", len(requeued))
        self._stopping = False
        self._workers = [
            asyncio.create_task(self._worker(i), name=f"generation-worker-{i}")
            for i in range(self.settings.workers)
        ]

    async def stop(self) -> None:
        self._stopping = True
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._workers = []
        for fut in self._idle:
            fut.cancel()
        self._idle.clear()

    # ------------------------------------------------------------------ queries

    @property
    def waiting_count(self) -> int:
        return len(self._waiting)

    @property
    def running_count(self) -> int:
        return sum(1 for j in self._live.values() if j.record.status == PROCESSING)

    def queue_position(self, request_id: str) -> int:
        for index, rid in enumerate(self._waiting, start=1):
            if rid == request_id:
                return index
        return 0

    def _remaining(self, live: LiveJob, now: float) -> float:
        """Estimated seconds until a running job is done."""
        rec = live.record
        elapsed = max(0.0, now - (rec.started_at or now))
        if rec.progress >= 10:
            return max(0.0, elapsed * (100 - rec.progress) / rec.progress)
        return max(0.0, live.estimate_seconds - elapsed)

    def _wait_seconds(self, upto: str | None = None) -> float:
        """Seconds until a worker is free for the waiting job ``upto`` (or a new job at the queue's end).

        List scheduling of the jobs ahead over the workers, starting from the running jobs' remaining times.
        """
        now = self._now()
        running = sorted(
            self._remaining(j, now) for j in self._live.values() if j.record.status == PROCESSING
        )
        slots = [0.0] * max(0, self.settings.workers - len(running)) + running
        slots = sorted(slots)[: max(1, self.settings.workers)] or [0.0]
        for rid, job in self._waiting.items():
            if rid == upto:
                break
            slots[0] += job.estimate_seconds
            slots.sort()
        return slots[0]

    def _queued_remaining(self, live: LiveJob) -> float:
        return self._wait_seconds(live.request_id) + live.estimate_seconds

    def _status_of(self, rec: JobRecord, live: LiveJob | None) -> JobStatus:
        if rec.status == QUEUED:
            remaining = (
                self._queued_remaining(live)
                if live
                else self.estimator.estimate(rec.model, rec.parameters.work_units)
            )
            return views.job_status(rec, remaining, self.queue_position(rec.request_id))
        remaining = self._remaining(live, self._now()) if live and rec.status == PROCESSING else 0.0
        return views.job_status(rec, remaining)

    async def _record(self, request_id: str) -> tuple[JobRecord, LiveJob | None]:
        live = self._live.get(request_id)
        if live is not None:
            return live.record, live
        rec = await self.store.get(request_id)
        live = self._live.get(request_id)  # it may have gone live while we read
        if live is not None:
            return live.record, live
        if rec is None:
            shown = request_id[:120]  # never echo an unbounded path segment
            raise RequestNotFoundError(f"Generation request {shown!r} not found", {"request_id": shown})
        return rec, None

    async def get_status(self, request_id: str) -> JobStatus:
        rec, live = await self._record(request_id)
        return self._status_of(rec, live)

    # ------------------------------------------------------------------ WebSocket messages

    def _progress_message(self, live: LiveJob) -> WsProgress:
        rec = live.record
        if rec.status == QUEUED:
            return views.progress_message(rec, self._queued_remaining(live), self.queue_position(rec.request_id))
        return views.progress_message(rec, self._remaining(live, self._now()))

    def _publish_progress(self, live: LiveJob) -> None:
        if self.hub.has_subscribers(live.request_id):
            self.hub.publish(live.request_id, self._progress_message(live))

    def _publish_queue_positions(self) -> None:
        for live in self._waiting.values():
            self._publish_progress(live)

    async def subscribe(self, request_id: str, subscriber: Subscriber) -> None:
        """Subscribe and send the current state at once (atomically: no update can slip in between)."""
        live = self._live.get(request_id)
        if live is None:
            rec, live = await self._record(request_id)
            if live is None:
                if rec.status in TERMINAL_STATES:
                    self.hub.publish_to(subscriber, request_id, views.terminal_message(rec), terminal=True)
                    return
                # Non-terminal in SQLite yet not live: only while a POST is between insert and enqueue.
                live = LiveJob(rec, self.estimator.estimate(rec.model, rec.parameters.work_units))
                self.hub.subscribe(request_id, subscriber)
                self.hub.publish_to(subscriber, request_id, self._progress_message(live))
                return
        if live.terminal:
            self.hub.publish_to(subscriber, request_id, views.terminal_message(live.record), terminal=True)
            return
        self.hub.subscribe(request_id, subscriber)
        self.hub.publish_to(subscriber, request_id, self._progress_message(live))

    async def unsubscribe(self, request_id: str, subscriber: Subscriber) -> None:
        if request_id not in self._live:
            await self._record(request_id)  # REQUEST_NOT_FOUND for ids that never existed
        self.hub.unsubscribe(request_id, subscriber)

    # ------------------------------------------------------------------ submit / cancel

    def _retry_after(self) -> int:
        now = self._now()
        running = [self._remaining(j, now) for j in self._live.values() if j.record.status == PROCESSING]
        return int(min(600, max(1, math.ceil(min(running)) if running else 5)))

    async def submit(self, request: ValidatedRequest) -> GenerateVideoResponse:
        idle = sum(1 for f in self._idle if not f.done())
        if len(self._waiting) + self._reserved + 1 - idle > self.settings.queue_size:
            retry = self._retry_after()
            raise QueueFullError(
                f"The generation queue is full ({self.settings.queue_size} waiting); retry in {retry} s",
                retry_after_seconds=retry,
                details={"queue_size": self.settings.queue_size, "retry_after_seconds": retry},
            )
        if self.gate is not None:
            await self.gate.check_capacity(request.card, request.parameters)
        params = request.parameters
        request_id = f"{REQUEST_ID_PREFIX_BY_KIND.get(request.kind, REQUEST_ID_PREFIX)}{uuid.uuid4().hex}"
        record = JobRecord(
            request_id=request_id,
            model=request.card.id,
            prompt=request.prompt,
            negative_prompt=request.negative_prompt,
            style=request.style,
            parameters=params,
            status=QUEUED,
            progress=0,
            current_step=STEP_QUEUED,
            created_at=self._now(),
            kind=request.kind,
            source_image=input_path(request_id) if request.source_png is not None else None,
        )
        self._reserved += 1
        try:
            await self._store_new(record, request.source_png)
        finally:
            self._reserved -= 1
        live = LiveJob(record, self.estimator.estimate(record.model, params.work_units))
        self._live[record.request_id] = live
        self._waiting[record.request_id] = live
        self._dispatch()
        queued = record.status == QUEUED
        estimated = self._queued_remaining(live) if queued else live.estimate_seconds
        return GenerateVideoResponse(
            request_id=record.request_id,
            status=record.status,
            estimated_time_seconds=math.ceil(estimated),
            queue_position=self.queue_position(record.request_id),
            created_at=clock.iso(record.created_at) or "",
        )

    async def _store_new(self, record: JobRecord, source_png: bytes | None) -> None:
        """Write a new job: its source image first (a stored job always finds its image), then its row."""
        data_dir, image = self.settings.data_dir, record.source_image
        if image is None or source_png is None:
            await self.store.insert(record)
            return
        await asyncio.to_thread(write_input, data_dir, image, source_png)
        try:
            await self.store.insert(record)
        except BaseException:
            await asyncio.to_thread(remove_input, data_dir, image)
            raise

    async def cancel(self, request_id: str) -> CancelResponse:
        rec, live = await self._record(request_id)
        if rec.status == CANCELLED:
            return CancelResponse(
                request_id=request_id,
                status=CANCELLED,
                cancelled_at=clock.iso(rec.cancelled_at) or "",
                message="Generation request was already cancelled",
            )
        if rec.status in (COMPLETED, FAILED):
            raise InvalidParametersError(
                f"Generation request {request_id!r} is already {rec.status} and cannot be cancelled",
                {"request_id": request_id, "status": rec.status},
            )
        now = self._now()
        was_waiting = self._waiting.pop(request_id, None) is not None
        rec.status = CANCELLED
        rec.cancelled_at = now
        if live is not None:
            live.cancel_requested = True
            if live.stream is not None:
                live.stream.cancel()
        self.hub.publish(request_id, views.terminal_message(rec), terminal=True)
        await self.store.update(request_id, status=CANCELLED, cancelled_at=now, progress=rec.progress)
        self._retire(live)
        if was_waiting:
            self._publish_queue_positions()
        return CancelResponse(
            request_id=request_id,
            status=CANCELLED,
            cancelled_at=clock.iso(now) or "",
            message="Generation request cancelled successfully",
        )

    def _retire(self, live: LiveJob | None) -> None:
        if live is not None:
            if self._live.get(live.request_id) is live:
                del self._live[live.request_id]
            if live.record.source_image is not None:  # a small file: unlinked inline
                with contextlib.suppress(OSError):
                    remove_input(self.settings.data_dir, live.record.source_image)
            live.done.set()

    # ------------------------------------------------------------------ workers

    def _dispatch(self) -> None:
        started = False
        while self._waiting and self._idle:
            fut = self._idle.popleft()
            if fut.done():
                continue
            _, live = self._waiting.popitem(last=False)
            rec = live.record
            rec.status = PROCESSING
            rec.started_at = self._now()
            rec.progress = 0
            rec.current_step = names.PHASE_TEXT_ENCODING
            fut.set_result(live)
            started = True
        if started:
            self._publish_queue_positions()

    async def _worker(self, index: int) -> None:
        loop = asyncio.get_running_loop()
        while True:
            fut: asyncio.Future[LiveJob] = loop.create_future()
            self._idle.append(fut)
            self._dispatch()
            try:
                live = await fut
            except asyncio.CancelledError:
                with contextlib.suppress(ValueError):
                    self._idle.remove(fut)
                if fut.done() and not fut.cancelled():
                    await self._requeue_on_shutdown(fut.result())
                raise
            try:
                await self._run(live)
            except asyncio.CancelledError:
                await self._requeue_on_shutdown(live)
                raise
            except Exception as exc:  # never let one job kill a worker
                logger.exception("worker %d: unexpected error in %s", index, live.request_id)
                await self._fail(live, FAILED_MESSAGE, f"internal error: {exc}")

    async def _requeue_on_shutdown(self, live: LiveJob) -> None:
        if live.terminal:
            return
        if live.stream is not None:
            live.stream.cancel()
        rec = live.record
        rec.status, rec.progress, rec.current_step, rec.started_at = QUEUED, 0, STEP_QUEUED, None
        with contextlib.suppress(Exception):
            await self.store.update(
                rec.request_id, status=QUEUED, progress=0, current_step=STEP_QUEUED, started_at=None
            )

    async def _write_progress(self, live: LiveJob, force: bool = False) -> None:
        rec = live.record
        now = self._now()
        if (
            not force
            and rec.current_step == live.written_step
            and now - live.last_write < PROGRESS_WRITE_INTERVAL
        ):
            return
        live.last_write = now
        live.written_step = rec.current_step
        await self.store.update(rec.request_id, progress=rec.progress, current_step=rec.current_step)

    async def _run(self, live: LiveJob) -> None:
        rec = live.record
        params = rec.parameters
        if live.terminal:  # cancelled between dispatch and now
            return
        await self.store.update(
            rec.request_id,
            status=PROCESSING,
            started_at=rec.started_at,
            progress=0,
            current_step=rec.current_step,
        )
        if live.terminal or not await self._prepare_model(live):
            return
        try:
            image = await self._source_image(rec)
        except ValueError as exc:
            await self._fail(live, FAILED_MESSAGE, str(exc))
            return
        self._publish_progress(live)
        stream = self.backend.stream(
            GenerationInput(
                request_id=rec.request_id,
                model=rec.model,
                prompt=rec.prompt,
                negative_prompt=rec.negative_prompt,
                width=params.width,
                height=params.height,
                num_frames=params.num_frames,
                num_inference_steps=params.num_inference_steps,
                guidance_scale=params.guidance_scale,
                seed=params.seed,
                image=image,
                strength=params.strength if params.strength is not None else 1.0,
            )
        )
        live.stream = stream
        if live.cancel_requested:
            stream.cancel()
        frames: np.ndarray | None = None
        try:
            async for event in within_stall_timeout(stream, self.settings.job_stall_timeout_s):
                if live.terminal:
                    stream.cancel()
                    break
                if event.frames is not None:
                    frames = event.frames
                progress, step = progress_of(event.phase, event.step, event.total_steps)
                if progress > rec.progress or step != rec.current_step:
                    rec.progress = max(rec.progress, progress)
                    rec.current_step = step
                    self._publish_progress(live)
                    await self._write_progress(live)
        except StreamStalled as exc:
            stream.cancel()
            if not live.terminal:
                await self._fail(live, FAILED_MESSAGE, str(exc))
            return
        except BackendError as exc:
            if not live.terminal:
                if is_out_of_memory(exc.details) or is_out_of_memory(exc.message):
                    await self._fail(live, OUT_OF_MEMORY_MESSAGE, exc.details, INSUFFICIENT_GPU_MEMORY)
                else:
                    await self._fail(live, exc.message or FAILED_MESSAGE, exc.details)
            return
        if live.terminal:
            return
        if frames is None:
            await self._fail(live, FAILED_MESSAGE, "the pipeline finished without returning frames")
            return
        expected = (params.num_frames, params.height, params.width, 3)
        if tuple(frames.shape) != expected or frames.dtype != np.uint8:
            await self._fail(
                live,
                FAILED_MESSAGE,
                f"the pipeline returned frames {frames.dtype} {list(frames.shape)}, "
                f"expected uint8 {list(expected)}",
            )
            return

        rec.progress = max(rec.progress, DECODING_DONE)
        rec.current_step = names.PHASE_ENCODING
        self._publish_progress(live)
        await self._write_progress(live, force=True)
        try:
            assets, metadata = await asyncio.to_thread(
                self._encoder, frames, params.fps, self.settings.assets_dir, video_id_of(rec.request_id)
            )
        except Exception as exc:
            logger.exception("encoding %s failed", rec.request_id)
            if not live.terminal:
                await self._fail(live, FAILED_MESSAGE, f"video encoding failed: {exc}")
            return
        if live.terminal:  # cancelled while encoding
            await asyncio.to_thread(remove_assets, assets)
            return
        await self._complete(live, assets, metadata)

    async def _source_image(self, rec: JobRecord) -> np.ndarray | None:
        """The job's source image (image-to-video), uint8 [H, W, 3]; ValueError when it cannot be read."""
        if rec.source_image is None:
            return None
        params = rec.parameters
        return await asyncio.to_thread(
            load_input, self.settings.data_dir, rec.source_image, params.width, params.height
        )

    async def _prepare_model(self, live: LiveJob) -> bool:
        """Load the job's model if it is not loaded; False when the job must not stream (failed, cancelled)."""
        if self.gate is None:
            return True
        rec = live.record

        async def on_loading() -> None:
            rec.current_step = STEP_LOADING_MODEL
            self._publish_progress(live)
            await self._write_progress(live, force=True)

        try:
            await self.gate.ensure_loaded(rec.model, on_loading)
        except VisualizrError as exc:
            if not live.terminal:
                reason = exc.details.get("reason", "") if isinstance(exc.details, dict) else exc.details
                await self._fail(live, exc.message, str(reason or ""), exc.code)
            return False
        if rec.current_step == STEP_LOADING_MODEL:
            rec.current_step = names.PHASE_TEXT_ENCODING
        return not live.terminal

    async def _complete(self, live: LiveJob, assets: VideoAssets, metadata: VideoMetadata) -> None:
        rec = live.record
        now = self._now()
        rec.status = COMPLETED
        rec.progress = 100
        rec.current_step = names.PHASE_DONE
        rec.completed_at = now
        rec.processing_time_seconds = max(0.0, now - (rec.started_at or now))
        rec.video_path, rec.thumbnail_path, rec.preview_path = (
            assets.video.name,
            assets.thumbnail.name,
            assets.preview.name,
        )
        rec.metadata = metadata
        self.estimator.observe(rec.model, rec.processing_time_seconds, rec.parameters.work_units)
        self.hub.publish(rec.request_id, views.terminal_message(rec), terminal=True)
        await self.store.update(
            rec.request_id,
            status=COMPLETED,
            progress=100,
            current_step=rec.current_step,
            completed_at=now,
            processing_time_seconds=rec.processing_time_seconds,
            video_path=rec.video_path,
            thumbnail_path=rec.thumbnail_path,
            preview_path=rec.preview_path,
            metadata=metadata,
        )
        self._retire(live)

    async def _fail(self, live: LiveJob, message: str, details: str, code: str = GENERATION_FAILED) -> None:
        if live.terminal:
            return
        rec = live.record
        now = self._now()
        rec.status = FAILED
        rec.failed_at = now
        rec.error_code = code
        rec.error_message = message
        rec.error_details = details
        logger.warning("job %s failed: %s (%s)", rec.request_id, message, details)
        self.hub.publish(rec.request_id, views.terminal_message(rec), terminal=True)
        await self.store.update(
            rec.request_id,
            status=FAILED,
            failed_at=now,
            error_code=code,
            error_message=message,
            error_details=details,
            progress=rec.progress,
            current_step=rec.current_step,
        )
        self._retire(live)
