"""The generation service: what the routes call (submit, status, cancel, subscribe) over the shared queue (the job
table: ``jobs.work_queue``, ``jobs.transitions``), this replica's workers and the job lifecycle.
docs/ARCHITECTURE.md tells the whole job path.

* Submit: refused with INSUFFICIENT_STORAGE (507) when the disk is below its floor, INSUFFICIENT_GPU_MEMORY (507)
  when the request cannot fit, QUEUE_FULL (503 + Retry-After) when ``queue_size`` jobs wait on all replicas; else
  stored (with its source image and idempotency key, in one transaction) and started at once when a worker of
  this replica is idle and the job can start, queued otherwise.
* Status and WebSocket messages come from the job table, the same on every replica (a job running here adds its
  measured pace).
* Cancel, on any replica: the row is cancelled at once; a job running here stops at once, one running elsewhere
  when its runner next writes (within a step) or renews its lease.
* Start-up: the embedded mode (SQLite, one process) takes back every job the previous process left
  ``processing`` (counted as an attempt); with PostgreSQL, those of a previous process under this replica's name,
  and the reaper the others', once their leases expire.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
from collections.abc import Callable
from functools import partial

import msgspec

from visualizr.frontend import clock
from visualizr.frontend.catalog import ModelCatalog
from visualizr.frontend.errors import InvalidParametersError, QueueFullError, RequestNotFoundError
from visualizr.frontend.generation.dispatch.journal import JobJournal
from visualizr.frontend.generation.dispatch.lifecycle import JobLifecycle
from visualizr.frontend.generation.dispatch.queue import LocalQueue
from visualizr.frontend.generation.dispatch.workers import WorkerPool
from visualizr.frontend.generation.intake.idempotency import KEY_TTL_SECONDS, IdempotencyClaim, IdempotencyKeys
from visualizr.frontend.generation.intake.validation import ValidatedRequest
from visualizr.frontend.generation.reporting import views
from visualizr.frontend.generation.reporting.cost_model import CostModel
from visualizr.frontend.generation.reporting.hub import GenerationHub, Subscriber
from visualizr.frontend.generation.reporting.standing import Standing
from visualizr.frontend.generation.running.backend import GenerationBackend
from visualizr.frontend.generation.running.encoding import encode_assets
from visualizr.frontend.generation.running.retry import RetryPolicy
from visualizr.frontend.generation.running.runner import Encoder, InferenceGate, JobRunner
from visualizr.frontend.generation.schemas import CancelResponse, GenerateVideoResponse, JobStatus
from visualizr.frontend.infra.disk import DiskGuard
from visualizr.frontend.jobs.files import JobFiles
from visualizr.frontend.jobs.naming import end_input_path, new_request_id, shown
from visualizr.frontend.jobs.record import CANCELLED, QUEUED, JobRecord
from visualizr.frontend.jobs.store import JobStore
from visualizr.frontend.jobs.telemetry import JobTelemetry
from visualizr.frontend.jobs.transitions import cancel
from visualizr.frontend.jobs.webhook_outbox import WebhookTarget
from visualizr.frontend.jobs.work_queue import Admission, Lease, QueueIsFull, admit
from visualizr.names import PHASE_TEXT_ENCODING
from visualizr.settings import Settings

logger = logging.getLogger("visualizr.frontend.generation")

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
        self.replica = settings.replica_id or f"{socket.gethostname()}-{os.getpid()}"
        loads = {card.id: card.requirements.estimated_load_time_seconds for card in catalog.cards()}
        segmenting = {
            card.id: (card.capabilities.native_num_frames, card.capabilities.segment_overlap)
            for card in catalog.cards()
            if card.capabilities.segment_overlap > 0
        }
        self.costs = CostModel(load_seconds=loads, segmenting=segmenting)
        self.queue = LocalQueue()
        self.standing = Standing(store, self.queue, self.costs, catalog, gate, disk, files, settings.workers, now)
        self.journal = JobJournal(store, hub, self.standing.progress_message, self.replica, now)
        self.policy = RetryPolicy(settings.job_max_attempts, settings.job_deadline_s)
        runner = JobRunner(backend, gate, self.journal, files, settings.job_stall_timeout_s, encoder,
                           telemetry=self.telemetry, now=now)  # fmt: skip
        self.lifecycle = JobLifecycle(self.queue, self.journal, runner, self.standing, self.policy, self.costs,
                                      files, settings.job_lease_s, now)  # fmt: skip
        life = self.lifecycle
        self.workers = WorkerPool(self.queue, settings.workers, life.claim, life.run_one, life.release_on_shutdown,
                                  self._tick, poll_s=settings.queue_poll_ms / 1000,
                                  tick_s=min(1.0, settings.job_lease_s / 3))  # fmt: skip
        self.idempotency = IdempotencyKeys(store)
        self.image_slots = asyncio.Semaphore(IMAGE_DECODE_SLOTS)  # uploads decoded at once (memory stays flat)
        gate.on_change(self.queue.wake)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        await self.lifecycle.reap(at_start=True)
        self.costs.replay(await self.store.cost_samples())
        await self.lifecycle.refresh_counts()
        self.workers.start()

    async def stop(self) -> None:
        await self.workers.stop()
        for job in self.queue.drain_handed():
            await self.lifecycle.release_on_shutdown(job)

    async def _tick(self) -> None:
        await self.lifecycle.tick()
        await self._publish_queue_positions()

    # ------------------------------------------------------------------ queries

    @property
    def waiting_count(self) -> int:
        return self.lifecycle.counts[0]

    @property
    def running_count(self) -> int:
        return self.lifecycle.counts[1]

    @property
    def workers_alive(self) -> int:
        return self.workers.alive

    @property
    def workers_configured(self) -> int:
        return self.workers.count

    @property
    def worker_restarts(self) -> int:
        return self.workers.restarts

    async def _publish_queue_positions(self) -> None:
        """The place of every queued job someone here watches (it moves as jobs start or leave on any replica)."""
        for request_id in self.hub.subscribed():
            rec = await self.store.get(request_id)
            if rec is not None and rec.status == QUEUED:
                await self.journal.announce(rec)

    async def _record(self, request_id: str) -> JobRecord:
        rec = await self.store.get(request_id)
        if rec is None:
            raise RequestNotFoundError(
                f"Generation request {shown(request_id)!r} not found", {"request_id": shown(request_id)}
            )
        return rec

    async def get_status(self, request_id: str) -> tuple[JobStatus, str | None]:
        """The job's status body and the replica that runs (or ran) it."""
        rec = await self._record(request_id)
        return await self.standing.status_of(rec, self.queue.live.get(request_id)), rec.owner

    # ------------------------------------------------------------------ WebSocket subscriptions

    async def subscribe(self, request_id: str, subscriber: Subscriber, previews: bool = False) -> None:
        """Subscribe (``previews``: to its previews too), then send the state read after (updates are not replayed)."""
        self.hub.subscribe(request_id, subscriber, previews=previews)
        try:
            message, terminal = await self.current_update(request_id)
        except BaseException:
            self.hub.unsubscribe(request_id, subscriber)
            raise
        self.hub.catch_up(subscriber, request_id, message, terminal=terminal)

    def want_previews(self, subscriber: Subscriber) -> None:
        """The socket will subscribe with previews (``GenerationHub.want_previews``)."""
        self.hub.want_previews(subscriber)

    async def current_update(self, request_id: str) -> tuple[msgspec.Struct, bool]:
        """The job's WebSocket message as its row stands (with this replica's pace when it runs here), and whether
        it is terminal."""
        rec = await self._record(request_id)
        if rec.terminal:
            return views.terminal_message(rec), True
        return await self.standing.progress_message(rec, self.queue.live.get(request_id)), False

    async def unsubscribe(self, request_id: str, subscriber: Subscriber) -> None:
        if request_id not in self.queue.live:
            await self._record(request_id)  # REQUEST_NOT_FOUND for ids that never existed
        self.hub.unsubscribe(request_id, subscriber)

    # ------------------------------------------------------------------ submit / cancel

    async def _queue_full(self) -> QueueFullError:
        running = await self.standing.running_remaining()
        retry = int(min(600, max(1, math.ceil(min(running)) if running else 5)))
        return QueueFullError(
            f"The generation queue is full ({self.settings.queue_size} waiting); retry in {retry} s",
            retry_after_seconds=retry,
            details={"queue_size": self.settings.queue_size, "retry_after_seconds": retry},
        )

    async def _accepted_again(
        self, claim: IdempotencyClaim, fingerprint: str, request_id: str
    ) -> GenerateVideoResponse:
        """The 202 of the job first stored under the claim's key (409 when the key was used for another request)."""
        self.idempotency.check(claim, fingerprint, request_id)
        return await self.standing.accepted(await self._record(request_id), self.queue.live.get(request_id))

    async def submit(
        self, request: ValidatedRequest, claim: IdempotencyClaim | None = None, webhook: WebhookTarget | None = None
    ) -> GenerateVideoResponse:
        if claim is not None:  # the common repeat, answered before any check (the insert settles races)
            first = await self.idempotency.first_job(claim)
            if first is not None:
                return await self._accepted_again(claim, *first)
        self.disk.check()
        await self.gate.check_capacity(request.card, request.parameters)
        record = request.queued_record(new_request_id(request.kind), self._now())
        reserved = self.standing.startable(record) and self.queue.reserve()
        try:
            admission = await self._store_new(record, request, claim, reserved, webhook)
        except BaseException:
            if reserved:
                self.queue.unreserve()
            raise
        if admission.record is None:  # the key was stored meanwhile (another replica, a concurrent request)
            if reserved:
                self.queue.unreserve()
            assert claim is not None and admission.duplicate_of is not None and admission.fingerprint is not None
            return await self._accepted_again(claim, admission.fingerprint, admission.duplicate_of)
        job = await self.standing.live(admission.record)
        if admission.started:
            self.queue.hand(job)
        elif reserved:
            self.queue.unreserve()
        else:
            self.queue.wake()
        await self.lifecycle.refresh_counts()
        return await self.standing.accepted(admission.record, job)

    async def _store_new(
        self, record: JobRecord, request: ValidatedRequest, claim: IdempotencyClaim | None, start: bool,
        webhook: WebhookTarget | None,
    ) -> Admission:
        """Write a new job: its source (and end) image first (a stored job always finds them), then its row."""
        image = record.source_image
        if image is not None and request.source_png is not None:
            await self.files.put_input(image, request.source_png)
            if request.end_png is not None:
                await self.files.put_input(end_input_path(image), request.end_png)
        lease = Lease(self.replica, self._now(), self.settings.job_lease_s) if start else None
        keys = (claim.key, claim.fingerprint) if claim else None
        admission = admit(record, self.settings.queue_size, start=lease, first_step=PHASE_TEXT_ENCODING,
                          idempotency=keys, keys_since=self._now() - KEY_TTL_SECONDS, webhook=webhook)  # fmt: skip
        try:
            stored = await self.store.run(admission)
        except BaseException as exc:
            if image is not None:
                await self.files.remove_input(image)
            if isinstance(exc, QueueIsFull):
                raise await self._queue_full() from None
            raise
        if stored.record is None and image is not None:
            await self.files.remove_input(image)
        return stored

    async def cancel(self, request_id: str) -> CancelResponse:
        now = self._now()
        rec = await self.store.run(partial(cancel, request_id=request_id, now=now))
        if rec is None:
            rec = await self._record(request_id)
            if rec.status == CANCELLED:
                return CancelResponse(request_id, CANCELLED, clock.iso(rec.cancelled_at) or "",
                                      "Generation request was already cancelled")  # fmt: skip
            raise InvalidParametersError(
                f"Generation request {request_id!r} is already {rec.status} and cannot be cancelled",
                {"request_id": request_id, "status": rec.status},
            )
        job = self.queue.live.get(request_id)
        if job is not None:  # it runs here: it stops now
            job.record = rec
            job.stop()
        await self.journal.announce(rec)
        if rec.source_image is not None:  # read when a run starts: a runner elsewhere has it already, or fails
            self.files.drop_input(rec.source_image)
        await self.lifecycle.refresh_counts()
        await self._publish_queue_positions()
        return CancelResponse(request_id, CANCELLED, clock.iso(now) or "", "Generation request cancelled successfully")
