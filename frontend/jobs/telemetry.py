"""Latency telemetry of jobs, in memory since the process started: prometheus_client series in the app's registry.

* queue wait (submit -> first start) and end to end (submit -> completed) per model, observed by the lifecycle;
* the duration of each phase of a run per model and phase (``text_encoding``, or ``image_encoding`` for a
  family conditioned on the image alone, ``keyframe``: a keyframe stage's steps, ``frame_generation``: the
  denoising loop, ``decoding``: the VAE, ``encoding``: MP4/JPEG/GIF in the API), observed by the runner from the
  pipeline's progress events;
* the signed relative error of each completed job's first estimate (its 202's ``estimated_time_seconds`` against
  submit -> completed, ``(estimate - actual) / actual``: negative when the job took longer), per model, observed by
  the lifecycle for the jobs submitted on this replica: the ETA's calibration;
* WebSocket connections open now and opened since start.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Final

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from visualizr.names import CONDITIONING_PHASES, PHASE_DECODING, PHASE_FRAME_GENERATION, PHASE_KEYFRAME

# Upper bounds in seconds (+Inf is implicit). Jobs: a fraction of a second (the demo on a GPU) to half an hour (real
# weights on a CPU); phases: one text encoding (ms) to a long denoising loop.
JOB_BUCKETS: Final = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 120.0, 300.0, 600.0,
                      1800.0)
STEP_PHASES: Final = (PHASE_KEYFRAME, PHASE_FRAME_GENERATION)  # reported once per step
ETA_ERROR_BUCKETS: Final = (-0.9, -0.5, -0.3, -0.2, -0.1, -0.05, 0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0)
PHASE_BUCKETS: Final = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class JobTelemetry(Collector):
    def __init__(self, registry: CollectorRegistry) -> None:
        self.queue_wait = Histogram(
            "visualizr_job_queue_wait_seconds",
            "Seconds from submit to a job's first start",
            ["model"],
            buckets=JOB_BUCKETS,
            registry=registry,
        )
        self.end_to_end = Histogram(
            "visualizr_job_end_to_end_seconds",
            "Seconds from submit to completed, completed jobs",
            ["model"],
            buckets=JOB_BUCKETS,
            registry=registry,
        )
        self.phases = Histogram(
            "visualizr_job_phase_duration_seconds",
            "Seconds per phase of a run: text_encoding or image_encoding, frame_generation (denoising), decoding, "
            "encoding (video); a clip made of segments observes each segment's denoising and decoding",
            ["model", "phase"],
            buckets=PHASE_BUCKETS,
            registry=registry,
        )
        self.eta_error = Histogram(
            "visualizr_eta_first_estimate_relative_error",
            "Signed relative error of a completed job's first estimate (the 202's estimated_time_seconds against "
            "submit to completed): (estimate - actual) / actual",
            ["model"],
            buckets=ETA_ERROR_BUCKETS,
            registry=registry,
        )
        self.websockets_open = 0
        self.websockets_opened = 0
        # A gauge `x` beside a counter `x_total`: prometheus_client's metric objects refuse the pair (OpenMetrics
        # would name both `x`), a collector yields it.
        registry.register(self)

    def collect(self) -> Iterator[Metric]:
        """The WebSocket series."""
        yield GaugeMetricFamily("visualizr_websocket_connections", "WebSocket connections open", self.websockets_open)
        yield CounterMetricFamily(
            "visualizr_websocket_connections_total", "WebSocket connections opened", self.websockets_opened
        )

    def started(self, model: str, created_at: float, started_at: float) -> None:
        self.queue_wait.labels(model).observe(max(0.0, started_at - created_at))

    def completed(self, model: str, created_at: float, completed_at: float) -> None:
        self.end_to_end.labels(model).observe(max(0.0, completed_at - created_at))

    def first_estimate(self, model: str, estimate: float, created_at: float, completed_at: float) -> None:
        actual = completed_at - created_at
        if actual > 0:
            self.eta_error.labels(model).observe((estimate - actual) / actual)

    def phase(self, model: str, phase: str, seconds: float) -> None:
        self.phases.labels(model, phase).observe(max(0.0, seconds))

    def websocket_connected(self) -> None:
        self.websockets_open += 1
        self.websockets_opened += 1

    def websocket_disconnected(self) -> None:
        self.websockets_open = max(0, self.websockets_open - 1)


class PhaseTimer:
    """Turns one run's progress events into phase durations. The pipeline reports a phase when it is done: its
    conditioning once (text or image encoding), each step of a run of steps (a keyframe's, the denoising loop's),
    then decoding; so a phase runs from the end of the one before to its event, a run of steps to its last step's
    event (text-to-video through a keyframe: text_encoding, keyframe, image_encoding, frame_generation, decoding)."""

    def __init__(self, sink: Callable[[str, float], None], clock: Callable[[], float] = time.monotonic) -> None:
        self._sink = sink
        self._clock = clock
        self._mark = clock()
        self._stepping: str | None = None  # the phase of the run of steps under way
        self._last_step = self._mark

    def on_event(self, phase: str) -> None:
        now = self._clock()
        if self._stepping is not None and phase != self._stepping:  # that run of steps ended at its last step
            self._sink(self._stepping, self._last_step - self._mark)
            self._mark, self._stepping = self._last_step, None
        if phase in STEP_PHASES:
            self._stepping, self._last_step = phase, now
        elif phase in CONDITIONING_PHASES or phase == PHASE_DECODING:
            self._sink(phase, now - self._mark)
            self._mark = now
