"""Latency telemetry of jobs, in memory since the process started: what ``GET /metrics`` exposes as histograms.

* queue wait (submit -> first start) and end to end (submit -> completed) per model, observed by the lifecycle;
* the duration of each phase of a run per model and phase (``text_encoding``, or ``image_encoding`` for a
  family conditioned on the image alone, ``frame_generation``: the denoising loop, ``decoding``: the VAE,
  ``encoding``: MP4/JPEG/GIF in the API), observed by the runner from the pipeline's progress events;
* WebSocket connections open now and opened since start.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Final

from visualizr.names import CONDITIONING_PHASES, PHASE_DECODING, PHASE_FRAME_GENERATION

Labels = tuple[tuple[str, str], ...]

# Upper bounds in seconds (+Inf is implicit). HTTP: sub-millisecond to seconds; jobs: a fraction of a second (the
# demo on a GPU) to half an hour (real weights on a CPU); phases: one text encoding (ms) to a long denoising loop.
HTTP_BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
JOB_BUCKETS: Final = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 120.0, 300.0, 600.0,
                      1800.0)
PHASE_BUCKETS: Final = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class Histogram:
    """Prometheus-style histogram per label set: bucket counts, count and sum."""

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self._rows: dict[Labels, list[float]] = {}  # per-bucket counts (not cumulative), then +Inf, sum

    def observe(self, labels: Labels, value: float) -> None:
        row = self._rows.setdefault(labels, [0.0] * (len(self.buckets) + 2))
        index = next((i for i, bound in enumerate(self.buckets) if value <= bound), len(self.buckets))
        row[index] += 1
        row[-1] += value

    def rows(self) -> Iterator[tuple[Labels, list[int], int, float]]:
        """(labels, cumulative bucket counts, count, sum) per label set, sorted."""
        for labels, row in sorted(self._rows.items()):
            cumulative, running = [], 0
            for n in row[: len(self.buckets)]:
                running += int(n)
                cumulative.append(running)
            yield labels, cumulative, running + int(row[-2]), row[-1]


class JobTelemetry:
    def __init__(self) -> None:
        self.queue_wait = Histogram(JOB_BUCKETS)
        self.end_to_end = Histogram(JOB_BUCKETS)
        self.phases = Histogram(PHASE_BUCKETS)
        self.websocket_open = 0
        self.websocket_opened = 0

    def started(self, model: str, created_at: float, started_at: float) -> None:
        self.queue_wait.observe((("model", model),), max(0.0, started_at - created_at))

    def completed(self, model: str, created_at: float, completed_at: float) -> None:
        self.end_to_end.observe((("model", model),), max(0.0, completed_at - created_at))

    def phase(self, model: str, phase: str, seconds: float) -> None:
        self.phases.observe((("model", model), ("phase", phase)), max(0.0, seconds))

    def websocket_connected(self) -> None:
        self.websocket_open += 1
        self.websocket_opened += 1

    def websocket_disconnected(self) -> None:
        self.websocket_open = max(0, self.websocket_open - 1)

    def phase_timer(self, model: str) -> PhaseTimer:
        return PhaseTimer(lambda phase, seconds: self.phase(model, phase, seconds))


class PhaseTimer:
    """Turns one run's progress events into phase durations. The pipeline reports a phase when it is done: its
    conditioning once (text or image encoding), each denoising step, then decoding; so the conditioning runs from
    the start to its event, denoising from there to the last step's event, decoding from there to its event."""

    def __init__(self, sink: Callable[[str, float], None], clock: Callable[[], float] = time.monotonic) -> None:
        self._sink = sink
        self._clock = clock
        self._mark = clock()
        self._last_step: float | None = None

    def on_event(self, phase: str) -> None:
        now = self._clock()
        if phase in CONDITIONING_PHASES:
            self._sink(phase, now - self._mark)
            self._mark = now
        elif phase == PHASE_FRAME_GENERATION:
            self._last_step = now
        elif phase == PHASE_DECODING:
            if self._last_step is not None:
                self._sink(PHASE_FRAME_GENERATION, self._last_step - self._mark)
                self._mark = self._last_step
            self._sink(PHASE_DECODING, now - self._mark)
