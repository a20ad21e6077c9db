"""This replica's side of the queue (the queue itself is the job table, ``jobs.work_queue``): the jobs it runs and
its workers looking for work.

A worker looking for a job takes one handed to it by a submission (``reserve`` then ``hand``: a job submitted
while a worker is idle is stored already claimed and starts at once), else claims the next one from the database;
when there is none it sleeps until ``wake`` (a local submission, a retry falling due, an endpoint coming back) or
the poll interval (other replicas' submissions).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field

from visualizr.frontend.generation.reporting.eta import Pace, Workload
from visualizr.frontend.generation.running.backend import GenerationStream
from visualizr.frontend.jobs.record import PROCESSING, JobRecord


@dataclass
class Company:
    """The jobs that ran here beside a run, by model, weighted by time: noted at each change."""

    beside: dict[str, int] = field(default_factory=dict)  # the jobs running beside it now, by model
    since: float | None = None
    seconds: float = 0.0
    job_seconds: dict[str, float] = field(default_factory=dict)  # seconds x jobs beside, by model

    def note(self, beside: Mapping[str, int], now: float) -> None:
        if self.since is not None:
            elapsed = max(0.0, now - self.since)
            self.seconds += elapsed
            for model, count in self.beside.items():
                self.job_seconds[model] = self.job_seconds.get(model, 0.0) + elapsed * count
        self.beside, self.since = {model: n for model, n in beside.items() if n > 0}, now

    def mean(self, now: float) -> dict[str, float]:
        """The time-weighted number of jobs beside it by model up to ``now`` (those noted last before any time
        passed)."""
        open_for = max(0.0, now - self.since) if self.since is not None else 0.0
        seconds = self.seconds + open_for
        if seconds <= 0:
            return {model: float(n) for model, n in self.beside.items()}
        totals = dict(self.job_seconds)
        for model, count in self.beside.items():
            totals[model] = totals.get(model, 0.0) + open_for * count
        return {model: total / seconds for model, total in totals.items() if total > 0}


@dataclass(eq=False)
class LiveJob:
    """A job this replica runs (or shows): its record as last written and what only the running replica knows."""

    record: JobRecord
    workload: Workload
    estimate_seconds: float
    pace: Pace = field(default_factory=Pace)  # of the run under way
    stream: GenerationStream | None = None
    lost: bool = False  # cancelled or taken back under the run: it must stop and write nothing more
    last_write: float = 0.0
    written_step: str = ""
    phases: dict[str, float] = field(default_factory=dict)  # measured seconds of the run's parts (cost_model)
    company: Company = field(default_factory=Company)  # the jobs running here during the run

    def measured(self, part: str, seconds: float) -> None:
        self.phases[part] = self.phases.get(part, 0.0) + max(0.0, seconds)

    @property
    def request_id(self) -> str:
        return self.record.request_id

    @property
    def terminal(self) -> bool:
        """Nothing more to do for this run: the job ended, or this replica no longer owns it."""
        return self.record.terminal or self.lost

    def stop(self) -> None:
        """The run must end now (cancelled, or its lease lost): Triton stops within a step."""
        self.lost = True
        if self.stream is not None:
            self.stream.cancel()


class LocalQueue:
    def __init__(self) -> None:
        self.live: dict[str, LiveJob] = {}
        self._handed: deque[LiveJob] = deque()
        self._looking = 0  # workers looking for a job
        self._reserved = 0  # of them, promised to a submission being stored
        self._wake = asyncio.Event()

    def running(self) -> Iterator[LiveJob]:
        return (j for j in self.live.values() if j.record.status == PROCESSING)

    def note_company(self, now: float) -> None:
        """Note, on each job running here, how many run here now (the cost model's concurrency of its run)."""
        running = list(self.running())
        models = Counter(job.record.model for job in running)
        for job in running:
            job.company.note(models - Counter({job.record.model: 1}), now)

    @property
    def idle_count(self) -> int:
        return max(0, self._looking - self._reserved)

    def wake(self) -> None:
        self._wake.set()

    def reserve(self) -> bool:
        """Promise an idle worker to a submission (then ``hand`` it the job, or ``unreserve``)."""
        if self.idle_count <= 0:
            return False
        self._reserved += 1
        return True

    def unreserve(self) -> None:
        self._reserved -= 1
        self.wake()

    def hand(self, job: LiveJob) -> None:
        """Give the reserved worker its job (stored already claimed)."""
        self._reserved -= 1
        self.live[job.request_id] = job
        self._handed.append(job)
        self.wake()

    def drain_handed(self) -> list[LiveJob]:
        """The jobs handed to workers that never took them (at shutdown)."""
        handed, self._handed = list(self._handed), deque()
        return handed

    def retire(self, job: LiveJob) -> None:
        if self.live.get(job.request_id) is job:
            del self.live[job.request_id]

    async def next(self, claim: Callable[[], Awaitable[LiveJob | None]], poll_s: float) -> LiveJob:
        """A worker's next job: one handed to it, else one claimed; sleeps between tries. A cancelled worker
        leaves no job behind."""
        self._looking += 1
        try:
            while True:
                self._wake.clear()
                if self._handed:
                    return self._handed.popleft()
                if self._looking > self._reserved:
                    job = await claim()
                    if job is not None:
                        self.live[job.request_id] = job
                        return job
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), poll_s)
        finally:
            self._looking -= 1
