"""Custom Prometheus metrics of the pipeline model, exported on Triton's metrics port next to Triton's own.

Created once in ``initialize`` through the Python backend's metrics API (``pb_utils.MetricFamily``); the
adapter feeds it from the loop's progress events, so the loop itself stays free of Triton.
"""

from __future__ import annotations

import time
from typing import Any

from visualizr.names import CONDITIONING_PHASES, PHASE_FRAME_GENERATION
from visualizr.pipeline.progress import ProgressEvent

STEP_SECONDS = "visualizr_pipeline_step_duration_seconds"
GENERATION_SECONDS = "visualizr_pipeline_generation_duration_seconds"
GENERATIONS = "visualizr_pipeline_generations_total"
ACTIVE = "visualizr_pipeline_active_generations"

OUTCOMES = ("success", "cancelled", "invalid", "failed")
STEP_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]
GENERATION_BUCKETS = [0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0]


class PipelineMetrics:
    """Per-step latency, generation latency, generations by outcome and in-flight generations of one model."""

    def __init__(self, pb_utils: Any, model: str, model_family: str = "") -> None:
        family = pb_utils.MetricFamily
        labels = {"model": model, "family": model_family or model}
        self._families = [  # a Metric must not outlive its MetricFamily: keep both for the model's lifetime
            family(STEP_SECONDS, "Seconds per denoising step (one batched UNet call + scheduler step)",
                   family.HISTOGRAM),
            family(GENERATION_SECONDS, "Seconds from request start to frames, successful generations",
                   family.HISTOGRAM),
            family(GENERATIONS, "Generations finished, by outcome", family.COUNTER),
            family(ACTIVE, "Generations in flight", family.GAUGE),
        ]
        steps, generations, outcomes, active = self._families
        self.step_seconds = steps.Metric(labels=labels, buckets=STEP_BUCKETS)
        self.generation_seconds = generations.Metric(labels=labels, buckets=GENERATION_BUCKETS)
        self.outcomes = {o: outcomes.Metric(labels={**labels, "outcome": o}) for o in OUTCOMES}
        self.active = active.Metric(labels=labels)

    def track(self) -> GenerationTimer:
        return GenerationTimer(self)


class GenerationTimer:
    """Times one generation from its progress events; ``finish(outcome)`` records it exactly once."""

    def __init__(self, metrics: PipelineMetrics) -> None:
        self._metrics = metrics
        self._start = self._last = time.perf_counter()
        self._finished = False
        metrics.active.increment(1)

    def on_event(self, event: ProgressEvent) -> None:
        now = time.perf_counter()
        if event.phase == PHASE_FRAME_GENERATION:
            self._metrics.step_seconds.observe(now - self._last)
        if event.phase == PHASE_FRAME_GENERATION or event.phase in CONDITIONING_PHASES:
            self._last = now

    def finish(self, outcome: str) -> None:
        if self._finished:
            return
        self._finished = True
        self._metrics.active.increment(-1)
        self._metrics.outcomes[outcome].increment(1)
        if outcome == "success":
            self._metrics.generation_seconds.observe(time.perf_counter() - self._start)
