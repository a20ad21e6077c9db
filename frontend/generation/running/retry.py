"""When a job that failed on the infrastructure runs again: up to ``max_attempts`` runs in all and while it is
younger than ``deadline_s``, after a short backoff (the queue also holds it while no endpoint can serve it)."""

from __future__ import annotations

from dataclasses import dataclass

from visualizr.backoff import ExponentialBackoff
from visualizr.frontend.jobs.record import JobRecord

RETRY_BACKOFF = ExponentialBackoff(first_s=0.5, max_s=10.0)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    deadline_s: float

    def give_up_reason(self, record: JobRecord, now: float) -> str | None:
        """Why the job must not run again (None: it may)."""
        if record.attempts >= self.max_attempts:
            return f"gave up after {record.attempts} attempt(s)"
        age = now - record.created_at
        if age > self.deadline_s:
            return f"gave up after {age:.0f} s (the job deadline is {self.deadline_s:.0f} s)"
        return None

    @staticmethod
    def delay(attempts: int) -> float:
        """Seconds to wait before run number ``attempts + 1``."""
        return RETRY_BACKOFF.delay(attempts)
