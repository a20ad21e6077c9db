"""Job telemetry: the series it records and the phase durations derived from a run's progress events."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from visualizr.frontend.jobs.telemetry import JobTelemetry, PhaseTimer


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


def test_queue_wait_end_to_end_phases_and_websockets() -> None:
    registry = CollectorRegistry()
    telemetry = JobTelemetry(registry)
    telemetry.started("m", created_at=100.0, started_at=103.0)
    telemetry.completed("m", created_at=100.0, completed_at=110.0)
    telemetry.phase("m", "decoding", 0.02)
    telemetry.websocket_connected()
    telemetry.websocket_connected()
    telemetry.websocket_disconnected()
    value = registry.get_sample_value
    assert value("visualizr_job_queue_wait_seconds_sum", {"model": "m"}) == 3.0
    assert value("visualizr_job_queue_wait_seconds_bucket", {"model": "m", "le": "2.0"}) == 0
    assert value("visualizr_job_queue_wait_seconds_bucket", {"model": "m", "le": "3.0"}) == 1
    assert value("visualizr_job_end_to_end_seconds_sum", {"model": "m"}) == 10.0
    assert value("visualizr_job_phase_duration_seconds_bucket", {"model": "m", "phase": "decoding", "le": "0.025"}) == 1
    assert value("visualizr_job_phase_duration_seconds_bucket", {"model": "m", "phase": "decoding", "le": "0.01"}) == 0
    assert value("visualizr_websocket_connections") == 1
    assert value("visualizr_websocket_connections_total") == 2
