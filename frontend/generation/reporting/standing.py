"""Where each job stands, as the API shows it, read from the shared queue (the job table) so that every replica
answers alike: a waiting job's place and what it waits for (a worker, its retry's backoff, an inference endpoint,
disk space), the seconds left, its status body and progress message, the 202 body. A job running on this replica
adds its measured pace."""

from __future__ import annotations

import math
from collections.abc import Callable

from visualizr.frontend import clock
from visualizr.frontend.catalog import ModelCatalog
from visualizr.frontend.errors import ModelNotFoundError
from visualizr.frontend.generation.dispatch.queue import LiveJob, LocalQueue
from visualizr.frontend.generation.reporting import views
from visualizr.frontend.generation.reporting.eta import Estimator, Workload, remaining_seconds, wait_seconds, workload
from visualizr.frontend.generation.running.runner import InferenceGate
from visualizr.frontend.generation.schemas import GenerateVideoResponse, JobStatus, WsProgress
from visualizr.frontend.infra.disk import DiskGuard
from visualizr.frontend.jobs.files import JobFiles
from visualizr.frontend.jobs.record import (
    KIND_IMAGE,
    PROCESSING,
    QUEUED,
    STEP_QUEUED,
    STEP_RETRYING,
    STEP_WAITING_FOR_DISK,
    STEP_WAITING_FOR_INFERENCE,
    STEP_WAITING_FOR_OBJECT_STORE,
    GenerationParameters,
    JobRecord,
)
from visualizr.frontend.jobs.store import JobStore
from visualizr.frontend.jobs.work_queue import QueueView, queue_view


class Standing:
    def __init__(
        self,
        store: JobStore,
        local: LocalQueue,
        estimator: Estimator,
        catalog: ModelCatalog,
        gate: InferenceGate,
        disk: DiskGuard,
        files: JobFiles,
        workers: int,
        now: Callable[[], float],
    ) -> None:
        self.store, self.local, self.estimator, self.catalog = store, local, estimator, catalog
        self.gate, self.disk, self.files, self.workers, self._now = gate, disk, files, workers, now

    def workload(self, model: str, kind: str, parameters: GenerationParameters) -> Workload:
        """A job's workload; a prompt-only job on an image-to-video model makes its keyframe first."""
        try:
            image_model = self.catalog.get(model).type == KIND_IMAGE
        except ModelNotFoundError:  # its card is gone: the job will fail, its estimate matters little
            image_model = False
        return workload(parameters, keyframe=image_model and kind != KIND_IMAGE)

    def estimate(self, model: str, kind: str, parameters: GenerationParameters) -> float:
        return self.estimator.estimate(model, self.workload(model, kind, parameters).total)

    def live(self, record: JobRecord) -> LiveJob:
        work = self.workload(record.model, record.kind, record.parameters)
        return LiveJob(record, work, self.estimator.estimate(record.model, work.total))

    def held_by(self, record: JobRecord) -> tuple[str, str] | None:
        """(current_step, reason) of a waiting job that cannot start yet; None when only a worker is missing."""
        if record.not_before > self._now():
            return STEP_RETRYING, f"runs again in {record.not_before - self._now():.0f} s: {record.last_error}"
        blocked = self.gate.blocked_reason(record.model)
        if blocked is not None:
            return STEP_WAITING_FOR_INFERENCE, blocked
        shortage = self.disk.shortage()
        if shortage:
            return STEP_WAITING_FOR_DISK, shortage
        return (STEP_WAITING_FOR_OBJECT_STORE, self.files.outage) if self.files.outage else None

    def startable(self, record: JobRecord) -> bool:
        return self.held_by(record) is None

    def remaining(self, job: LiveJob) -> float:
        return remaining_seconds(job.workload, job.pace, job.estimate_seconds, self._now())

    def _running_remaining(self, running: list[JobRecord]) -> list[float]:
        """Seconds left of each running job: its pace where it runs here, else its estimate less its time so far."""
        return [self._left(rec, self.local.live.get(rec.request_id)) for rec in running]

    def _left(self, rec: JobRecord, job: LiveJob | None) -> float:
        if job is not None:
            return self.remaining(job)
        elapsed = self._now() - (rec.started_at or self._now())
        return max(0.0, self.estimate(rec.model, rec.kind, rec.parameters) - elapsed)

    async def running_remaining(self) -> list[float]:
        return self._running_remaining((await self.store.run(queue_view(None))).running)

    async def waiting(self, record: JobRecord) -> views.Waiting:
        view: QueueView = await self.store.run(queue_view(record))
        ahead = [self.estimate(model, kind, parameters) for model, kind, parameters in view.ahead]
        wait = wait_seconds(self._running_remaining(view.running), ahead, self.workers)
        held = self.held_by(record)
        step, reason = held if held else (STEP_QUEUED, None)
        own = self.estimate(record.model, record.kind, record.parameters)
        return views.Waiting(view.position, wait + own, step, reason)

    async def status_of(self, rec: JobRecord, job: LiveJob | None) -> JobStatus:
        if rec.status == QUEUED:
            return views.job_status(rec, 0.0, await self.waiting(rec))
        remaining = self.remaining(job) if job and rec.status == PROCESSING else 0.0
        return views.job_status(rec, remaining)

    async def progress_message(self, rec: JobRecord, job: LiveJob | None) -> WsProgress:
        if rec.status == QUEUED:
            return views.progress_message(rec, 0.0, await self.waiting(rec))
        return views.progress_message(rec, self.remaining(job) if job else 0.0)

    async def accepted(self, record: JobRecord, job: LiveJob | None) -> GenerateVideoResponse:
        """The 202 body of a job just stored (or found again by its idempotency key)."""
        estimate, position = 0.0, 0
        if record.status == QUEUED:
            waiting = await self.waiting(record)
            estimate, position = waiting.remaining_seconds, waiting.position
        elif record.status == PROCESSING and job is not None:
            estimate = self.remaining(job)
        return GenerateVideoResponse(
            request_id=record.request_id,
            status=record.status,
            estimated_time_seconds=math.ceil(estimate),
            queue_position=position,
            created_at=clock.iso(record.created_at) or "",
        )
