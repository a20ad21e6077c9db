"""Aggregates over the job table, run by the job store: ``await store.run(model_stats)`` (SQL both engines speak).

Only measured numbers: a rate or a time over zero jobs is None (rendered null), never a made-up value.
A "generation" is a job that ran to an outcome (completed or failed); cancelled jobs count as requests only.
"""

from __future__ import annotations

import msgspec

from visualizr.frontend.jobs.database import Connection
from visualizr.frontend.jobs.record import CANCELLED, COMPLETED, FAILED, PROCESSING, QUEUED
from visualizr.frontend.jobs.telemetry import JOB_BUCKETS

OUTCOMES = (COMPLETED, FAILED, CANCELLED)


class ModelStats(msgspec.Struct):
    generations: int
    completed: int
    average_time_seconds: float | None

    @property
    def success_rate_percent(self) -> float | None:
        return round(100.0 * self.completed / self.generations, 1) if self.generations else None


class TimeStats(msgspec.Struct):
    average: float | None
    median: float | None
    fastest: float | None
    slowest: float | None


class RequestCounts(msgspec.Struct):
    total: int
    since: int  # created at or after the given instant
    completed_since: int
    completed: int
    failed: int


class OutcomeStats(msgspec.Struct):
    """Per (model, outcome): job count, and for jobs that ran, the duration histogram (cumulative)."""

    model: str
    outcome: str
    count: int
    timed: int
    duration_sum: float
    buckets: list[int]  # cumulative counts per JOB_BUCKETS


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


def model_stats(conn: Connection) -> dict[str, ModelStats]:
    rows = conn.execute(
        "SELECT model, COUNT(*), SUM(CASE WHEN status = ? THEN 1 ELSE 0 END), "
        "AVG(CASE WHEN status = ? THEN processing_time_seconds END) "
        "FROM jobs WHERE status IN (?, ?) GROUP BY model",
        (COMPLETED, COMPLETED, COMPLETED, FAILED),
    ).fetchall()
    return {r[0]: ModelStats(int(r[1]), int(r[2] or 0), _round(r[3])) for r in rows}


def time_stats(conn: Connection) -> TimeStats:
    where = "FROM jobs WHERE status = ? AND processing_time_seconds IS NOT NULL"
    count, average, fastest, slowest = conn.execute(
        f"SELECT COUNT(*), AVG(processing_time_seconds), MIN(processing_time_seconds), "
        f"MAX(processing_time_seconds) {where}",
        (COMPLETED,),
    ).fetchone()
    if not count:
        return TimeStats(None, None, None, None)
    middle = conn.execute(
        f"SELECT processing_time_seconds {where} ORDER BY processing_time_seconds LIMIT ? OFFSET ?",
        (COMPLETED, 2 - count % 2, (count - 1) // 2),
    ).fetchall()
    median = sum(float(r[0]) for r in middle) / len(middle)
    return TimeStats(_round(average), _round(median), _round(fastest), _round(slowest))


def request_counts(conn: Connection, since: float) -> RequestCounts:
    row = conn.execute(
        "SELECT COUNT(*), SUM(CASE WHEN created_at >= ? THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN status = ? AND completed_at >= ? THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN status = ? THEN 1 ELSE 0 END), SUM(CASE WHEN status = ? THEN 1 ELSE 0 END) FROM jobs",
        (since, COMPLETED, since, COMPLETED, FAILED),
    ).fetchone()
    return RequestCounts(*(int(v or 0) for v in row))


def live_counts(conn: Connection) -> tuple[int, int]:
    """(queued, processing): the shared queue, whichever replica holds its jobs."""
    row = conn.execute(
        "SELECT SUM(CASE WHEN status = ? THEN 1 ELSE 0 END), SUM(CASE WHEN status = ? THEN 1 ELSE 0 END) FROM jobs "
        "WHERE status IN (?, ?)",
        (QUEUED, PROCESSING, QUEUED, PROCESSING),
    ).fetchone()
    return (int(row[0] or 0), int(row[1] or 0)) if row is not None else (0, 0)


def average_wait_seconds(conn: Connection) -> float | None:
    """Mean of started_at - created_at over the jobs a worker picked up."""
    row = conn.execute(
        "SELECT AVG(CASE WHEN started_at > created_at THEN started_at - created_at ELSE 0 END) FROM jobs "
        "WHERE started_at IS NOT NULL"
    ).fetchone()
    return _round(row[0])


def outcome_stats(conn: Connection) -> list[OutcomeStats]:
    """Per model and terminal outcome. Duration: processing time of completed jobs; failed_at / cancelled_at
    minus started_at for the others (jobs cancelled or failed before they started have no duration)."""
    duration = (
        "CASE status WHEN ? THEN processing_time_seconds WHEN ? THEN failed_at - started_at "
        "WHEN ? THEN cancelled_at - started_at END"
    )
    buckets = ", ".join(f"SUM(CASE WHEN d <= {bound!r} THEN 1 ELSE 0 END)" for bound in JOB_BUCKETS)
    rows = conn.execute(
        f"SELECT model, status, COUNT(*), COUNT(d), COALESCE(SUM(d), 0), {buckets} FROM "
        f"(SELECT model, status, CASE WHEN raw < 0 THEN 0 ELSE raw END AS d FROM "
        f"(SELECT model, status, {duration} AS raw FROM jobs WHERE status IN (?, ?, ?)) AS runs) AS durations "
        "GROUP BY model, status ORDER BY model, status",
        (COMPLETED, FAILED, CANCELLED, *OUTCOMES),
    ).fetchall()
    return [OutcomeStats(r[0], r[1], int(r[2]), int(r[3]), float(r[4]), [int(v or 0) for v in r[5:]]) for r in rows]


def failure_stats(conn: Connection) -> list[tuple[str, str, int]]:
    """(model, error code, count) of the failed jobs."""
    rows = conn.execute(
        "SELECT model, COALESCE(error_code, ''), COUNT(*) FROM jobs WHERE status = ? GROUP BY 1, 2 ORDER BY 1, 2",
        (FAILED,),
    ).fetchall()
    return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]
