"""Exponential backoff, the one formula behind every wait-and-retry: the supervisor's Triton restarts, the API's
probes of a down inference server and its retries of a failed job.

    PROBES = ExponentialBackoff(first_s=0.25, max_s=5.0)
    PROBES.delay(1), PROBES.delay(2), PROBES.delay(9)  # 0.25, 0.5, 5.0
"""

from __future__ import annotations

import msgspec

MAX_DOUBLINGS = 64  # 2.0 ** 64 still fits a float: no overflow however long the failures go on


class ExponentialBackoff(msgspec.Struct, frozen=True):
    """``first_s`` after the first failure, doubled per further consecutive failure, at most ``max_s``."""

    first_s: float
    max_s: float

    def delay(self, failures: int) -> float:
        """Seconds to wait after ``failures`` consecutive failures (below 1 counts as 1)."""
        return min(self.max_s, self.first_s * 2.0 ** min(max(failures - 1, 0), MAX_DOUBLINGS))
