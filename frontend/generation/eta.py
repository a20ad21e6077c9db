"""Generation-time estimates from the measured history of completed jobs, and the waits they add up to.

A job's cost is its work units, ``num_inference_steps x num_frames x width x height`` (the UNet dominates and
scales with all four). Per model, over the latest ``HISTORY`` completed jobs (processing time = completed_at -
started_at, which includes text encoding, decoding and our video encoding):

* with >= 3 jobs of differing sizes: least squares ``seconds = overhead + rate x units`` (both clamped >= 0);
* otherwise: ``rate = sum(seconds) / sum(units)`` and no overhead;
* before any history: the prior ``PRIOR_SECONDS_PER_UNIT`` = 3e-7 s/unit, i.e. ~31 s for 512x512, 16 frames,
  25 steps (an AnimateDiff-class model on one GPU, as the reference's example), plus
  ``PRIOR_OVERHEAD_SECONDS``.

Estimates are never below ``MIN_ESTIMATE_SECONDS``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

HISTORY = 50
PRIOR_SECONDS_PER_UNIT = 3e-7
PRIOR_OVERHEAD_SECONDS = 1.0
MIN_ESTIMATE_SECONDS = 0.5


class Estimator:
    def __init__(self) -> None:
        self._samples: dict[str, deque[tuple[float, float]]] = {}
        self._fit: dict[str, tuple[float, float]] = {}

    def observe(self, model: str, seconds: float, units: float) -> None:
        if seconds <= 0 or units <= 0:
            return
        self._samples.setdefault(model, deque(maxlen=HISTORY)).append((seconds, units))
        self._fit.pop(model, None)

    def load(self, model: str, history_newest_first: list[tuple[float, float]]) -> None:
        for seconds, units in reversed(history_newest_first):
            self.observe(model, seconds, units)

    def coefficients(self, model: str) -> tuple[float, float]:
        """(overhead_seconds, seconds_per_unit) for ``model``."""
        if model in self._fit:
            return self._fit[model]
        samples = self._samples.get(model)
        if not samples:
            return PRIOR_OVERHEAD_SECONDS, PRIOR_SECONDS_PER_UNIT
        seconds = [s for s, _ in samples]
        units = [u for _, u in samples]
        n = len(samples)
        fit: tuple[float, float] | None = None
        mean_u = sum(units) / n
        var_u = sum((u - mean_u) ** 2 for u in units)
        if n >= 3 and var_u > 0:
            mean_s = sum(seconds) / n
            rate = sum((u - mean_u) * (s - mean_s) for s, u in samples) / var_u
            overhead = mean_s - rate * mean_u
            if rate > 0 and overhead >= 0:
                fit = (overhead, rate)
        if fit is None:
            fit = (0.0, sum(seconds) / sum(units))
        self._fit[model] = fit
        return fit

    def estimate(self, model: str, units: float) -> float:
        overhead, rate = self.coefficients(model)
        return max(MIN_ESTIMATE_SECONDS, overhead + rate * units)


def remaining_seconds(progress: int, elapsed: float, estimate: float) -> float:
    """Seconds until a running job is done: extrapolated from its progress once it has some, else its estimate."""
    if progress >= 10:
        return max(0.0, elapsed * (100 - progress) / progress)
    return max(0.0, estimate - elapsed)


def wait_seconds(running: Iterable[float], ahead: Iterable[float], workers: int) -> float:
    """Seconds until a worker is free for a job behind ``ahead`` (estimates of the waiting jobs in front of it):
    list scheduling of those jobs over the workers, starting from the running jobs' remaining times."""
    busy = sorted(running)
    slots = sorted([0.0] * max(0, workers - len(busy)) + busy)[: max(1, workers)] or [0.0]
    for estimate in ahead:
        slots[0] += estimate
        slots.sort()
    return slots[0]
