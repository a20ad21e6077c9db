"""``GET /metrics``: Prometheus text exposition (format 0.0.4) of the app's own prometheus_client registry.

Each replica's own, with a ``replica`` label (``settings.replica_id``, added by ``ReplicaLabel``): in memory since
the process started, as prometheus_client metrics:

* ``visualizr_http_requests_total{method,route,status}`` and ``visualizr_http_request_duration_seconds
  {method,route}`` (histogram): every HTTP request that matched a route, from ``RequestMetricsMiddleware``
  (``route`` is the path template, e.g. ``/api/v1/generate/status/{request_id:str}``, so ids never explode the
  label set);
* ``visualizr_job_queue_wait_seconds{model}``, ``visualizr_job_end_to_end_seconds{model}``,
  ``visualizr_job_phase_duration_seconds{model,phase}`` (histograms), ``visualizr_websocket_connections`` (gauge)
  and ``visualizr_websocket_connections_total``: ``JobTelemetry``;

and read from their owners at scrape time by ``ServiceCollector``: ``visualizr_workers_alive`` (gauge) and
``visualizr_worker_restarts_total``: the generation service; ``visualizr_inference_server_up{url}``,
``visualizr_inference_server_outages_total{url}``, ``visualizr_inference_server_jobs_in_flight{url}``: the
endpoint pool; ``visualizr_triton_restarts_total``: the supervisor's status file; the heal counters.

Shared by every replica, without the label, from the job table (``JobTableCollector``, so they survive restarts
and agree across replicas): ``visualizr_queue_length`` and ``visualizr_jobs_processing`` (gauges),
``visualizr_jobs_total{model,outcome}`` (counter) and ``visualizr_job_duration_seconds{model,outcome}`` (histogram;
outcome completed | failed | cancelled; jobs that never started have no duration), and
``visualizr_job_failures_total{model,error_code}``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

from litestar import Response, get
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from visualizr.frontend.errors import DatabaseUnavailableError
from visualizr.frontend.infra.endpoints import EndpointPool
from visualizr.frontend.jobs import stats as job_stats
from visualizr.frontend.jobs.database import Connection
from visualizr.frontend.jobs.store import JobStore
from visualizr.frontend.jobs.telemetry import JOB_BUCKETS
from visualizr.frontend.system.sources import HealingCounts, JobCounts
from visualizr.supervisor_status import read_supervisor_status

logger = logging.getLogger("visualizr.frontend")

# What generate_latest writes (prometheus_client's CONTENT_TYPE_LATEST announces the 1.0.0 text format).
CONTENT_TYPE: Final = CONTENT_TYPE_PLAIN_0_0_4
# Upper bounds of the HTTP latency buckets in seconds (+Inf is implicit): sub-millisecond to seconds.
REPLICA_LABEL: Final = "replica"
HTTP_BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def new_registry() -> CollectorRegistry:
    """A registry of the app's own (tests build many apps in one process, so never the global REGISTRY). Its
    counters and histograms expose no ``_created`` samples: prometheus_client turns them off process-wide only."""
    disable_created_metrics()
    return CollectorRegistry()


class HttpMetrics:
    """Request counts and latency histograms of the API."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "visualizr_http_requests_total",
            "HTTP requests by method, route and status",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "visualizr_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=HTTP_BUCKETS,
            registry=registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)


