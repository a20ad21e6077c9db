"""The generation service: what the routes call (submit, status, cancel, subscribe) over the job queue, the
workers and the job lifecycle. docs/ARCHITECTURE.md tells the whole job path.

* Submit: refused with QUEUE_FULL (503 + Retry-After) when ``queue_size`` jobs wait, INSUFFICIENT_STORAGE (507)
  when the disk is below its floor, INSUFFICIENT_GPU_MEMORY (507) when the request cannot fit; else written to
  the store (with its source image and idempotency key) and started at once when a worker is idle and the job can
  start, queued otherwise.
* Status and WebSocket messages come from the live job (memory, which is never ahead of the table) or the store.
* Cancel: written first, then the job leaves the queue or its stream is cancelled (Triton stops within a step).
* Start-up: jobs the previous process left ``processing`` run again (counted as an attempt), queued ones keep
  their order.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable

import msgspec

from visualizr.frontend import clock
from visualizr.frontend.catalog import ModelCatalog
from visualizr.frontend.errors import InvalidParametersError, QueueFullError, RequestNotFoundError
from visualizr.frontend.generation import views
from visualizr.frontend.generation.backend import GenerationBackend
from visualizr.frontend.generation.encoding import encode_assets
from visualizr.frontend.generation.eta import Estimator
from visualizr.frontend.generation.hub import GenerationHub, Subscriber
from visualizr.frontend.generation.idempotency import IdempotencyClaim, IdempotencyKeys
from visualizr.frontend.generation.journal import JobJournal
from visualizr.frontend.generation.lifecycle import JobLifecycle
from visualizr.frontend.generation.queue import JobQueue, LiveJob
from visualizr.frontend.generation.retry import RetryPolicy
from visualizr.frontend.generation.runner import Encoder, InferenceGate, JobRunner, failed
from visualizr.frontend.generation.schemas import CancelResponse, GenerateVideoResponse, JobStatus
from visualizr.frontend.generation.standing import Standing
from visualizr.frontend.generation.validation import ValidatedRequest
from visualizr.frontend.generation.workers import WorkerPool
from visualizr.frontend.infra.disk import DiskGuard
from visualizr.frontend.jobs.files import JobFiles
from visualizr.frontend.jobs.naming import input_path, new_request_id, shown
from visualizr.frontend.jobs.record import (
    CANCELLED,
    COMPLETED,
    FAILED,
    QUEUED,
    STEP_QUEUED,
    JobRecord,
)
from visualizr.frontend.jobs.store import JobStore
from visualizr.frontend.jobs.telemetry import JobTelemetry
from visualizr.settings import Settings

logger = logging.getLogger("visualizr.frontend.generation")

INTERRUPTED_REASON = "interrupted by a server restart"
IMAGE_DECODE_SLOTS = 2


class GenerationService:
    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        catalog: ModelCatalog,
        backend: GenerationBackend,
        gate: InferenceGate,
        hub: GenerationHub,
        disk: DiskGuard,
        files: JobFiles,
        *,
        telemetry: JobTelemetry,
        encoder: Encoder = encode_assets,
        now: Callable[[], float] = clock.now,
    ) -> None:
        self.settings, self.store, self.catalog, self.gate, self.hub = settings, store, catalog, gate, hub
        self.disk, self.files = disk, files
        self._now = now
        self.telemetry = telemetry
        self.estimator = Estimator()
        self.standing = Standing(lambda: self.queue, self.estimator, catalog, gate, disk, files, settings.workers, now)
        self.queue = JobQueue(self.standing.startable)
        self.journal = JobJournal(store, hub, self.standing.progress_message, now)
        self.policy = RetryPolicy(settings.job_max_attempts, settings.job_deadline_s)
        runner = JobRunner(backend, gate, self.journal, files, settings.job_stall_timeout_s, encoder,
                           telemetry=self.telemetry, now=now)  # fmt: skip
        self.lifecycle = JobLifecycle(
            self.queue, self.journal, runner, self.policy, self.estimator, files, now, self.dispatch
        )
        life = self.lifecycle
        self.workers = WorkerPool(self.queue, settings.workers, life.run_one, life.requeue_on_shutdown, life.tick)
        self.idempotency = IdempotencyKeys(store)
        self.image_slots = asyncio.Semaphore(IMAGE_DECODE_SLOTS)  # uploads decoded at once (memory stays flat)
        self._reserved = 0
        gate.on_change(self.dispatch)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        interrupted = set(await self.store.requeue_interrupted(INTERRUPTED_REASON))
        if interrupted:
            logger.warning("%d job(s) interrupted by the last stop will run again: %s", len(interrupted),
                           ", ".join(sorted(interrupted)))  # fmt: skip
        waiting = await self.store.list_by_status([QUEUED])
        for model in {r.model for r in waiting} | set(self.catalog.ids()):
            history = await self.store.history(model)
            work = self.standing.workload
            self.estimator.load(model, [(s, work(model, kind, p).total) for s, kind, p in history])
        for record in waiting:
            job = self.standing.live(record)
            self.queue.add(job)
            reason = self.policy.give_up_reason(record, self._now()) if record.request_id in interrupted else None
            if reason is not None:
                self.queue.unwait(record.request_id)
                await self.lifecycle.settle(job, failed(f"{reason}; the last one was {INTERRUPTED_REASON}"))
        self.workers.start()

    async def stop(self) -> None:
        await self.workers.stop()

    def dispatch(self) -> None:
        if self.queue.dispatch():
            self._publish_queue_positions()

    # ------------------------------------------------------------------ queries

    @property
    def waiting_count(self) -> int:
        return self.queue.waiting_count

    @property
    def running_count(self) -> int:
        return self.queue.running_count

    @property
    def workers_alive(self) -> int:
        return self.workers.alive

    @property
    def workers_configured(self) -> int:
        return self.workers.count

    @property
    def worker_restarts(self) -> int:
        return self.workers.restarts

    def _publish_queue_positions(self) -> None:
        for job in self.queue.waiting.values():
            self.journal.announce(job)

    async def _record(self, request_id: str) -> tuple[JobRecord, LiveJob | None]:
        job = self.queue.live.get(request_id)
        if job is not None:
            return job.record, job
        rec = await self.store.get(request_id)
        job = self.queue.live.get(request_id)  # it may have gone live while we read
        if job is not None:
            return job.record, job
        if rec is None:
            raise RequestNotFoundError(
                f"Generation request {shown(request_id)!r} not found", {"request_id": shown(request_id)}
            )
        return rec, None

    async def get_status(self, request_id: str) -> JobStatus:
        return self.standing.status_of(*await self._record(request_id))

    # ------------------------------------------------------------------ WebSocket subscriptions

    async def subscribe(self, request_id: str, subscriber: Subscriber) -> None:
        """Subscribe, then send the state read after that (updates are not replayed: none can slip in between)."""
        self.hub.subscribe(request_id, subscriber)
        try:
            message, terminal = await self.current_update(request_id)
        except BaseException:
            self.hub.unsubscribe(request_id, subscriber)
            raise
        self.hub.catch_up(subscriber, request_id, message, terminal=terminal)

    async def current_update(self, request_id: str) -> tuple[msgspec.Struct, bool]:
        """The job's WebSocket message as it stands (from this replica's live job, else its row), and whether it
        is terminal."""
        rec, job = await self._record(request_id)
        if rec.terminal:
            return views.terminal_message(rec), True
        # not live here: on another replica, or a POST between its insert and its enqueue
        return self.standing.progress_message(job or self.standing.live(rec)), False

    async def unsubscribe(self, request_id: str, subscriber: Subscriber) -> None:
        if request_id not in self.queue.live:
            await self._record(request_id)  # REQUEST_NOT_FOUND for ids that never existed
        self.hub.unsubscribe(request_id, subscriber)

    # ------------------------------------------------------------------ submit / cancel

    def _retry_after(self) -> int:
        running = self.standing.running_remaining()
        return int(min(600, max(1, math.ceil(min(running)) if running else 5)))

    def _check_room(self) -> None:
        if self.queue.waiting_count + self._reserved + 1 - self.queue.idle_count > self.settings.queue_size:
            retry = self._retry_after()
            raise QueueFullError(
                f"The generation queue is full ({self.settings.queue_size} waiting); retry in {retry} s",
                retry_after_seconds=retry,
                details={"queue_size": self.settings.queue_size, "retry_after_seconds": retry},
            )

    async def submit(self, request: ValidatedRequest, claim: IdempotencyClaim | None = None) -> GenerateVideoResponse:
        if claim is not None:
            async with self.idempotency.lock(claim.key):
                first = await self.idempotency.first_job(claim)
                if first is not None:
                    return self.standing.accepted(*await self._record(first))
                return await self._submit(request, claim)
        return await self._submit(request, None)

    async def _submit(self, request: ValidatedRequest, claim: IdempotencyClaim | None) -> GenerateVideoResponse:
        self._check_room()
        self.disk.check()
        await self.gate.check_capacity(request.card, request.parameters)
        request_id = new_request_id(request.kind)
        record = JobRecord(
            request_id=request_id,
            model=request.card.id,
            prompt=request.prompt,
            negative_prompt=request.negative_prompt,
            style=request.style,
            parameters=request.parameters,
            status=QUEUED,
            progress=0,
            current_step=STEP_QUEUED,
            created_at=self._now(),
            kind=request.kind,
            source_image=input_path(request_id) if request.source_png is not None else None,
        )
        job = self.standing.live(record)
        worker = self.queue.take_idle() if self.standing.startable(job) else None
        if worker is not None:  # starts at once: stored as started
            for name, value in self.lifecycle.start_fields(job).items():
                setattr(record, name, value)
        self._reserved += 1
        try:
            await self._store_new(record, request.source_png, claim)
        except BaseException:
            if worker is not None:
                self.queue.give_back(worker)
            raise
        finally:
            self._reserved -= 1
        if worker is not None:
            self.queue.track(job)
            worker.set_result(job)
        else:
            self.queue.add(job)
            self.dispatch()
        return self.standing.accepted(record, job)

    async def _store_new(self, record: JobRecord, source_png: bytes | None, claim: IdempotencyClaim | None) -> None:
        """Write a new job: its source image first (a stored job always finds its image), then its row."""
        image = record.source_image
        if image is not None and source_png is not None:
            await self.files.put_input(image, source_png)
        try:
            await self.store.insert(record, idempotency=(claim.key, claim.fingerprint) if claim else None)
        except BaseException:
            if image is not None:
                await self.files.remove_input(image)
            raise

    async def cancel(self, request_id: str) -> CancelResponse:
        rec, job = await self._record(request_id)
        if rec.status == CANCELLED:
            return CancelResponse(
                request_id, CANCELLED, clock.iso(rec.cancelled_at) or "", "Generation request was already cancelled"
            )
        if rec.status in (COMPLETED, FAILED):
            raise InvalidParametersError(
                f"Generation request {request_id!r} is already {rec.status} and cannot be cancelled",
                {"request_id": request_id, "status": rec.status},
            )
        now = self._now()
        fields = {"status": CANCELLED, "cancelled_at": now, "progress": rec.progress}
        if job is None:  # between a POST's insert and its enqueue
            await self.store.update(request_id, **fields)
        else:
            await self.journal.commit(job, **fields)
            job.cancel_requested = True
            if job.stream is not None:
                job.stream.cancel()
            was_waiting = self.queue.unwait(request_id)
            self.lifecycle.finished(job)
            if was_waiting:
                self._publish_queue_positions()
        if job is None and rec.source_image is not None:
            self.files.drop_input(rec.source_image)
        return CancelResponse(request_id, CANCELLED, clock.iso(now) or "", "Generation request cancelled successfully")
