"""The job queue: live jobs, the waiting ones in order, and the idle workers that take them.

``dispatch()`` hands waiting jobs to idle workers in queue order, skipping a job that cannot start yet (``startable``
says so: a retry not yet due, its model unservable on every endpoint, the disk below its floor); the skipped job
keeps its place. ``queue_position`` is 1 for the next job to start, 0 for one that is not waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from visualizr.frontend.generation.backend import GenerationStream
from visualizr.frontend.generation.eta import Pace, Workload
from visualizr.frontend.jobs.record import PROCESSING, JobRecord


@dataclass(eq=False)
class LiveJob:
    """A job that is not terminal yet: its record (as stored) and what only the running process knows."""

    record: JobRecord
    workload: Workload
    estimate_seconds: float
    pace: Pace = field(default_factory=Pace)  # of the run under way
    stream: GenerationStream | None = None
    cancel_requested: bool = False
    not_before: float = 0.0  # a retry waits until then (clock of the service)
    last_write: float = 0.0
    written_step: str = ""
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def request_id(self) -> str:
        return self.record.request_id

    @property
    def terminal(self) -> bool:
        return self.record.terminal


class JobQueue:
    def __init__(self, startable: Callable[[LiveJob], bool]) -> None:
        self._startable = startable
        self.live: dict[str, LiveJob] = {}
        self.waiting: OrderedDict[str, LiveJob] = OrderedDict()
        self._idle: deque[asyncio.Future[LiveJob]] = deque()

    # ------------------------------------------------------------------ membership

    def add(self, job: LiveJob, *, front: bool = False) -> None:
        """Make a job live and waiting (at the end, or at the front: a retry keeps its turn)."""
        self.live[job.request_id] = job
        self.waiting[job.request_id] = job
        if front:
            self.waiting.move_to_end(job.request_id, last=False)

    def track(self, job: LiveJob) -> None:
        """Make a job live without queueing it (it starts at once)."""
        self.live[job.request_id] = job

    def unwait(self, request_id: str) -> bool:
        return self.waiting.pop(request_id, None) is not None

    def retire(self, job: LiveJob) -> None:
        if self.live.get(job.request_id) is job:
            del self.live[job.request_id]
        self.waiting.pop(job.request_id, None)
        job.done.set()

    # ------------------------------------------------------------------ queries

    @property
    def waiting_count(self) -> int:
        return len(self.waiting)

    def running(self) -> Iterator[LiveJob]:
        return (j for j in self.live.values() if j.record.status == PROCESSING)

    @property
    def running_count(self) -> int:
        return sum(1 for _ in self.running())

    @property
    def idle_count(self) -> int:
        return sum(1 for f in self._idle if not f.done())

    def position(self, request_id: str) -> int:
        for index, rid in enumerate(self.waiting, start=1):
            if rid == request_id:
                return index
        return 0

    def ahead_of(self, request_id: str | None) -> Iterator[LiveJob]:
        """The waiting jobs in front of ``request_id`` (all of them for None)."""
        for rid, job in self.waiting.items():
            if rid == request_id:
                return
            yield job

    # ------------------------------------------------------------------ workers

    async def take(self) -> LiveJob:
        """Wait for the next job (a worker's loop). Cancelled while waiting: the worker leaves the idle line."""
        future: asyncio.Future[LiveJob] = asyncio.get_running_loop().create_future()
        self._idle.append(future)
        self.dispatch()
        try:
            return await future
        except asyncio.CancelledError:
            with contextlib.suppress(ValueError):
                self._idle.remove(future)
            if future.done() and not future.cancelled():  # handed a job in the same tick: put it back
                self.add(future.result(), front=True)
            raise

    def take_idle(self) -> asyncio.Future[LiveJob] | None:
        """An idle worker's slot, taken out of the line (the caller must hand it a job at once), or None."""
        while self._idle:
            future = self._idle.popleft()
            if not future.done():
                return future
        return None

    def give_back(self, future: asyncio.Future[LiveJob]) -> None:
        """Return an idle worker's slot taken with ``take_idle`` that got no job after all."""
        if not future.done():
            self._idle.appendleft(future)

    def dispatch(self) -> list[LiveJob]:
        """Hand startable waiting jobs to idle workers, in queue order; returns the jobs handed out."""
        handed: list[LiveJob] = []
        for job in list(self.waiting.values()):
            if not self.idle_count:
                break
            if not self._startable(job):
                continue
            future = self.take_idle()
            if future is None:
                break
            del self.waiting[job.request_id]
            future.set_result(job)
            handed.append(job)
        return handed

    def close(self) -> None:
        for future in self._idle:
            future.cancel()
        self._idle.clear()
