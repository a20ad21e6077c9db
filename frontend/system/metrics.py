"""``GET /api/v1/metrics`` (the API reference's JSON), computed from the job table, the queue and the disk
(``GET /metrics``, Prometheus: ``system.prometheus``).

* requests: ``total`` jobs ever submitted, ``today`` since 00:00 UTC, ``per_hour`` = today / hours since
  00:00 UTC (at least one hour, so the first minutes of a day do not spike), ``success_rate_percent`` =
  completed / (completed + failed).
* generation: processing time (started -> completed) of completed jobs: mean, median, min, max.
* queue: ``current_length`` jobs waiting for a worker; ``max_length_today`` the largest waiting count seen
  today (sampled after every HTTP request and at startup: the queue only grows on a submit; kept in the
  ``queue_daily_max`` table so a restart keeps it); ``average_wait_time_seconds`` mean started_at -
  created_at.
* storage: files in the asset folder (``total_videos`` counts the .mp4 files, ``total_size_gb`` every file:
  videos, thumbnails, previews, keyframes) and the free space of the data folder's disk. With the files in S3
  the job table says it (every replica the same, no bucket listing): the completed videos and their MP4s' bytes.
* models: per model, ``generations`` (completed + failed), ``success_rate`` (percent) and
  ``average_time_seconds``; every model of the repository is listed.

Rates and times over zero jobs are null.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path

import msgspec
from litestar import get

from visualizr.frontend import clock
from visualizr.frontend.catalog import ModelCatalog
from visualizr.frontend.jobs import stats as job_stats
from visualizr.frontend.jobs.database import Connection
from visualizr.frontend.jobs.files import JobFiles
from visualizr.frontend.jobs.listing import stored_videos
from visualizr.frontend.jobs.store import JobStore
from visualizr.frontend.system.sources import JobCounts, utc_midnight
from visualizr.frontend.system.watermark import QueueWatermark
from visualizr.settings import Settings

GIB = 1024**3


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
    return StorageMetrics(videos, round(size / GIB, 3), round(free_bytes(data_dir) / GIB, 3))


def free_bytes(data_dir: Path) -> int:
    return shutil.disk_usage(data_dir if data_dir.exists() else data_dir.parent).free


async def storage_of(files: JobFiles, store: JobStore, settings: Settings) -> StorageMetrics:
    if files.in_place:
        return await asyncio.to_thread(storage_usage, files.encode_dir, settings.data_dir)
    videos, size = await store.run(stored_videos)
    free = await asyncio.to_thread(free_bytes, settings.data_dir)
    return StorageMetrics(videos, round(size / GIB, 3), round(free / GIB, 3))


class _Snapshot(msgspec.Struct):
    counts: job_stats.RequestCounts
    times: job_stats.TimeStats
    wait: float | None
    models: dict[str, job_stats.ModelStats]


def _snapshot(since: float) -> Callable[[Connection], _Snapshot]:
    def query(conn: Connection) -> _Snapshot:
        return _Snapshot(
            job_stats.request_counts(conn, since),
            job_stats.time_stats(conn),
            job_stats.average_wait_seconds(conn),
            job_stats.model_stats(conn),
        )

    return query


async def collect(
    jobs: JobCounts,
    store: JobStore,
    files: JobFiles,
    settings: Settings,
    watermark: QueueWatermark,
    model_ids: list[str],
    now: float,
) -> MetricsResponse:
    midnight = utc_midnight(now)
    snap = await store.run(_snapshot(midnight))
    storage = await storage_of(files, store, settings)
    watermark.observe(jobs.waiting_count)
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
        queue=QueueMetrics(jobs.waiting_count, watermark.today(), snap.wait),
        storage=storage,
        models=models,
    )


@get("/api/v1/metrics", tags=["system"])
async def system_metrics(
    jobs: JobCounts,
    store: JobStore,
    files: JobFiles,
    settings: Settings,
    catalog: ModelCatalog,
    watermark: QueueWatermark,
) -> MetricsResponse:
    """Request, generation, queue, storage and per-model figures from the job history and the disk."""
    return await collect(jobs, store, files, settings, watermark, catalog.ids(), clock.now())