class RequestMetricsMiddleware:
    """ASGI middleware: times every HTTP request and records it in ``HttpMetrics``; ``after`` runs after each
    request (the queue watermark samples the queue length there)."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics, after: Callable[[], Any] | None = None) -> None:
        self.app = app
        self.metrics = metrics
        self.after = after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = str(scope.get("path_template") or "unmatched")
            self.metrics.observe(scope.get("method", "GET"), route, status, time.perf_counter() - started)
            if self.after is not None:
                self.after()


class ServiceCollector(Collector):
    """This replica's workers, its view of the inference servers, healing and the supervised Triton's restarts,
    as they are now."""

    def __init__(self, jobs: JobCounts, pool: EndpointPool, healing: HealingCounts, supervisor_status: Path) -> None:
        self._jobs = jobs
        self._pool = pool
        self._healing = healing
        self._supervisor_status = supervisor_status

    def collect(self) -> Iterator[Metric]:
        jobs = self._jobs
        yield GaugeMetricFamily("visualizr_workers_alive", "Generation worker tasks running", jobs.workers_alive)
        yield CounterMetricFamily(
            "visualizr_worker_restarts_total", "Generation workers restarted after ending", jobs.worker_restarts
        )
        up = GaugeMetricFamily(
            "visualizr_inference_server_up", "1 while the Triton endpoint is reachable and ready", labels=["url"]
        )
        outages = CounterMetricFamily(
            "visualizr_inference_server_outages_total", "Times the Triton endpoint went down", labels=["url"]
        )
        in_flight = GaugeMetricFamily(
            "visualizr_inference_server_jobs_in_flight", "Jobs running on the Triton endpoint", labels=["url"]
        )
        for endpoint in self._pool.endpoints:
            up.add_metric([endpoint.url], 1.0 if endpoint.up else 0.0)
            outages.add_metric([endpoint.url], endpoint.outages)
            in_flight.add_metric([endpoint.url], endpoint.in_flight)
        yield from (up, outages, in_flight)
        yield CounterMetricFamily(
            "visualizr_triton_restarts_total", "Restarts of the supervised Triton (make serve)", self._triton_restarts()
        )
        yield CounterMetricFamily(
            "visualizr_model_heals_total", "Triton models reloaded after their stub died", self._healing.healed
        )
        yield CounterMetricFamily(
            "visualizr_heal_escalations_total",
            "Models given up on after too many heals or a failed one (make serve restarts its Triton then)",
            self._healing.escalations,
        )

    def _triton_restarts(self) -> int:
        status = read_supervisor_status(self._supervisor_status)
        return status.restarts if status is not None and status.supervisor_alive() else 0


class JobTableCollector(Collector):
    """The shared queue, job outcomes, run times and failures from the job table (its queries wait in the scraping
    thread): the same from every replica."""

    def __init__(self, store: JobStore) -> None:
        self._store = store

    def collect(self) -> Iterator[Metric]:
        try:
            (queued, processing), outcomes, failed = self._store.run_blocking(_job_table)
        except DatabaseUnavailableError as exc:  # this replica's own series still go out; health says why
            logger.warning("metrics without the job table's series: %s", exc.message)
            return
        yield GaugeMetricFamily("visualizr_queue_length", "Generation jobs waiting, on every replica", queued)
        yield GaugeMetricFamily("visualizr_jobs_processing", "Generation jobs running, on every replica", processing)
        by_outcome = ["model", "outcome"]
        jobs = CounterMetricFamily(
            "visualizr_jobs_total", "Generation jobs that ended, by model and outcome", labels=by_outcome
        )
        durations = HistogramMetricFamily(
            "visualizr_job_duration_seconds",
            "Run time of generation jobs that started, by model and outcome",
            labels=by_outcome,
        )
        bounds = [*map(floatToGoString, JOB_BUCKETS), "+Inf"]
        for row in outcomes:
            cumulative = zip(bounds, [*row.buckets, row.timed], strict=True)
            jobs.add_metric([row.model, row.outcome], row.count)
            durations.add_metric([row.model, row.outcome], list(cumulative), row.duration_sum)
        failures = CounterMetricFamily(
            "visualizr_job_failures_total",
            "Failed generation jobs by model and error code",
            labels=["model", "error_code"],
        )
        for model, code, count in failed:
            failures.add_metric([model, code], count)
        yield from (jobs, durations, failures)


def _job_table(conn: Connection) -> tuple[tuple[int, int], list[job_stats.OutcomeStats], list[tuple[str, str, int]]]:
    """What ``JobTableCollector`` reads, in one transaction."""
    return job_stats.live_counts(conn), job_stats.outcome_stats(conn), job_stats.failure_stats(conn)


class ReplicaLabel(Collector):
    """The series of ``registry`` (this process's own) with a ``replica`` label added to every sample."""

    def __init__(self, registry: CollectorRegistry, replica: str) -> None:
        self._registry, self._replica = registry, replica

    def collect(self) -> Iterator[Metric]:
        for metric in self._registry.collect():
            labelled = Metric(metric.name, metric.documentation, metric.type, metric.unit)
            for sample in metric.samples:
                labels = {REPLICA_LABEL: self._replica, **sample.labels}
                labelled.add_sample(sample.name, labels, sample.value, sample.timestamp, sample.exemplar)
            yield labelled


@get("/metrics", tags=["system"], media_type=CONTENT_TYPE, include_in_schema=True)
async def prometheus_metrics(metrics_registry: CollectorRegistry) -> Response[bytes]:
    """Prometheus text exposition: HTTP requests, queue and worker gauges, inference servers, job outcomes and
    latencies (queue wait, end to end, per phase), WebSocket connections."""
    exposition = await asyncio.to_thread(generate_latest, metrics_registry)  # the job-table queries wait there
    return Response(exposition, headers={"content-type": CONTENT_TYPE})  # media_type= would add a second charset
