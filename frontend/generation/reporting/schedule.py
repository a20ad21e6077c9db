"""The service's scheduler, simulated: when each job would start and end, from the work left of the jobs running
and the work of the jobs waiting (in predicted solo seconds, ``cost_model``), the number of workers and the
slowdown of jobs sharing the machine.

The workers take the waiting jobs in queue order as they free up; while ``k`` jobs run, each moves at
``1 / slowdown(k)`` solo seconds per second (they share the cores and the inference server's batcher). The time
of a job is thus not its solo time times one slowdown: it runs beside whichever jobs the schedule puts beside it,
for as long as they last, alone once they are done."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

DONE_EPSILON = 1e-9  # solo seconds of work left that count as none


@dataclass(frozen=True)
class Timing:
    """When a job starts and ends, in seconds from now."""

    start: float
    end: float


def simulate(
    running: Sequence[float], waiting: Sequence[float], workers: int, slowdown: Callable[[int], float]
) -> tuple[list[float], list[Timing]]:
    """(end of each running job, timing of each waiting job), the jobs given by their solo seconds of work (left).
    More running jobs than workers (other replicas' among them) all run on; a waiting job starts when fewer than
    ``workers`` run."""
    left = [max(0.0, work) for work in running] + [max(0.0, work) for work in waiting]
    ends = [0.0] * len(left)
    starts = [0.0] * len(left)
    active = list(range(len(running)))
    pending = deque(range(len(running), len(left)))
    now = 0.0
    while active or pending:
        while pending and len(active) < max(1, workers):
            job = pending.popleft()
            starts[job] = now
            active.append(job)
        rate = 1.0 / max(1e-9, slowdown(len(active)))
        step = min(left[job] for job in active) / rate
        now += step
        for job in active:
            left[job] -= step * rate
        for job in [job for job in active if left[job] <= DONE_EPSILON]:
            ends[job] = now
            active.remove(job)
    first = len(running)
    return ends[:first], [Timing(starts[j], ends[j]) for j in range(first, len(left))]
