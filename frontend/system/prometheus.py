"""``GET /metrics``: Prometheus text exposition (format 0.0.4), rendered here (prometheus_client is not a
dependency).

Families:

* ``visualizr_http_requests_total{method,route,status}`` and ``visualizr_http_request_duration_seconds
  {method,route}`` (histogram): every HTTP request that matched a route, from ``RequestMetricsMiddleware``
  (``route`` is the path template, e.g. ``/api/v1/generate/status/{request_id:str}``, so ids never explode the
  label set); in memory since the process started.
* ``visualizr_queue_length`` (jobs waiting for a worker), ``visualizr_jobs_processing`` (gauges).
* ``visualizr_jobs_total{model,outcome}`` (counter) and ``visualizr_job_duration_seconds{model,outcome}``
  (histogram; outcome completed | failed | cancelled; jobs that never started have no duration): from the
  job table at scrape time, so they survive restarts.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from visualizr.frontend.jobs.stats import DURATION_BUCKETS, OutcomeStats

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
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
        self.buckets = buckets
        self._counts: dict[tuple[str, str, str], int] = {}
        self._latency: dict[tuple[str, str], list[float]] = {}  # per bucket counts (non-cumulative) + [sum, count]

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, str(status))
        self._counts[key] = self._counts.get(key, 0) + 1
        row = self._latency.setdefault((method, route), [0.0] * (len(self.buckets) + 2))
        for i, bound in enumerate(self.buckets):
            if seconds <= bound:
                row[i] += 1
                break
        row[-2] += seconds
        row[-1] += 1

    def families(self) -> list[Family]:
        counts = Family("visualizr_http_requests_total", "counter", "HTTP requests by method, route and status")
        for (method, route, status), n in sorted(self._counts.items()):
            counts.add(n, (("method", method), ("route", route), ("status", status)))
        latency = Family("visualizr_http_request_duration_seconds", "histogram", "HTTP request latency")
        for (method, route), row in sorted(self._latency.items()):
            cumulative, running = [], 0
            for n in row[: len(self.buckets)]:
                running += int(n)
                cumulative.append(running)
            latency.add_histogram(
                (("method", method), ("route", route)), self.buckets, cumulative, int(row[-1]), row[-2]
            )
        return [counts, latency]


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
