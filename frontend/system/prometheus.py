"""``GET /metrics``: Prometheus text exposition (format 0.0.4), rendered here (prometheus_client is not a
dependency).

Families:

* ``visualizr_http_requests_total{method,route,status}`` and ``visualizr_http_request_duration_seconds
  {method,route}`` (histogram): every HTTP request that matched a route, from ``RequestMetricsMiddleware``
  (``route`` is the path template, e.g. ``/api/v1/generate/status/{request_id:str}``, so ids never explode the
  label set); in memory since the process started.
* ``visualizr_queue_length`` (jobs waiting for a worker), ``visualizr_jobs_processing`` (gauges).
* ``visualizr_jobs_total{model,outcome}`` (counter) and ``visualizr_job_duration_seconds{model,outcome}``
  (histogram; outcome completed | failed | cancelled; jobs that never started have no duration), and
  ``visualizr_job_failures_total{model,error_code}``: from the job table at scrape time, so they survive restarts.
* ``visualizr_job_queue_wait_seconds{model}`` (submit -> first start), ``visualizr_job_end_to_end_seconds{model}``
  (submit -> completed), ``visualizr_job_phase_duration_seconds{model,phase}`` (histograms),
  ``visualizr_websocket_connections`` (gauge) and ``visualizr_websocket_connections_total``: ``JobTelemetry``,
  in memory since the process started.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from visualizr.frontend.jobs.stats import DURATION_BUCKETS, OutcomeStats
from visualizr.frontend.jobs.telemetry import HTTP_BUCKETS, Histogram, JobTelemetry

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
Labels = tuple[tuple[str, str], ...]


@dataclass
class Family:
    name: str
    type: str  # counter | gauge | histogram
    help: str
    samples: list[tuple[str, Labels, float]] = field(default_factory=list)  # (suffix, labels, value)

    def add(self, value: float, labels: Labels = (), suffix: str = "") -> None:
        self.samples.append((suffix, labels, value))

    def add_histogram(
        self, labels: Labels, bounds: Iterable[float], cumulative: Iterable[int], count: int, total: float
    ) -> None:
        for bound, n in zip(bounds, cumulative, strict=True):
            self.add(n, (*labels, ("le", _number(bound))), "_bucket")
        self.add(count, (*labels, ("le", "+Inf")), "_bucket")
        self.add(count, labels, "_count")
        self.add(total, labels, "_sum")


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer():
        return f"{float(value):.1f}"
    return repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def render(families: Iterable[Family]) -> str:
    lines: list[str] = []
    for family in families:
        lines.append(f"# HELP {family.name} {family.help}")
        lines.append(f"# TYPE {family.name} {family.type}")
        for suffix, labels, value in family.samples:
            label_text = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
            lines.append(
                f"{family.name}{suffix}{{{label_text}}} {_number(value)}"
                if labels
                else f"{family.name}{suffix} {_number(value)}"
            )
    return "\n".join(lines) + "\n"


class HttpMetrics:
    """Request counts and latency histograms of the API, in memory."""

    def __init__(self, buckets: tuple[float, ...] = HTTP_BUCKETS) -> None:
        self._counts: dict[tuple[str, str, str], int] = {}
        self._latency = Histogram(buckets)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, str(status))
        self._counts[key] = self._counts.get(key, 0) + 1
        self._latency.observe((("method", method), ("route", route)), seconds)

    def families(self) -> list[Family]:
        counts = Family("visualizr_http_requests_total", "counter", "HTTP requests by method, route and status")
        for (method, route, status), n in sorted(self._counts.items()):
            counts.add(n, (("method", method), ("route", route), ("status", status)))
        latency = histogram_family("visualizr_http_request_duration_seconds", "HTTP request latency", self._latency)
        return [counts, latency]


def histogram_family(name: str, help_text: str, histogram: Histogram) -> Family:
    family = Family(name, "histogram", help_text)
    for labels, cumulative, count, total in histogram.rows():
        family.add_histogram(labels, histogram.buckets, cumulative, count, total)
    return family


def telemetry_families(telemetry: JobTelemetry) -> list[Family]:
    return [
        histogram_family("visualizr_job_queue_wait_seconds", "Seconds from submit to a job's first start",
                         telemetry.queue_wait),
        histogram_family("visualizr_job_end_to_end_seconds", "Seconds from submit to completed, completed jobs",
                         telemetry.end_to_end),
        histogram_family(
            "visualizr_job_phase_duration_seconds",
            "Seconds per phase of a run: text_encoding or image_encoding, frame_generation (denoising), decoding, "
            "encoding (video)",
            telemetry.phases,
        ),
        gauge("visualizr_websocket_connections", "WebSocket connections open", telemetry.websocket_open),
        counter("visualizr_websocket_connections_total", "WebSocket connections opened", telemetry.websocket_opened),
    ]


def failure_family(rows: list[tuple[str, str, int]]) -> Family:
    family = Family("visualizr_job_failures_total", "counter", "Failed generation jobs by model and error code")
    for model, code, count in rows:
        family.add(count, (("model", model), ("error_code", code)))
    return family


def job_families(stats: list[OutcomeStats]) -> list[Family]:
    jobs = Family("visualizr_jobs_total", "counter", "Generation jobs that ended, by model and outcome")
    durations = Family(
        "visualizr_job_duration_seconds", "histogram", "Run time of generation jobs that started, by model and outcome"
    )
    for row in stats:
        labels = (("model", row.model), ("outcome", row.outcome))
        jobs.add(row.count, labels)
        durations.add_histogram(labels, DURATION_BUCKETS, row.buckets, row.timed, row.duration_sum)
    return [jobs, durations]


def gauge(name: str, help_text: str, value: float) -> Family:
    family = Family(name, "gauge", help_text)
    family.add(value)
    return family


def counter(name: str, help_text: str, value: float) -> Family:
    family = Family(name, "counter", help_text)
    family.add(value)
    return family


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
