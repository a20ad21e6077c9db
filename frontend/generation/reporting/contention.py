"""How much a run of one model slows down beside the jobs running with it, by the models of those jobs: its
``slowdown`` is ``1 + sum(c[o] x n[o])`` over the models ``o`` beside it (``n[o]``: how many jobs of ``o`` ran
beside it, on average over its run, weighted by time), not one rate for any company: on a shared CPU two runs of
a memory-bound model beside each other slow down more than one beside a lighter model.

The coefficients of a model are a ridge regression of its runs' slowdown less 1 on their company: exponentially
weighted least squares (``CONTENTION_DECAY`` per run: the machine's present counts most), pulled towards a common
value (the server-wide contention, ``cost_model``) with the weight of ``RIDGE`` runs wholly beside one job, so a
pair never seen takes the common value and one seen a few times moves away from it as far as its runs say.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

CONTENTION_DECAY = 0.8  # weight of the past per run of the model
RIDGE = 0.3  # the common value's weight, in runs wholly beside one other job
MAX_CONTENTION = 3.0


@dataclass
class Contention:
    """One model's slowdown by company: the weighted sums of products of its runs' company and their excess."""

    xx: dict[tuple[str, str], float] = field(default_factory=dict)
    xs: dict[str, float] = field(default_factory=dict)
    _solved: tuple[float, dict[str, float]] | None = None  # (the common value it was solved for, coefficients)

    def add(self, beside: Mapping[str, float], excess: float, weight: float = 1.0) -> None:
        """A point worth ``weight`` runs: ``excess`` (a slowdown less 1) beside ``beside`` (jobs by model); alone
        it tells nothing."""
        company = {model: n for model, n in beside.items() if n > 0}
        if not company:
            return
        decay = CONTENTION_DECAY**weight
        self.xx = {key: decay * value for key, value in self.xx.items()}
        self.xs = {key: decay * value for key, value in self.xs.items()}
        for a, na in company.items():
            self.xs[a] = self.xs.get(a, 0.0) + weight * na * excess
            for b, nb in company.items():
                self.xx[a, b] = self.xx.get((a, b), 0.0) + weight * na * nb
        self._solved = None

    def coefficients(self, common: float) -> dict[str, float]:
        """Each model seen beside it: its coefficient (clipped to ``[0, MAX_CONTENTION]``)."""
        if self._solved is None or self._solved[0] != common:
            models = sorted(self.xs)
            matrix = [[self.xx.get((a, b), 0.0) + (RIDGE if a == b else 0.0) for b in models] for a in models]
            vector = [self.xs[a] + RIDGE * common for a in models]
            found = np.linalg.solve(matrix, vector).tolist() if models else []
            clipped = {m: min(MAX_CONTENTION, max(0.0, c)) for m, c in zip(models, found, strict=True)}
            self._solved = (common, clipped)
        return self._solved[1]

    def slowdown(self, beside: Mapping[str, float], common: float) -> float:
        coefficients = self.coefficients(common)
        return 1.0 + sum(coefficients.get(model, common) * max(0.0, n) for model, n in beside.items())
