"""The service's scheduler, simulated: when each job would start and end, from the work left of the jobs running
and the work of the jobs waiting (in predicted solo seconds, ``cost_model``), the number of workers and the
slowdown of jobs sharing the machine.

The workers take the waiting jobs in queue order as they free up; while jobs run at once, each moves at
``1 / slowdown(its model, the others' models)`` solo seconds per second (they share the cores and the inference
server's batcher; a model slows down more beside some models than beside others: ``contention``). The time of a
job is thus not its solo time times one slowdown: it runs beside whichever jobs the schedule puts beside it, for
as long as they last, alone once they are done."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

DONE_EPSILON = 1e-9  # solo seconds of work left that count as none

Slowdown = Callable[[str, Mapping[str, float]], float]  # (a job's model, the jobs beside it by model) -> slowdown


def jobs_beside(models: Counter[str], model: str) -> Counter[str]:
    """The jobs beside one job of ``model`` among ``models`` (jobs by model, itself included)."""
    return models - Counter({model: 1})


class Work(NamedTuple):
    """A job's model and its solo seconds of work (left)."""

    model: str
    seconds: float


@dataclass(frozen=True)
class Timing:
    """When a job starts and ends, in seconds from now."""

    start: float
    end: float


def simulate(
    running: Sequence[Work], waiting: Sequence[Work], workers: int, slowdown: Slowdown
) -> tuple[list[float], list[Timing]]:
    """(end of each running job, timing of each waiting job). More running jobs than workers (other replicas'
    among them) all run on; a waiting job starts when fewer than ``workers`` run."""
    jobs = [*running, *waiting]
    left = [max(0.0, job.seconds) for job in jobs]
    ends = [0.0] * len(jobs)
    starts = [0.0] * len(jobs)
    active = list(range(len(running)))
    pending = deque(range(len(running), len(jobs)))
    now = 0.0
    while active or pending:
        while pending and len(active) < max(1, workers):
            job = pending.popleft()
            starts[job] = now
            active.append(job)
        models = Counter(jobs[job].model for job in active)
        rates = {
            job: 1.0 / max(1e-9, slowdown(jobs[job].model, jobs_beside(models, jobs[job].model))) for job in active
        }
        step = min(left[job] / rates[job] for job in active)
        now += step
        for job in active:
            left[job] -= step * rates[job]
        for job in [job for job in active if left[job] <= DONE_EPSILON]:
            ends[job] = now
            active.remove(job)
    first = len(running)
    return ends[:first], [Timing(starts[j], ends[j]) for j in range(first, len(jobs))]
