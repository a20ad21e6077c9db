"""Exponentially weighted least squares of ``seconds = fixed x a + work x b`` with ``a``, ``b`` >= 0: the fit behind
each part of the cost model (``cost_model``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Fit:
    """Exponentially weighted least squares of ``seconds = fixed x a + work x b`` (weighted sums of products)."""

    ff: float = 0.0
    fw: float = 0.0
    ww: float = 0.0
    fs: float = 0.0
    ws: float = 0.0

    def add(self, fixed: float, work: float, seconds: float, weight: float = 1.0) -> None:
        self.ff, self.fw, self.ww = (
            self.ff + weight * fixed * fixed,
            self.fw + weight * fixed * work,
            self.ww + weight * work * work,
        )
        self.fs, self.ws = self.fs + weight * fixed * seconds, self.ws + weight * work * seconds

    def decay(self, factor: float) -> None:
        self.ff, self.fw, self.ww, self.fs, self.ws = (
            factor * v for v in (self.ff, self.fw, self.ww, self.fs, self.ws)
        )

    def coefficients(self) -> tuple[float, float]:
        """(a, b), both >= 0: the two-term solution, else the better one-term fit."""
        det = self.ff * self.ww - self.fw * self.fw
        if det > 1e-12 * max(self.ff * self.ww, 1e-300):
            a = (self.fs * self.ww - self.ws * self.fw) / det
            b = (self.ws * self.ff - self.fs * self.fw) / det
            if a >= 0 and b >= 0:
                return a, b
        fixed_only = self.fs / self.ff if self.ff > 0 else 0.0
        work_only = self.ws / self.ww if self.ww > 0 else 0.0
        if self.ww <= 0 or (self.ff > 0 and fixed_only * self.fs >= work_only * self.ws):
            return max(0.0, fixed_only), 0.0  # the one-term fit that explains more of the seconds
        return 0.0, max(0.0, work_only)
