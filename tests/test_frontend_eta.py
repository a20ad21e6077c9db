"""Estimates for big and two-stage jobs (``generation.eta``): a job's workload scales with what drives its time, its
progress events place it within that work, and its remaining time moves from the estimate to its own pace. Pure
logic on an injected clock; the real stack's numbers are printed by tests/test_integration_contract_examples.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.fakes import make_card, svd_card
from visualizr import names
from visualizr.frontend.catalog import ModelCatalog
from visualizr.frontend.generation.reporting.eta import (
    PACE_TRUSTED_AFTER,
    Estimator,
    Pace,
    Workload,
    remaining_seconds,
    workload,
)
from visualizr.frontend.generation.reporting.standing import Standing
from visualizr.frontend.jobs.record import KIND_CHARACTER, KIND_IMAGE, KIND_TEXT, GenerationParameters
from visualizr.model_card import write_model_card

# width, height, num_frames, fps, num_inference_steps, guidance_scale, seed
SMALL = GenerationParameters(64, 64, 4, 4, 2, 7.5, 1)
BIG = GenerationParameters(1024, 1024, 72, 24, 25, 7.5, 1)  # the contract's from-image example: 3 s at 24 fps


def events(steps: int, keyframe_steps: int = 0) -> list[tuple[str, int, int]]:
    """A run's progress events, in order, steps counted across its stages: with a keyframe stage the prompt's
    encoding and the keyframe's steps, then the image's encoding; else the prompt's encoding; then each denoising
    step, decoding, done."""
    total = keyframe_steps + steps
    run = [(names.PHASE_TEXT_ENCODING, 0, total)]
    if keyframe_steps:
        run += [(names.PHASE_KEYFRAME, k, total) for k in range(1, keyframe_steps + 1)]
        run.append((names.PHASE_IMAGE_ENCODING, keyframe_steps, total))
    run += [(names.PHASE_FRAME_GENERATION, s, total) for s in range(keyframe_steps + 1, total + 1)]
    return [*run, (names.PHASE_DECODING, total, total), (names.PHASE_DONE, total, total)]


def walk(work: Workload, run: list[tuple[str, int, int]]) -> list[tuple[float, float]]:
    """(done, next) after each event of ``run``, as a Pace follows them."""
    pace, positions = Pace(), []
    for event in run:
        pace.reached(work, *event, now=0.0)
        positions.append((pace.done, pace.next_done))
    return positions


def test_the_workload_scales_with_size_frames_steps_and_guidance() -> None:
    base = workload(SMALL)
    double_side = workload(GenerationParameters(128, 128, 4, 4, 2, 7.5, 1))
    assert (double_side.denoise, double_side.decode) == (4 * base.denoise, 4 * base.decode)
    more_steps = workload(GenerationParameters(64, 64, 4, 4, 8, 7.5, 1))
    assert (more_steps.denoise, more_steps.decode) == (4 * base.denoise, base.decode)  # decoding: frames x pixels
    unguided = workload(GenerationParameters(64, 64, 4, 4, 2, 1.0, 1))
    assert unguided.denoise == base.denoise / 2  # guidance doubles the UNet's batch
    assert base.keyframe == 0 and workload(SMALL, keyframe=True).keyframe > 0
    longer = workload(GenerationParameters(64, 64, 40, 4, 2, 7.5, 1), keyframe=True)
    assert longer.keyframe == workload(SMALL, keyframe=True).keyframe  # one frame, whatever the clip's length
    # the contract's 1024x1024, 72 frames, 25 steps is thousands of times the smallest test job
    assert workload(BIG).total / base.total > 5000


@pytest.mark.parametrize("keyframe", [False, True])
def test_progress_events_place_a_run_within_its_work_in_order(keyframe: bool) -> None:
    work = workload(SMALL, keyframe=keyframe)
    positions = walk(work, events(SMALL.num_inference_steps, work.keyframe_steps))
    done = [d for d, _ in positions]
    assert done == sorted(done) and done[0] == 0 and done[-1] == work.total - work.encode
    # each event's "next" is where the following event will be (the API's encoding, after decoding, ends the job)
    assert [n for _, n in positions] == pytest.approx([*done[1:-1], work.total, work.total])
    if keyframe:  # the keyframe's steps are its own share, however many steps the video has after it
        assert done[1:4] == pytest.approx([work.keyframe / 2, work.keyframe, work.keyframe])


def test_a_long_clip_s_segments_are_steps_of_its_video() -> None:
    work = workload(BIG, keyframe=True)
    segments = 6  # 72 frames in windows of 14 overlapping by 2: the video's steps are 6 x 25
    video_steps = segments * BIG.num_inference_steps
    run = events(video_steps, work.keyframe_steps)
    total = work.keyframe_steps + video_steps
    halfway = run.index((names.PHASE_FRAME_GENERATION, work.keyframe_steps + video_steps // 2, total))
    assert walk(work, run)[halfway][0] == pytest.approx(work.keyframe + work.denoise / 2)


def run_at(work: Workload, steps: int, seconds_per_unit: float, until: int) -> tuple[Pace, float]:
    """A run whose events come at ``seconds_per_unit``, up to its ``until``-th event: (its pace, the clock)."""
    pace, now = Pace(), 100.0
    for event in events(steps)[:until]:
        probe = Pace(video_from=pace.video_from)
        probe.reached(work, *event, now=0.0)
        now += (probe.done - pace.done) * seconds_per_unit
        pace.reached(work, *event, now=now)
    return pace, now


def test_remaining_time_moves_from_the_estimate_to_the_job_s_own_pace() -> None:
    work = workload(GenerationParameters(64, 64, 4, 4, 20, 7.5, 1))
    estimate = 10.0
    assert remaining_seconds(work, Pace(), estimate, now=5.0) == estimate  # no event yet (loading the model)
    slow = 2 * estimate / work.total  # the job runs at half the estimate's speed
    pace, now = run_at(work, 20, slow, until=2)  # the conditioning and the first step: too little measured
    left = work.total - pace.done
    early = remaining_seconds(work, pace, estimate, now)
    assert estimate * left / work.total < early < slow * left
    pace, now = run_at(work, 20, slow, until=12)  # 11 steps of 20: far past PACE_TRUSTED_AFTER
    assert (pace.done - pace.first_done) / work.total > PACE_TRUSTED_AFTER
    assert remaining_seconds(work, pace, estimate, now) == pytest.approx(slow * (work.total - pace.done))


def test_between_events_the_time_left_counts_down_to_the_next_event_s_share() -> None:
    work = workload(BIG)
    rate = 1e-6
    pace, now = run_at(work, BIG.num_inference_steps, rate, until=1 + BIG.num_inference_steps)  # decoding now
    at_last_step = remaining_seconds(work, pace, rate * work.total, now)
    assert at_last_step == pytest.approx(rate * (work.decode + work.encode))
    halfway = remaining_seconds(work, pace, rate * work.total, now + rate * work.decode / 2)
    assert halfway == pytest.approx(rate * (work.decode / 2 + work.encode))
    # a decoder running late waits at the encoding's share instead of reaching zero
    late = remaining_seconds(work, pace, rate * work.total, now + 10 * rate * work.decode)
    assert late == pytest.approx(rate * work.encode) and late > 0


def test_a_model_s_history_of_small_jobs_scales_to_a_big_one() -> None:
    estimator = Estimator()
    overhead, rate = 1.5, 2e-5
    for side, frames, steps in ((64, 4, 2), (128, 16, 20), (64, 8, 4), (128, 8, 10)):
        units = workload(GenerationParameters(side, side, frames, 8, steps, 7.5, 1)).total
        estimator.observe("m", overhead + rate * units, units)
    big = workload(BIG).total
    assert estimator.estimate("m", big) == pytest.approx(overhead + rate * big)


def test_a_prompt_only_job_on_an_image_model_makes_a_keyframe(tmp_path: Path) -> None:
    for card in (make_card(), svd_card()):
        (tmp_path / card.id).mkdir()
        write_model_card(card, tmp_path / card.id / "model_card.json")
    unused = None  # the store, the local queue, the gate, the disk and the files: a workload needs only the cards
    standing = Standing(unused, unused, Estimator(), ModelCatalog(tmp_path), unused, unused, unused, 1, lambda: 0.0)
    svd = "stable-video-diffusion"
    assert standing.workload(svd, KIND_TEXT, SMALL).keyframe > 0
    assert standing.workload(svd, KIND_CHARACTER, SMALL).keyframe > 0
    assert standing.workload(svd, KIND_IMAGE, SMALL).keyframe == 0
    assert standing.workload("animatediff", KIND_TEXT, SMALL).keyframe == 0
    assert standing.workload("gone", KIND_TEXT, SMALL) == workload(SMALL)  # no card: no keyframe assumed
