"""Job telemetry: histogram buckets and the phase durations derived from a run's progress events."""

from __future__ import annotations

from visualizr.frontend.jobs.telemetry import Histogram, JobTelemetry, PhaseTimer


def test_histogram_counts_into_the_first_bucket_that_holds_the_value() -> None:
    histogram = Histogram((0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 7.0):
        histogram.observe((("model", "m"),), value)
    [(labels, cumulative, count, total)] = list(histogram.rows())
    assert labels == (("model", "m"),) and cumulative == [2, 3] and count == 4 and total == 7.65


def test_phase_timer_splits_a_run_at_its_events() -> None:
    now = [10.0]
    seen: list[tuple[str, float]] = []
    timer = PhaseTimer(lambda phase, seconds: seen.append((phase, seconds)), clock=lambda: now[0])
    for at, phase in [(10.5, "text_encoding"), (11.5, "frame_generation"), (12.5, "frame_generation"),
                      (13.0, "decoding"), (13.0, "done")]:
        now[0] = at
        timer.on_event(phase)
    assert seen == [("text_encoding", 0.5), ("frame_generation", 2.0), ("decoding", 0.5)]


def test_an_image_conditioned_run_times_its_image_encoding() -> None:
    """Stable Video Diffusion reports image_encoding where AnimateDiff reports text_encoding: it is a phase of its
    own, not folded into the denoising."""
    now = [0.0]
    seen: list[tuple[str, float]] = []
    timer = PhaseTimer(lambda phase, seconds: seen.append((phase, seconds)), clock=lambda: now[0])
    for at, phase in [(0.25, "image_encoding"), (1.0, "frame_generation"), (2.0, "decoding")]:
        now[0] = at
        timer.on_event(phase)
    assert seen == [("image_encoding", 0.25), ("frame_generation", 0.75), ("decoding", 1.0)]


def test_queue_wait_end_to_end_and_websockets() -> None:
    telemetry = JobTelemetry()
    telemetry.started("m", created_at=100.0, started_at=103.0)
    telemetry.completed("m", created_at=100.0, completed_at=110.0)
    telemetry.websocket_connected()
    telemetry.websocket_connected()
    telemetry.websocket_disconnected()
    assert [row[3] for row in telemetry.queue_wait.rows()] == [3.0]
    assert [row[3] for row in telemetry.end_to_end.rows()] == [10.0]
    assert (telemetry.websocket_open, telemetry.websocket_opened) == (1, 2)
