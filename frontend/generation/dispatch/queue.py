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
from visualizr.frontend.generation.reporting.schedule import jobs_beside
from visualizr.frontend.generation.running.backend import GenerationStream
from visualizr.frontend.jobs.record import PROCESSING, JobRecord


@dataclass
class Company:
    """The jobs that ran here beside a run, by model, over time: the company noted at each change."""

    changes: list[tuple[float, dict[str, int]]] = field(default_factory=list)  # (from when, jobs beside by model)

    def note(self, beside: Mapping[str, int], now: float) -> None:
        self.changes.append((now, {model: n for model, n in beside.items() if n > 0}))

    def mean(self, now: float, since: float | None = None) -> dict[str, float]:
        """The time-weighted number of jobs beside it by model from ``since`` (the first note) up to ``now`` (the
        company at ``now`` where no time passed)."""
        start = self.changes[0][0] if since is None and self.changes else (since or 0.0)
        totals: dict[str, float] = {}
        for index, (begin, beside) in enumerate(self.changes):
            end = self.changes[index + 1][0] if index + 1 < len(self.changes) else now
            overlap = max(0.0, min(end, now) - max(begin, start))
            for model, count in beside.items():
                totals[model] = totals.get(model, 0.0) + overlap * count
        if now > start:
            return {model: total / (now - start) for model, total in totals.items() if total > 0}
        at_now = [beside for begin, beside in self.changes if begin <= now]
        return {model: float(n) for model, n in (at_now[-1] if at_now else {}).items()}


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
    phase_company: dict[str, dict[str, float]] = field(default_factory=dict)  # part -> jobs beside x seconds

    def measured(self, part: str, seconds: float, now: float) -> None:
        """A part of the run took ``seconds``, up to ``now``: its seconds and the company it had meanwhile."""
        seconds = max(0.0, seconds)
        self.phases[part] = self.phases.get(part, 0.0) + seconds
        totals = self.phase_company.setdefault(part, {})
        for model, n in self.company.mean(now, since=now - seconds).items():
            totals[model] = totals.get(model, 0.0) + n * seconds

    def part_company(self) -> dict[str, dict[str, float]]:
        """Each measured part's jobs beside it, by model, weighted by time."""
        return {
            part: {model: total / self.phases[part] for model, total in totals.items()}
            for part, totals in self.phase_company.items()
            if self.phases.get(part, 0.0) > 0
        }

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
            job.company.note(jobs_beside(models, job.record.model), now)

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
