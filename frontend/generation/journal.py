"""Every change of a live job, written before it is announced: ``commit`` writes the job's columns to the store,
then applies them to the record in memory, then publishes the result to the job's WebSocket subscribers. When the
write fails (a full disk) nothing changes anywhere, so the API and the table never disagree; the caller may
``park`` the change and ``flush`` retries it later (a worker never waits on a broken disk).

Progress (percent and phase within ``processing``) goes the same way, throttled to one write per job every
``PROGRESS_WRITE_INTERVAL`` seconds; a phase change is always written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import msgspec

from visualizr.frontend.errors import DatabaseUnavailableError, InsufficientStorageError
from visualizr.frontend.generation import views
from visualizr.frontend.generation.hub import GenerationHub
from visualizr.frontend.generation.queue import LiveJob
from visualizr.frontend.jobs.store import JobStore

logger = logging.getLogger("visualizr.frontend.generation")

PROGRESS_WRITE_INTERVAL = 0.1  # seconds between writes of one job's progress (phase changes always write)


class JobJournal:
    def __init__(
        self,
        store: JobStore,
        hub: GenerationHub,
        progress_message: Callable[[LiveJob], msgspec.Struct],
        now: Callable[[], float],
    ) -> None:
        self.store = store
        self.hub = hub
        self._progress_message = progress_message
        self._now = now
        self._parked: dict[str, tuple[LiveJob, dict[str, Any]]] = {}

    def announce(self, job: LiveJob) -> None:
        """Publish the job's current state to its subscribers (its terminal message, once, when it has ended)."""
        record = job.record
        if record.terminal:
            self.hub.publish(record.request_id, views.terminal_message(record), terminal=True)
        elif self.hub.has_subscribers(record.request_id):
            self.hub.publish(record.request_id, self._progress_message(job))

    async def commit(self, job: LiveJob, **fields: Any) -> None:
        """Write ``fields`` of the job, then apply and announce them; raises (changing nothing) when the write
        fails."""
        await self.store.update(job.request_id, **fields)
        for name, value in fields.items():
            setattr(job.record, name, value)
        job.last_write = self._now()
        job.written_step = job.record.current_step
        self.announce(job)

    async def progress(self, job: LiveJob, progress: int, step: str) -> None:
        """A running job's progress: written and announced when the phase changed or the interval has passed. A
        full disk or a database outage skips it (neither written nor announced): the run goes on, the outcome is
        what must be kept."""
        record = job.record
        progress = max(record.progress, progress)
        if progress == record.progress and step == record.current_step:
            return
        if step == job.written_step and self._now() - job.last_write < PROGRESS_WRITE_INTERVAL:
            return
        try:
            await self.commit(job, progress=progress, current_step=step)
        except (InsufficientStorageError, DatabaseUnavailableError) as exc:
            logger.debug("progress of %s not recorded: %s", job.request_id, exc)

    # ------------------------------------------------------------------ writes that must not be lost

    def park(self, job: LiveJob, fields: dict[str, Any]) -> None:
        logger.warning(
            "could not record %s of %s; retrying: the job stays as it is until then",
            fields.get("status", "the progress"),
            job.request_id,
        )
        self._parked[job.request_id] = (job, fields)

    @property
    def parked_count(self) -> int:
        return len(self._parked)

    async def flush(self, on_written: Callable[[LiveJob], None]) -> None:
        """Retry the parked changes (the maintenance loop); ``on_written`` runs for each one that went through."""
        for request_id, (job, fields) in list(self._parked.items()):
            try:
                await self.commit(job, **fields)
            except Exception as exc:
                logger.debug("still cannot record %s: %s", request_id, exc)
                continue
            del self._parked[request_id]
            logger.info("recorded the parked change of %s", request_id)
            on_written(job)
