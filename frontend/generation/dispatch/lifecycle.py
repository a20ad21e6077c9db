"""A job's way through this replica: claim it, run it (``JobRunner``), record the outcome as a typed transition;
and the replica's share of keeping the shared queue alive: renew its leases, reap the jobs of dead replicas.

* claim: the oldest queued job that can start here (its retry due, its model servable, the disk above its
  floor), now ``processing`` under this replica's lease with one more attempt;
* completed / failed: recorded (fenced on this replica owning the job), the job retired (its source image
  deleted);
* retry (an infrastructure failure): back to the queue as ``queued`` / ``retrying`` with the reason in
  ``last_error``, due after a backoff (it keeps its place); or failed when the retry policy gives up;
* lost (cancelled, or taken back after the lease expired): the run stops, nothing is written, its files go;
* a write that fails (the disk is full) is parked and retried by ``tick``; the job stays as it was meanwhile,
  in memory and in the table alike (its lease renewed), and the worker moves on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable

from visualizr.frontend.errors import DatabaseUnavailableError, InsufficientStorageError
from visualizr.frontend.generation.dispatch.journal import JobJournal
from visualizr.frontend.generation.dispatch.queue import LiveJob, LocalQueue
from visualizr.frontend.generation.reporting.cost_model import CostModel, samples_of_run
from visualizr.frontend.generation.reporting.standing import Standing
from visualizr.frontend.generation.running.retry import RetryPolicy
from visualizr.frontend.generation.running.runner import (
    COMPLETED_RUN,
    FAILED_RUN,
    RETRY_RUN,
    JobRunner,
    Outcome,
    failed,
)
from visualizr.frontend.jobs.database import SQLITE
from visualizr.frontend.jobs.files import JobFiles
from visualizr.frontend.jobs.record import CANCELLED, COMPLETED, JobRecord
from visualizr.frontend.jobs.store import JobStore
from visualizr.frontend.jobs.transitions import Completed, Failed, Released, Retrying, Transition
from visualizr.frontend.jobs.work_queue import Lease, claim, queue_counts, reap, renew
from visualizr.names import PHASE_TEXT_ENCODING

logger = logging.getLogger("visualizr.frontend.generation")

INTERRUPTED_REASON = "interrupted by a server restart"
COST_SAMPLES_KEPT = 5000  # stored cost-model samples (of all models): ~700 runs


class JobLifecycle:
    def __init__(
        self,
        queue: LocalQueue,
        journal: JobJournal,
        runner: JobRunner,
        standing: Standing,
        policy: RetryPolicy,
        costs: CostModel,
        files: JobFiles,
        lease_s: float,
        now: Callable[[], float],
    ) -> None:
        self.queue = queue
        self.journal = journal
        self.store: JobStore = journal.store
        self.runner = runner
        self.standing = standing
        self.policy = policy
        self.costs = costs
        self.files = files
        self.lease_s = lease_s
        self._now = now
        self.counts = (0, 0)  # (queued, processing) on all replicas, as last read

    async def refresh_counts(self) -> None:
        with contextlib.suppress(Exception):  # the database away: health says so; the counts wait
            self.counts = await self.store.run(queue_counts)

    @property
    def owner(self) -> str:
        return self.journal.owner

    def lease(self) -> Lease:
        return Lease(self.owner, self._now(), self.lease_s)

    # ------------------------------------------------------------------ one job

    async def claim(self) -> LiveJob | None:
        """The next job this replica can start, claimed in the database; None when there is none (or the
        database cannot be written now: the worker tries again later)."""
        if self.standing.disk.shortage() or self.files.outage:
            return None
        blocked = [m for m in self.standing.catalog.ids() if self.standing.gate.blocked_reason(m) is not None]
        try:
            record = await self.store.run(claim(self.lease(), blocked, PHASE_TEXT_ENCODING))
        except Exception as exc:  # a full disk, the database away: the job stays queued
            logger.debug("could not claim a job: %s", exc)
            return None
        if record is None:
            return None
        await self.refresh_counts()
        return await self.standing.live(record)

    async def run_one(self, job: LiveJob) -> None:
        """A worker's whole handling of one claimed job; never raises for the job's sake."""
        try:
            rec = job.record
            await self.journal.announce(rec, job)
            if rec.attempts == 1 and rec.started_at is not None:
                self.runner.telemetry.started(rec.model, rec.created_at, rec.started_at)
            self.queue.note_company(self._now())
            outcome = await self.runner.run(job)
        except asyncio.CancelledError:
            raise
        except (InsufficientStorageError, DatabaseUnavailableError) as exc:  # the disk filled up, the database
            outcome = Outcome(RETRY_RUN, exc.message)  # went away under the run: run it again later
        except Exception as exc:  # a bug in our own code: the job fails with the reason, the worker lives on
            logger.exception("unexpected error while running %s", job.request_id)
            outcome = failed(f"internal error: {type(exc).__name__}: {exc}")
        await self.settle(job, outcome)

    async def settle(self, job: LiveJob, outcome: Outcome) -> None:
        if job.terminal or outcome.kind not in (COMPLETED_RUN, FAILED_RUN, RETRY_RUN):
            await self._discard(job, outcome)
            return
        if outcome.kind == RETRY_RUN:
            reason = self.policy.give_up_reason(job.record, self._now())
            if reason is None:
                await self._retry(job, outcome.details)
                return
            outcome = failed(f"{reason}; the last one failed: {outcome.details}")
        if outcome.kind == FAILED_RUN:
            logger.warning("job %s failed: %s (%s)", job.request_id, outcome.message, outcome.details)
        completed = outcome.kind == COMPLETED_RUN
        await self._record(job, self._completed(job, outcome) if completed else _failed(outcome, self._now()))
        if job.lost:
            await self._discard(job, outcome)

    async def _record(self, job: LiveJob, transition: Transition) -> None:
        try:
            written = await self.journal.advance(job, transition)
        except Exception:
            self.journal.park(job, transition)
            return
        if written:
            await self.finished(job)

    async def finished(self, job: LiveJob) -> None:
        """After a job's transition is recorded (or refused): learn from it, retire it, delete what it leaves."""
        rec = job.record
        if job.lost:
            await self._discard(job, None)
            return
        first_estimate = self.standing.first_estimates.pop(rec.request_id, None)
        if rec.status == COMPLETED and rec.completed_at is not None:
            self.runner.telemetry.completed(rec.model, rec.created_at, rec.completed_at)
            if first_estimate is not None:
                self.runner.telemetry.first_estimate(rec.model, first_estimate, rec.created_at, rec.completed_at)
            if rec.processing_time_seconds:
                await self._learn(job, rec.processing_time_seconds)
        self.queue.note_company(self._now())
        self.queue.retire(job)
        if rec.terminal:
            self._remove_input(rec)
        await self.refresh_counts()
        self.queue.wake()

    async def _learn(self, job: LiveJob, processing_seconds: float) -> None:
        """A completed run's measured parts teach the cost model, and are stored: the fit survives restarts."""
        rec = job.record
        beside = job.company.mean(self._now())
        passes = self.costs.passes(rec.model, rec.parameters.num_frames)
        samples = samples_of_run(rec.model, rec.parameters, job.phases, processing_seconds, beside, job.part_company(),
                                 passes)  # fmt: skip
        self.costs.observe(samples)
        try:
            await self.store.add_cost_samples(samples, self._now(), COST_SAMPLES_KEPT)
        except Exception as exc:  # the database away: this process still learnt them
            logger.debug("could not store the cost samples of %s: %s", rec.request_id, exc)

    async def _discard(self, job: LiveJob, outcome: Outcome | None) -> None:
        """A run that was stopped, or whose job this replica no longer owns. What it encoded is deleted when the
        job was cancelled; a job taken back keeps them: they bear the job's names, and its next run (same seed)
        writes the same files over them, so shared storage never loses the copy that run makes."""
        self.queue.retire(job)
        if outcome is not None and outcome.assets is not None:
            row = await self.store.get(job.request_id)
            if row is None or row.status == CANCELLED:
                await self.files.discard(outcome.assets)
        await self.refresh_counts()
        self.queue.wake()

    def _remove_input(self, rec: JobRecord) -> None:
        if rec.source_image is not None:
            self.files.drop_input(rec.source_image)

    def _completed(self, job: LiveJob, outcome: Outcome) -> Completed:
        now, rec, assets = self._now(), job.record, outcome.assets
        assert assets is not None
        return Completed(
            completed_at=now,
            processing_time_seconds=max(0.0, now - (rec.started_at or now)),
            video_path=assets.video.name,
            thumbnail_path=assets.thumbnail.name,
            preview_path=assets.preview.name,
            keyframe_path=None if assets.keyframe is None else assets.keyframe.name,
            metadata=outcome.metadata,
        )

    async def _retry(self, job: LiveJob, reason: str) -> None:
        attempts = job.record.attempts
        delay = self.policy.delay(attempts)
        logger.warning(
            "job %s: run %d failed (%s); running it again in %.1f s", job.request_id, attempts, reason, delay
        )
        await self._record(job, Retrying(last_error=reason, not_before=self._now() + delay))
        asyncio.get_running_loop().call_later(delay, self.queue.wake)

    async def release_on_shutdown(self, job: LiveJob) -> None:
        """A running job at a clean shutdown goes back to the queue; the stopped run does not count."""
        if job.stream is not None:
            job.stream.cancel()
        if not job.terminal:
            with contextlib.suppress(Exception):
                await self.journal.advance(job, Released())
        self.queue.retire(job)

    # ------------------------------------------------------------------ the shared queue's upkeep

    async def tick(self) -> None:
        """The maintenance loop's turn: record parked changes, see whether a failed object store is back, renew
        this replica's leases (stopping the runs it lost), take back the jobs of replicas that died, wake the
        workers."""
        if self.journal.parked_count:
            await self.journal.flush(self.finished)
        if self.files.outage:
            await self.files.problem()
        try:
            await self._renew()
            await self.reap()
        except (DatabaseUnavailableError, InsufficientStorageError) as exc:  # said by health; tried again next tick
            logger.warning("could not renew leases or reap: %s", exc.message)
        await self.refresh_counts()
        self.queue.note_company(self._now())
        self.queue.wake()

    async def _renew(self) -> None:
        live = list(self.queue.live.values())
        held = await self.store.run(renew(self.lease(), [j.request_id for j in live if not j.terminal]))
        for job in live:
            if not job.terminal and job.request_id not in held:
                logger.warning("%s: lease lost (cancelled or taken back): its run stops", job.request_id)
                job.stop()

    async def reap(self, *, at_start: bool = False) -> None:
        """Queue again (or fail, past the retry policy) the running jobs whose lease expired: their replica died.
        ``at_start``: also this replica's own (a previous process under the same name), and with SQLite every
        running job (the embedded mode: one process owns the file)."""
        now = self._now()
        everything = at_start and self.store.database.dialect == SQLITE

        def decide(record: JobRecord) -> Transition:
            why = INTERRUPTED_REASON if at_start and (everything or record.owner == self.owner) else (
                f"interrupted: replica {record.owner} stopped renewing it"
            )  # fmt: skip
            refusal = self.policy.give_up_reason(record, now)
            if refusal is not None:
                return _failed(failed(f"{refusal}; the last one was {why}"), now)
            return Retrying(last_error=why, not_before=now)  # the replica died, not the inference: at once

        owner = self.owner if at_start else ""
        reaped = await self.store.run(reap(now, decide, math.inf if everything else None, owner))
        if reaped:
            logger.warning("took back %d job(s) whose runs were interrupted: %s", len(reaped),
                           ", ".join(f"{r.request_id} ({r.status})" for r in reaped))  # fmt: skip
        for record in reaped:
            await self.journal.announce(record)


def _failed(outcome: Outcome, now: float) -> Failed:
    return Failed(failed_at=now, error_code=outcome.code, error_message=outcome.message, error_details=outcome.details)
