"""``GET /api/v1/metrics`` (the API reference's JSON) and ``GET /metrics`` (Prometheus), computed from the job
table, the queue and the disk.

* requests: ``total`` jobs ever submitted, ``today`` since 00:00 UTC, ``per_hour`` = today / hours since
  00:00 UTC (at least one hour, so the first minutes of a day do not spike), ``success_rate_percent`` =
  completed / (completed + failed).
* generation: processing time (started -> completed) of completed jobs: mean, median, min, max.
* queue: ``current_length`` jobs waiting for a worker; ``max_length_today`` the largest waiting count seen
  today (sampled after every HTTP request and at startup: the queue only grows on a submit; kept in the
  ``queue_daily_max`` table so a restart keeps it); ``average_wait_time_seconds`` mean started_at -
  created_at.
* storage: files in the asset folder (``total_videos`` counts the .mp4 files, ``total_size_gb`` every file:
  videos, thumbnails, previews) and the free space of the data folder's disk.
* models: per model, ``generations`` (completed + failed), ``success_rate`` (percent) and
  ``average_time_seconds``; every model of the repository is listed.

Rates and times over zero jobs are null.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import msgspec
from litestar import Response, get

from visualizr.frontend import clock
from visualizr.frontend.generation.service import GenerationService
from visualizr.frontend.models.service import ModelService
from visualizr.frontend.system import job_stats
from visualizr.frontend.system.prometheus import CONTENT_TYPE, HttpMetrics, gauge, job_families, render

logger = logging.getLogger("visualizr.frontend.metrics")

GIB = 1024**3
WATERMARK_SCHEMA = "CREATE TABLE IF NOT EXISTS queue_daily_max (day TEXT PRIMARY KEY, max_length INTEGER NOT NULL)"


def utc_midnight(ts: float) -> float:
    day = datetime.fromtimestamp(ts, tz=UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day.timestamp()


def utc_day(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d")


class QueueWatermark:
    """The largest queue length seen per UTC day: in memory, written through to SQLite when it grows."""

    def __init__(self, store_run: Callable[..., object], now: Callable[[], float] = clock.now) -> None:
        self._run = store_run
        self._now = now
        self._day = ""
        self._max = 0
        self._pending: set[asyncio.Task[object]] = set()

    async def restore(self) -> None:
        day = utc_day(self._now())

        def read(conn: sqlite3.Connection) -> int:
            conn.execute(WATERMARK_SCHEMA)
            row = conn.execute("SELECT max_length FROM queue_daily_max WHERE day = ?", (day,)).fetchone()
            return int(row[0]) if row else 0

        self._max = max(self._max if self._day == day else 0, await self._run(read))  # type: ignore[misc]
        self._day = day

    def observe(self, length: int) -> None:
        day = utc_day(self._now())
        if day != self._day:
            self._day, self._max = day, 0
        if length <= self._max:
            return
        self._max = length

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(WATERMARK_SCHEMA)
            conn.execute(
                "INSERT INTO queue_daily_max (day, max_length) VALUES (?, ?) ON CONFLICT(day) "
                "DO UPDATE SET max_length = MAX(max_length, excluded.max_length)",
                (day, length),
            )

        try:
            task = asyncio.ensure_future(self._run(write))  # type: ignore[arg-type]
        except RuntimeError:  # no running loop (called outside the app): memory only
            return
        self._pending.add(task)
        task.add_done_callback(self._written)

    def _written(self, task: asyncio.Task[object]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("could not persist the queue watermark: %s", task.exception())

    def today(self) -> int:
        return self._max if self._day == utc_day(self._now()) else 0


# ---------------------------------------------------------------------------------------------- JSON shape


class RequestMetrics(msgspec.Struct):
    total: int
    today: int
    per_hour: float
    success_rate_percent: float | None


class GenerationMetrics(msgspec.Struct):
    average_time_seconds: float | None
    median_time_seconds: float | None
    fastest_time_seconds: float | None
    slowest_time_seconds: float | None


class QueueMetrics(msgspec.Struct):
    current_length: int
    max_length_today: int
    average_wait_time_seconds: float | None


class StorageMetrics(msgspec.Struct):
    total_videos: int
    total_size_gb: float
    available_space_gb: float


class ModelMetrics(msgspec.Struct):
    generations: int
    success_rate: float | None
    average_time_seconds: float | None


class MetricsResponse(msgspec.Struct):
    requests: RequestMetrics
    generation: GenerationMetrics
    queue: QueueMetrics
    storage: StorageMetrics
    models: dict[str, ModelMetrics]


def storage_usage(assets_dir: Path, data_dir: Path) -> StorageMetrics:
    videos, size = 0, 0
    if assets_dir.is_dir():
        for path in assets_dir.iterdir():
            if path.is_file():
                size += path.stat().st_size
                videos += path.suffix == ".mp4"
    probe = data_dir if data_dir.exists() else data_dir.parent
    free = shutil.disk_usage(probe).free
    return StorageMetrics(videos, round(size / GIB, 3), round(free / GIB, 3))


class _Snapshot(msgspec.Struct):
    counts: job_stats.RequestCounts
    times: job_stats.TimeStats
    wait: float | None
    models: dict[str, job_stats.ModelStats]


def _snapshot(since: float) -> Callable[[sqlite3.Connection], _Snapshot]:
    def query(conn: sqlite3.Connection) -> _Snapshot:
        return _Snapshot(
            job_stats.request_counts(conn, since),
            job_stats.time_stats(conn),
            job_stats.average_wait_seconds(conn),
            job_stats.model_stats(conn),
        )

    return query


async def collect(
    service: GenerationService, watermark: QueueWatermark, model_ids: list[str], now: float
) -> MetricsResponse:
    midnight = utc_midnight(now)
    snap = await service.store.run(_snapshot(midnight))
    settings = service.settings
    storage = await asyncio.to_thread(storage_usage, settings.assets_dir, settings.data_dir)
    watermark.observe(service.waiting_count)
    counts = snap.counts
    finished = counts.completed + counts.failed
    hours = max(1.0, (now - midnight) / 3600.0)
    models = {
        model_id: ModelMetrics(stats.generations, stats.success_rate_percent, stats.average_time_seconds)
        for model_id in sorted(set(model_ids) | set(snap.models))
        for stats in [snap.models.get(model_id) or job_stats.ModelStats(0, 0, None)]
    }
    return MetricsResponse(
        requests=RequestMetrics(
            total=counts.total,
            today=counts.since,
            per_hour=round(counts.since / hours, 2),
            success_rate_percent=round(100.0 * counts.completed / finished, 1) if finished else None,
        ),
        generation=GenerationMetrics(snap.times.average, snap.times.median, snap.times.fastest, snap.times.slowest),
        queue=QueueMetrics(service.waiting_count, watermark.today(), snap.wait),
        storage=storage,
        models=models,
    )


@get("/api/v1/metrics", tags=["system"])
async def system_metrics(
    service: GenerationService, models: ModelService, watermark: QueueWatermark
) -> MetricsResponse:
    """Request, generation, queue, storage and per-model figures from the job history and the disk."""
    return await collect(service, watermark, models.catalog.ids(), clock.now())


@get("/metrics", tags=["system"], media_type=CONTENT_TYPE, include_in_schema=True)
async def prometheus_metrics(service: GenerationService, http_metrics: HttpMetrics) -> Response[str]:
    """Prometheus text exposition: HTTP requests, queue gauges, job outcomes and durations."""
    outcomes = await service.store.run(job_stats.outcome_stats)
    families = [
        *http_metrics.families(),
        gauge("visualizr_queue_length", "Generation jobs waiting for a worker", service.waiting_count),
        gauge("visualizr_jobs_processing", "Generation jobs running", service.running_count),
        *job_families(outcomes),
    ]
    return Response(render(families), media_type=CONTENT_TYPE)
