"""Where each live job stands, as the API shows it: what a waiting job waits for (a worker, its retry's backoff,
an inference endpoint, disk space), the seconds left, its status body and progress message, the 202 body."""

from __future__ import annotations

import math
from collections.abc import Callable

from visualizr.frontend import clock
from visualizr.frontend.catalog import ModelCatalog
from visualizr.frontend.errors import ModelNotFoundError
from visualizr.frontend.generation import views
from visualizr.frontend.generation.eta import Estimator, Workload, remaining_seconds, wait_seconds, workload
from visualizr.frontend.generation.queue import JobQueue, LiveJob
from visualizr.frontend.generation.runner import InferenceGate
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


class Standing:
    def __init__(
        self,
        queue: Callable[[], JobQueue],
        estimator: Estimator,
        catalog: ModelCatalog,
        gate: InferenceGate,
        disk: DiskGuard,
        files: JobFiles,
        workers: int,
        now: Callable[[], float],
    ) -> None:
        self._queue, self.estimator, self.catalog, self.gate, self.disk = queue, estimator, catalog, gate, disk
        self.files = files
        self.workers, self._now = workers, now

    @property
    def queue(self) -> JobQueue:
        return self._queue()

    def workload(self, model: str, kind: str, parameters: GenerationParameters) -> Workload:
        """A job's workload; a prompt-only job on an image-to-video model makes its keyframe first."""
        try:
            image_model = self.catalog.get(model).type == KIND_IMAGE
        except ModelNotFoundError:  # its card is gone: the job will fail, its estimate matters little
            image_model = False
        return workload(parameters, keyframe=image_model and kind != KIND_IMAGE)

    def live(self, record: JobRecord) -> LiveJob:
        work = self.workload(record.model, record.kind, record.parameters)
        return LiveJob(record, work, self.estimator.estimate(record.model, work.total))

    def held_by(self, job: LiveJob) -> tuple[str, str] | None:
        """(current_step, reason) of a waiting job that cannot start yet; None when only a worker is missing."""
        if job.not_before > self._now():
            return STEP_RETRYING, f"runs again in {job.not_before - self._now():.0f} s: {job.record.last_error}"
        blocked = self.gate.blocked_reason(job.record.model)
        if blocked is not None:
            return STEP_WAITING_FOR_INFERENCE, blocked
        shortage = self.disk.shortage()
        if shortage:
            return STEP_WAITING_FOR_DISK, shortage
        return (STEP_WAITING_FOR_OBJECT_STORE, self.files.outage) if self.files.outage else None

    def startable(self, job: LiveJob) -> bool:
        return self.held_by(job) is None

    def running_remaining(self) -> list[float]:
        return [self.remaining(job) for job in self.queue.running()]

    def waiting(self, job: LiveJob) -> views.Waiting:
        ahead = [j.estimate_seconds for j in self.queue.ahead_of(job.request_id)]
        wait = wait_seconds(self.running_remaining(), ahead, self.workers)
        held = self.held_by(job)
        step, reason = held if held else (STEP_QUEUED, None)
        return views.Waiting(self.queue.position(job.request_id), wait + job.estimate_seconds, step, reason)

    def remaining(self, job: LiveJob) -> float:
        return remaining_seconds(job.workload, job.pace, job.estimate_seconds, self._now())

    def status_of(self, rec: JobRecord, job: LiveJob | None) -> JobStatus:
        if rec.status == QUEUED:
            job = job or self.live(rec)
            return views.job_status(rec, 0.0, self.waiting(job))
        remaining = self.remaining(job) if job and rec.status == PROCESSING else 0.0
        return views.job_status(rec, remaining)

    def progress_message(self, job: LiveJob) -> WsProgress:
        if job.record.status == QUEUED:
            return views.progress_message(job.record, 0.0, self.waiting(job))
        return views.progress_message(job.record, self.remaining(job))

    def accepted(self, record: JobRecord, job: LiveJob | None) -> GenerateVideoResponse:
        """The 202 body of a job just stored (or found again by its idempotency key)."""
        estimate = 0.0
        if record.status == QUEUED:
            estimate = self.waiting(job or self.live(record)).remaining_seconds
        elif record.status == PROCESSING and job is not None:
            estimate = self.remaining(job)
        return GenerateVideoResponse(
            request_id=record.request_id,
            status=record.status,
            estimated_time_seconds=math.ceil(estimate),
            queue_position=self.queue.position(record.request_id),
            created_at=clock.iso(record.created_at) or "",
        )
