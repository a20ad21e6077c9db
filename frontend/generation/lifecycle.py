"""A job's way from the queue to its end: start it, run it (``JobRunner``), record the outcome.

* start: ``processing``, ``started_at``, one more attempt (a job that starts at its submission is inserted so);
* completed / failed: recorded, the job retired (its source image deleted);
* retry (an infrastructure failure): back to the front of the queue as ``queued`` / ``retrying`` with the reason
  in ``last_error``, after a backoff; or failed when the retry policy gives up, the reason saying why;
* a write that fails (the disk is full) is parked and retried by ``tick``; the job stays as it was meanwhile, in
  memory and in the table alike, and the worker moves on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from visualizr.frontend.errors import InsufficientStorageError
from visualizr.frontend.generation.eta import Estimator
from visualizr.frontend.generation.journal import JobJournal
from visualizr.frontend.generation.queue import JobQueue, LiveJob
from visualizr.frontend.generation.retry import RetryPolicy
from visualizr.frontend.generation.runner import COMPLETED_RUN, FAILED_RUN, RETRY_RUN, JobRunner, Outcome, failed
from visualizr.frontend.jobs.files import JobFiles
from visualizr.frontend.jobs.record import COMPLETED, FAILED, PROCESSING, QUEUED, STEP_QUEUED, STEP_RETRYING
from visualizr.names import PHASE_DONE, PHASE_TEXT_ENCODING

logger = logging.getLogger("visualizr.frontend.generation")

START_RETRY_SECONDS = 5.0  # a job whose start could not be recorded waits this long before it is tried again


class JobLifecycle:
    def __init__(
        self,
        queue: JobQueue,
        journal: JobJournal,
        runner: JobRunner,
        policy: RetryPolicy,
        estimator: Estimator,
        files: JobFiles,
        now: Callable[[], float],
        wake: Callable[[], None],
    ) -> None:
        self.queue = queue
        self.journal = journal
        self.runner = runner
        self.policy = policy
        self.estimator = estimator
        self.files = files
        self._now = now
        self._wake = wake  # dispatch waiting jobs (a retry became due, a job left)

    def start_fields(self, job: LiveJob) -> dict[str, Any]:
        return {
            "status": PROCESSING,
            "started_at": self._now(),
            "progress": 0,
            "current_step": PHASE_TEXT_ENCODING,
            "attempts": job.record.attempts + 1,
        }

    async def run_one(self, job: LiveJob) -> None:
        """A worker's whole handling of one job; never raises for the job's sake."""
        try:
            if job.record.status == QUEUED:
                try:
                    await self.journal.commit(job, **self.start_fields(job))
                except Exception as exc:  # cannot record the start (full disk): back in line, a little later
                    logger.warning("could not start %s: %s", job.request_id, exc)
                    job.not_before = self._now() + START_RETRY_SECONDS
                    self.queue.add(job, front=True)
                    return
            if job.terminal:
                return
            rec = job.record
            if rec.attempts == 1 and rec.started_at is not None:
                self.runner.telemetry.started(rec.model, rec.created_at, rec.started_at)
            outcome = await self.runner.run(job)
        except asyncio.CancelledError:
            raise
        except InsufficientStorageError as exc:  # the disk filled up under the run: run it again later
            outcome = Outcome(RETRY_RUN, exc.message)
        except Exception as exc:  # a bug in our own code: the job fails with the reason, the worker lives on
            logger.exception("unexpected error while running %s", job.request_id)
            outcome = failed(f"internal error: {type(exc).__name__}: {exc}")
        await self.settle(job, outcome)

    async def settle(self, job: LiveJob, outcome: Outcome) -> None:
        if job.terminal or outcome.kind not in (COMPLETED_RUN, FAILED_RUN, RETRY_RUN):
            return
        if outcome.kind == RETRY_RUN:
            reason = self.policy.give_up_reason(job.record, self._now())
            if reason is None:
                await self._requeue(job, outcome.details)
                return
            outcome = failed(f"{reason}; the last one failed: {outcome.details}")
        fields = self._completed_fields(job, outcome) if outcome.kind == COMPLETED_RUN else self._failed_fields(outcome)
        if outcome.kind == FAILED_RUN:
            logger.warning("job %s failed: %s (%s)", job.request_id, outcome.message, outcome.details)
        try:
            await self.journal.commit(job, **fields)
        except Exception:
            self.journal.park(job, fields)
            return
        if job.record.status == COMPLETED and job.record.completed_at is not None:
            self.runner.telemetry.completed(job.record.model, job.record.created_at, job.record.completed_at)
        self.finished(job)

    def finished(self, job: LiveJob) -> None:
        """After a job's terminal state is recorded: learn from it, retire it, delete its source image."""
        rec = job.record
        if rec.status == COMPLETED and rec.processing_time_seconds:
            self.estimator.observe(rec.model, rec.processing_time_seconds, job.workload.total)
        if rec.terminal:
            self.queue.retire(job)
            if rec.source_image is not None:
                self.files.drop_input(rec.source_image)
        else:  # a parked requeue went through
            self.queue.add(job, front=True)
        self._wake()

    def _completed_fields(self, job: LiveJob, outcome: Outcome) -> dict[str, Any]:
        now, rec, assets = self._now(), job.record, outcome.assets
        assert assets is not None
        return {
            "status": COMPLETED,
            "progress": 100,
            "current_step": PHASE_DONE,
            "completed_at": now,
            "processing_time_seconds": max(0.0, now - (rec.started_at or now)),
            "video_path": assets.video.name,
            "thumbnail_path": assets.thumbnail.name,
            "preview_path": assets.preview.name,
            "keyframe_path": None if assets.keyframe is None else assets.keyframe.name,
            "metadata": outcome.metadata,
        }

    def _failed_fields(self, outcome: Outcome) -> dict[str, Any]:
        return {
            "status": FAILED,
            "failed_at": self._now(),
            "error_code": outcome.code,
            "error_message": outcome.message,
            "error_details": outcome.details,
        }

    async def _requeue(self, job: LiveJob, reason: str) -> None:
        attempts = job.record.attempts
        delay = self.policy.delay(attempts)
        logger.warning(
            "job %s: run %d failed (%s); running it again in %.1f s", job.request_id, attempts, reason, delay
        )
        fields = {
            "status": QUEUED,
            "progress": 0,
            "current_step": STEP_RETRYING,
            "started_at": None,
            "last_error": reason,
        }
        job.not_before = self._now() + delay
        try:
            await self.journal.commit(job, **fields)
        except Exception:
            self.journal.park(job, fields)
            return
        self.queue.add(job, front=True)
        asyncio.get_running_loop().call_later(delay, self._wake)

    async def requeue_on_shutdown(self, job: LiveJob) -> None:
        """A running job at a clean shutdown goes back to the queue; the stopped run does not count."""
        if job.terminal:
            return
        if job.stream is not None:
            job.stream.cancel()
        if job.record.status != PROCESSING:
            return
        with contextlib.suppress(Exception):
            await self.journal.commit(
                job,
                status=QUEUED,
                progress=0,
                current_step=STEP_QUEUED,
                started_at=None,
                attempts=max(0, job.record.attempts - 1),
            )

    async def tick(self) -> None:
        """The maintenance loop's turn: record parked changes, see whether a failed object store is back, start
        whatever became startable."""
        if self.journal.parked_count:
            await self.journal.flush(self.finished)
        if self.files.outage:
            await self.files.problem()
        self._wake()
