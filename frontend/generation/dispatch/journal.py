"""Every change of a running job, written before it is announced: ``advance`` applies one typed transition
(``jobs.transitions``) in the database, fenced on this replica owning the job, takes the row it returns as the
job's record and publishes it to the job's WebSocket subscribers. When the write fails (a full disk) nothing
changes anywhere, so the API and the table never disagree; the caller may ``park`` the transition and ``flush``
retries it later (a worker never waits on a broken disk). When the fence refuses it (the job was cancelled, or
taken back after this replica's lease expired) the job is ``lost``: its run stops and writes nothing more.

Progress (percent and phase within ``processing``) goes the same way, throttled to one write per job every
``PROGRESS_WRITE_INTERVAL`` seconds; a phase change is always written. A progress write is also how a runner
learns, within a step, that the job was cancelled on another replica.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial

import msgspec
import numpy as np

from visualizr.frontend.errors import DatabaseUnavailableError, InsufficientStorageError
from visualizr.frontend.generation.dispatch.queue import LiveJob
from visualizr.frontend.generation.reporting import views
from visualizr.frontend.generation.reporting.hub import GenerationHub
from visualizr.frontend.generation.reporting.previews import preview_message
from visualizr.frontend.jobs.record import JobRecord
from visualizr.frontend.jobs.store import JobStore
from visualizr.frontend.jobs.transitions import Progressed, Transition, advance

logger = logging.getLogger("visualizr.frontend.generation")

PROGRESS_WRITE_INTERVAL = 0.1  # seconds between writes of one job's progress (phase changes always write)


class JobJournal:
    def __init__(
        self,
        store: JobStore,
        hub: GenerationHub,
        progress_message: Callable[[JobRecord, LiveJob | None], Awaitable[msgspec.Struct]],
        owner: str,
        now: Callable[[], float],
    ) -> None:
        self.store = store
        self.hub = hub
        self._progress_message = progress_message
        self.owner = owner
        self._now = now
        self._parked: dict[str, tuple[LiveJob, Transition]] = {}

    async def announce(self, record: JobRecord, job: LiveJob | None = None) -> None:
        """Publish a job's current state to its subscribers (its terminal message, once, when it has ended)."""
        if record.terminal:
            self.hub.publish(record.request_id, views.terminal_message(record), terminal=True)
        elif self.hub.has_subscribers(record.request_id):
            self.hub.publish(record.request_id, await self._progress_message(record, job))

    def wants_previews(self, request_id: str) -> bool:
        """Whether the job's run should ask the pipeline for live previews (``GenerationHub.wants_previews``)."""
        return self.hub.wants_previews(request_id)

    def preview(self, job: LiveJob, step: int, total_steps: int, frames: np.ndarray) -> None:
        """A live preview of the running job to the subscribers that asked for it (not written anywhere)."""
        self.hub.publish_preview(job.request_id, preview_message(job.request_id, step, total_steps, frames))

    async def advance(self, job: LiveJob, transition: Transition) -> bool:
        """Write the transition (fenced on this replica owning the job), then take and announce the row; False
        (and the job ``lost``) when the fence refused it. Raises, changing nothing, when the write fails."""
        record = await self.store.run(partial(advance, request_id=job.request_id, owner=self.owner,
                                              transition=transition))  # fmt: skip
        if record is None:
            logger.info("%s is no longer run by this replica (cancelled or taken back): its run stops", job.request_id)
            job.stop()
            return False
        job.record = record
        job.last_write = self._now()
        job.written_step = record.current_step
        await self.announce(record, job)
        return True

    async def progress(self, job: LiveJob, progress: int, step: str) -> None:
        """A running job's progress: written and announced when the phase changed or the interval has passed. A
        full disk or an unreachable database skips it (neither written nor announced): the run goes on, the
        outcome is what must be kept."""
        record = job.record
        progress = max(record.progress, progress)
        if job.terminal or (progress == record.progress and step == record.current_step):
            return
        if step == job.written_step and self._now() - job.last_write < PROGRESS_WRITE_INTERVAL:
            return
        try:
            await self.advance(job, Progressed(progress, step))
        except (InsufficientStorageError, DatabaseUnavailableError) as exc:
            logger.debug("progress of %s not recorded: %s", job.request_id, exc)

    # ------------------------------------------------------------------ writes that must not be lost

    def park(self, job: LiveJob, transition: Transition) -> None:
        logger.warning(
            "could not record %s of %s; retrying: the job stays as it is until then",
            type(transition).__name__,
            job.request_id,
        )
        self._parked[job.request_id] = (job, transition)

    @property
    def parked_count(self) -> int:
        return len(self._parked)

    async def flush(self, on_done: Callable[[LiveJob], Awaitable[None]]) -> None:
        """Retry the parked transitions (the maintenance loop); ``on_done`` runs for each one that was written or
        that the fence refused (the job is no longer this replica's)."""
        for request_id, (job, transition) in list(self._parked.items()):
            try:
                await self.advance(job, transition)
            except Exception as exc:
                logger.debug("still cannot record %s: %s", request_id, exc)
                continue
            del self._parked[request_id]
            logger.info("recorded the parked change of %s", request_id)
            await on_done(job)
