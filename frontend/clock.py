"""Wall-clock helpers: the API stores epoch seconds (float) and renders ISO 8601 UTC with a ``Z`` suffix."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now() -> float:
    return time.time()


def iso(ts: float | None) -> str | None:
    """``2024-01-15T10:30:00Z`` (second precision, as in the API reference); None stays None."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
