"""Estimates for big and two-stage jobs (``generation.eta``, ``generation.cost_model``): a job's cost features scale
with what drives its time, the cost model learns them from measured runs (and the slowdown of jobs run at once), its
progress events place a run within its work, and its remaining time moves from the estimate to its own pace. Pure
logic on an injected clock; the real stack's numbers: benchmarks/eta.py (run by tests/test_eta_quote.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tests.support.fakes import make_card, svd_card
from visualizr import names
from visualizr.frontend.catalog import ModelCatalog
from visualizr.frontend.generation.reporting.cost_model import (
    DECAY,
    DECODE,
    DENOISE,
    ENCODE,
    KEYFRAME,
    LOAD,
    ONE_PASS,
    OVERHEAD,
    CostModel,
    Passes,
    features,
    samples_of_run,
)
from visualizr.frontend.generation.reporting.eta import (
    PACE_TRUSTED_AFTER,
    Pace,
    Workload,
    remaining_seconds,
    workload,
)
from visualizr.frontend.generation.reporting.standing import Standing
from visualizr.frontend.jobs.record import (
    KIND_CHARACTER,
    KIND_IMAGE,
    KIND_TEXT,
    GenerationParameters,
)
from visualizr.model_card import write_model_card

# width, height, num_frames, fps, num_inference_steps, guidance_scale, seed
SMALL = GenerationParameters(64, 64, 4, 4, 2, 7.5, 1)
BIG = GenerationParameters(1024, 1024, 72, 24, 25, 7.5, 1)  # the contract's from-image example: 3 s at 24 fps


def work_of(parameters: GenerationParameters, *, keyframe: bool = False) -> Workload:
    """A job's workload by the prior (no history)."""
    return workload(CostModel(), "m", parameters, keyframe=keyframe)


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


def test_the_cost_features_scale_with_size_frames_steps_and_guidance() -> None:
    def work(part: str, parameters: GenerationParameters) -> float:
        return features(part, parameters)[1]

    for part in (DENOISE, DECODE, ENCODE):
        assert work(part, GenerationParameters(128, 128, 4, 4, 2, 7.5, 1)) == 4 * work(part, SMALL)
    more_steps = GenerationParameters(64, 64, 4, 4, 8, 7.5, 1)
    assert (work(DENOISE, more_steps), work(DECODE, more_steps)) == (4 * work(DENOISE, SMALL), work(DECODE, SMALL))
    assert features(DENOISE, more_steps)[0] == 4 * features(DENOISE, SMALL)[0]  # a step's fixed cost
    unguided = GenerationParameters(64, 64, 4, 4, 2, 1.0, 1)
    assert work(DENOISE, unguided) == work(DENOISE, SMALL) / 2  # guidance doubles the UNet's batch
    longer = GenerationParameters(64, 64, 40, 4, 2, 7.5, 1)
    assert work(KEYFRAME, longer) == work(KEYFRAME, SMALL)  # one frame, whatever the clip's length
    assert features(LOAD, BIG) == features(OVERHEAD, SMALL) == (1.0, 0.0)
    assert work_of(SMALL).keyframe == 0 and work_of(SMALL, keyframe=True).keyframe > 0
    # the contract's 1024x1024, 72 frames, 25 steps is thousands of times the smallest test job's denoising
    assert work(DENOISE, BIG) / work(DENOISE, SMALL) > 5000


def test_a_clip_made_of_segments_costs_whole_segments_of_steps_and_decodes() -> None:
    """SVD's 16 and 24 frames are both two segments of 14 (overlap 2): the same UNet work, the same decode timed
    (the last segment's); the video encoding still has the clip's frames. One segment: as a one-pass model."""
    costs = CostModel(segmenting={"svd": (14, 2)})
    assert costs.passes("svd", 14) == ONE_PASS == costs.passes("animatediff", 48)
    assert costs.passes("svd", 16) == costs.passes("svd", 24) == Passes(2, 14) and costs.passes("svd", 27).segments == 3
    sixteen = GenerationParameters(64, 64, 16, 4, 8, 7.5, 1)
    twenty_four = GenerationParameters(64, 64, 24, 4, 8, 7.5, 1)
    for part in (DENOISE, DECODE):
        assert features(part, sixteen, costs.passes("svd", 16)) == features(part, twenty_four, Passes(2, 14))
    assert features(DENOISE, sixteen, Passes(2, 14)) == (16.0, 16.0 * 2 * 14 * 64)  # 2 x 8 steps of 14 frames
    assert features(ENCODE, twenty_four, Passes(2, 14)) == features(ENCODE, twenty_four)
    one = GenerationParameters(64, 64, 14, 4, 8, 7.5, 1)
    assert costs.part_seconds("svd", DENOISE, one) == CostModel().part_seconds("svd", DENOISE, one)


@pytest.mark.parametrize("keyframe", [False, True])
def test_progress_events_place_a_run_within_its_work_in_order(keyframe: bool) -> None:
    work = work_of(SMALL, keyframe=keyframe)
    positions = walk(work, events(SMALL.num_inference_steps, work.keyframe_steps))
    done = [d for d, _ in positions]
    assert done == sorted(done) and done[0] == (0 if keyframe else work.conditioning)
    assert done[-1] == work.total - work.encode
    # each event's "next" is where the following event will be (the API's encoding, after decoding, ends the job)
    assert [n for _, n in positions] == pytest.approx([*done[1:-1], work.total, work.total])
    if keyframe:  # the keyframe's steps are its own share, however many steps the video has after it
        assert done[1:4] == pytest.approx([work.keyframe / 2, work.keyframe, work.keyframe + work.conditioning])


def test_a_long_clip_s_segments_are_steps_of_its_video() -> None:
    work = work_of(BIG, keyframe=True)
    segments = 6  # 72 frames in windows of 14 overlapping by 2: the video's steps are 6 x 25
    video_steps = segments * BIG.num_inference_steps
    run = events(video_steps, work.keyframe_steps)
    total = work.keyframe_steps + video_steps
    halfway = run.index((names.PHASE_FRAME_GENERATION, work.keyframe_steps + video_steps // 2, total))
    assert walk(work, run)[halfway][0] == pytest.approx(work.keyframe + work.conditioning + work.denoise / 2)


def segmented_events(segments: int, steps: int) -> list[tuple[str, int, int]]:
    """A run of a clip made of segments: its conditioning, then each segment's steps and decoding, then done."""
    total = segments * steps
    run = [(names.PHASE_IMAGE_ENCODING, 0, total)]
    for first in range(0, total, steps):
        run += [(names.PHASE_FRAME_GENERATION, s, total) for s in range(first + 1, first + steps + 1)]
        run.append((names.PHASE_DECODING, first + steps, total))
    return [*run, (names.PHASE_DONE, total, total)]


def test_a_clip_made_of_segments_decodes_each_one_after_its_steps() -> None:
    work = dataclasses.replace(work_of(SMALL), segments=2)
    run = segmented_events(2, 4)
    positions = walk(work, run)
    done = [d for d, _ in positions]
    assert done == sorted(done) and done[-1] == pytest.approx(work.total - work.encode)
    assert [n for _, n in positions] == pytest.approx([*done[1:-1], work.total, work.total])
    middle = run.index((names.PHASE_DECODING, 4, 8))  # the first segment's decoding: half the steps, half the decode
    assert done[middle] == pytest.approx(work.conditioning + work.denoise / 2 + work.decode / 2)
    assert work.split(done[middle]) == pytest.approx((work.conditioning + work.denoise / 2, work.decode / 2))
    # its own pace measured over the first segment (steps 2x slower, the decoding as estimated): what is left is
    # the second segment's steps at that pace, its decoding and the encoding at the estimate's
    estimate = 10.0
    rate = estimate / work.total
    pace, now = Pace(), 0.0
    for phase, step, total in run[: middle + 1]:
        probe = Pace(video_from=pace.video_from)
        probe.reached(work, phase, step, total, now=0.0)
        now += (probe.done - pace.done) * rate * (1.0 if phase == names.PHASE_DECODING else 2.0)
        pace.reached(work, phase, step, total, now=now)
    own = (now - pace.first_at) / (pace.done - pace.first_done)
    expected = own * work.denoise / 2 + rate * (work.decode / 2 + work.encode)
    assert remaining_seconds(work, pace, estimate, now) == pytest.approx(expected)


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
    work = work_of(GenerationParameters(64, 64, 4, 4, 20, 7.5, 1))
    estimate = 10.0
    assert remaining_seconds(work, Pace(), estimate, now=5.0) == estimate  # no event yet (loading the model)
    slow = 2 * estimate / work.total  # the job runs at half the estimate's speed
    pace, now = run_at(work, 20, slow, until=2)  # the conditioning and the first step: too little measured
    left = work.total - pace.done
    early = remaining_seconds(work, pace, estimate, now)
    assert estimate * left / work.total < early < slow * left
    pace, now = run_at(work, 20, slow, until=12)  # 11 steps of 20: far past PACE_TRUSTED_AFTER
    assert (pace.done - pace.first_done) / work.total > PACE_TRUSTED_AFTER
    after_steps = work.decode + work.encode  # decoding and encoding: the estimate's rate
    stepped_left = work.total - after_steps - pace.done
    expected = slow * stepped_left + estimate / work.total * after_steps
    assert remaining_seconds(work, pace, estimate, now) == pytest.approx(expected)


def test_a_keyframe_stage_s_pace_is_not_the_video_s() -> None:
    work = work_of(GenerationParameters(64, 64, 4, 4, 20, 7.5, 1), keyframe=True)
    estimate, pace, now = 10.0, Pace(), 0.0
    rate = estimate / work.total
    for phase, step, total in events(20, work.keyframe_steps)[: 2 + work.keyframe_steps + 3]:
        probe = Pace(video_from=pace.video_from, first_at=pace.first_at, done=pace.done)
        probe.reached(work, phase, step, total, now=now)
        now += (probe.done - pace.done) * rate * (0.2 if phase == names.PHASE_KEYFRAME else 1.0)  # keyframe: 5x
        pace.reached(work, phase, step, total, now=now)
    assert pace.first_done == pytest.approx(work.keyframe + work.conditioning)  # the video's steps only
    assert remaining_seconds(work, pace, estimate, now) == pytest.approx(rate * (work.total - pace.done))


def test_between_events_the_time_left_counts_down_to_the_next_event_s_share() -> None:
    work = work_of(BIG)
    rate = 1e-6
    pace, now = run_at(work, BIG.num_inference_steps, rate, until=1 + BIG.num_inference_steps)  # decoding now
    at_last_step = remaining_seconds(work, pace, rate * work.total, now)
    assert at_last_step == pytest.approx(rate * (work.decode + work.encode))
    halfway = remaining_seconds(work, pace, rate * work.total, now + rate * work.decode / 2)
    assert halfway == pytest.approx(rate * (work.decode / 2 + work.encode))
    # a decoder running late waits at the encoding's share instead of reaching zero
    late = remaining_seconds(work, pace, rate * work.total, now + 10 * rate * work.decode)
    assert late == pytest.approx(rate * work.encode) and late > 0


def run_parts(truth: dict[str, tuple[float, float]], parameters: GenerationParameters) -> dict[str, float]:
    """A run's measured parts, as ``truth`` (part -> (a, b)) makes them."""
    return {part: sum(x * c for x, c in zip(features(part, parameters), truth[part], strict=True)) for part in truth}


SIZES = [GenerationParameters(side, side, frames, 8, steps, 7.5, 1)
         for side, frames, steps in ((64, 4, 2), (128, 16, 20), (64, 8, 4), (128, 8, 10), (96, 12, 6))]  # fmt: skip
TRUTH = {"conditioning": (0.3, 0.0), DENOISE: (0.02, 3e-6), DECODE: (0.05, 8e-5), ENCODE: (0.01, 1e-5)}


def test_the_cost_model_learns_a_model_s_parts_from_small_jobs_and_scales_to_a_big_one() -> None:
    costs = CostModel(load_seconds={"m": 12.0})
    before = costs.solo_seconds("m", BIG, keyframe=False, cold=True)
    assert before > 12.0  # a sane prior: the card's load time and some seconds per unit of work
    for _ in range(6):
        for parameters in SIZES:
            parts = run_parts(TRUTH, parameters)
            costs.observe(samples_of_run("m", parameters, parts, sum(parts.values()) + 0.5, beside={}))
    expected = sum(run_parts(TRUTH, BIG).values()) + 0.5
    assert costs.solo_seconds("m", BIG, keyframe=False, cold=False) == pytest.approx(expected, rel=0.02)
    assert costs.part_seconds("m", LOAD, BIG) == pytest.approx(12.0)  # no load measured: the card's
    prior = CostModel().part_seconds("other", DENOISE, BIG)  # a model never run: its prior at the machine's speed
    assert costs.part_seconds("other", DENOISE, BIG) == pytest.approx(prior * costs.speed)


def test_jobs_run_at_once_teach_the_slowdown_and_the_solo_costs_stay() -> None:
    costs, contention = CostModel(), 0.7
    for round_ in range(40):
        parameters = SIZES[round_ % len(SIZES)]
        beside = {} if round_ % 2 else {"m": 2.0}
        slow = 1 + contention * sum(beside.values())
        parts = {part: seconds * slow for part, seconds in run_parts(TRUTH, parameters).items()}
        costs.observe(samples_of_run("m", parameters, parts, sum(parts.values()), beside))
    assert costs.contention == pytest.approx(contention, rel=0.1)
    solo = sum(run_parts(TRUTH, BIG).values())
    assert costs.solo_seconds("m", BIG, keyframe=False, cold=False) == pytest.approx(solo, rel=0.05)


def test_a_prompt_only_job_on_an_image_model_makes_a_keyframe(tmp_path: Path) -> None:
    for card in (make_card(), svd_card()):
        (tmp_path / card.id).mkdir()
        write_model_card(card, tmp_path / card.id / "model_card.json")
    unused = None  # the store, the local queue, the gate, the disk and the files: a workload needs only the cards
    standing = Standing(unused, unused, CostModel(), ModelCatalog(tmp_path), unused, unused, unused, 1, lambda: 0.0)
    svd = "stable-video-diffusion"
    assert standing.workload(svd, KIND_TEXT, SMALL).keyframe > 0
    assert standing.workload(svd, KIND_CHARACTER, SMALL).keyframe > 0
    assert standing.workload(svd, KIND_IMAGE, SMALL).keyframe == 0
    assert standing.workload("animatediff", KIND_TEXT, SMALL).keyframe == 0
    no_card = workload(CostModel(), "gone", SMALL)  # no keyframe assumed
    assert standing.workload("gone", KIND_TEXT, SMALL) == no_card


def test_a_busier_machine_is_learnt_in_a_few_runs_for_every_model() -> None:
    costs = CostModel()
    for _ in range(6):
        for model in ("m", "n"):
            for parameters in SIZES:
                parts = run_parts(TRUTH, parameters)
                costs.observe(samples_of_run(model, parameters, parts, sum(parts.values()), beside={}))
    solo = sum(run_parts(TRUTH, BIG).values())
    assert costs.solo_seconds("n", BIG, keyframe=False, cold=False) == pytest.approx(solo, rel=0.05)
    for parameters in SIZES[:4]:  # something else loads the machine: runs of "m" take twice as long
        parts = {part: 2 * seconds for part, seconds in run_parts(TRUTH, parameters).items()}
        costs.observe(samples_of_run("m", parameters, parts, sum(parts.values()), beside={}))
    busy = costs.solo_seconds("n", BIG, keyframe=False, cold=False)  # "n" has not run since
    assert busy == pytest.approx(2 * solo, rel=0.3) and busy > 1.5 * solo


def test_a_run_with_company_for_a_moment_moves_the_slowdown_little() -> None:
    costs = CostModel(contention=1.0)
    for parameters in SIZES * 3:
        parts = run_parts(TRUTH, parameters)
        costs.observe(samples_of_run("m", parameters, parts, sum(parts.values()), beside={}))
    before = costs.contention
    parts = {part: 1.1 * seconds for part, seconds in run_parts(TRUTH, SIZES[1]).items()}  # noise, 1 % beside one
    costs.observe(samples_of_run("m", SIZES[1], parts, sum(parts.values()), beside={"m": 0.01}))
    assert abs(costs.contention - before) < 0.01



def test_the_slowdown_is_learnt_per_model_beside_each_model() -> None:
    costs = CostModel()
    truth = {("svd", "svd"): 1.7, ("svd", "ad"): 0.5, ("ad", "svd"): 0.3, ("ad", "ad"): 0.6}  # measured SVD: 2.7x
    companies = [{}, {"svd": 1.0}, {"ad": 1.0}, {"svd": 0.5, "ad": 0.5}, {"svd": 2.0}]
    for round_ in range(100):  # both models, every size beside every company
        model = ("svd", "ad")[round_ % 2]
        parameters, beside = SIZES[(round_ // 10) % len(SIZES)], companies[(round_ // 2) % len(companies)]
        slow = 1 + sum(truth[model, other] * n for other, n in beside.items())
        parts = {part: seconds * slow for part, seconds in run_parts(TRUTH, parameters).items()}
        costs.observe(samples_of_run(model, parameters, parts, sum(parts.values()), beside))
    for (model, other), coefficient in truth.items():
        assert costs.slowdown(model, {other: 1.0}) == pytest.approx(1 + coefficient, rel=0.12), (model, other)
    assert costs.slowdown("svd", {"svd": 1.0}) > costs.slowdown("svd", {"ad": 1.0}) + 0.8  # not one rate for all
    assert costs.slowdown("svd", {"svd": 1.0, "ad": 1.0}) == pytest.approx(1 + 1.7 + 0.5, rel=0.12)
    assert costs.slowdown("svd", {}) == 1.0
    assert costs.slowdown("never-run", {"svd": 1.0}) == pytest.approx(1 + costs.contention)  # the server-wide
    solo = sum(run_parts(TRUTH, BIG).values())
    for model in ("svd", "ad"):
        assert costs.solo_seconds(model, BIG, keyframe=False, cold=False) == pytest.approx(solo, rel=0.1), model


def test_each_part_s_slowdown_is_learnt_beside_the_company_it_had() -> None:
    costs = CostModel()
    for parameters in SIZES * 2:  # alone
        parts = run_parts(TRUTH, parameters)
        costs.observe(samples_of_run("m", parameters, parts, sum(parts.values()), beside={}))
    for parameters in SIZES * 4:  # only the decoding beside another job of m, 3 times as slow meanwhile
        parts = run_parts(TRUTH, parameters)
        parts[DECODE] *= 3.0
        run_beside = {"m": parts[DECODE] / sum(parts.values())}  # the run's, on average over it
        part_beside = {part: {} for part in parts} | {DECODE: {"m": 1.0}}
        costs.observe(samples_of_run("m", parameters, parts, sum(parts.values()), run_beside, part_beside))
    assert costs.slowdown("m", {"m": 1.0}) == pytest.approx(3.0, rel=0.1)
    solo = sum(run_parts(TRUTH, BIG).values())
    assert costs.solo_seconds("m", BIG, keyframe=False, cold=False) == pytest.approx(solo, rel=0.05)


def cold_run(costs: CostModel, model: str, load: float, warm_up: float) -> None:
    """A run that loaded its model: ``load`` seconds, then its parts ``warm_up`` times their solo seconds."""
    parts = {part: warm_up * seconds for part, seconds in run_parts(TRUTH, SIZES[0]).items()} | {LOAD: load}
    costs.observe(samples_of_run(model, SIZES[0], parts, sum(parts.values()), beside={}))


def test_a_cold_run_teaches_the_measured_load_and_not_its_warm_up() -> None:
    costs = CostModel(load_seconds={"m": 5.0, "n": 10.0})
    assert costs.part_seconds("n", LOAD, BIG) == pytest.approx(10.0)  # nothing loaded yet: the cards'
    cold_run(costs, "m", load=38.0, warm_up=5.0)  # the first run: its parts not learnt, its warm-up unknown
    assert costs.part_seconds("m", LOAD, BIG) == pytest.approx(38.0)  # what was measured, not the card's 5 s
    assert costs.part_seconds("n", LOAD, BIG) == pytest.approx(10.0 * 38.0 / 5.0)  # this machine loads slower
    for parameters in SIZES * 2:
        parts = run_parts(TRUTH, parameters)
        costs.observe(samples_of_run("m", parameters, parts, sum(parts.values()), beside={}))
    solo = sum(run_parts(TRUTH, BIG).values())
    assert costs.solo_seconds("m", BIG, keyframe=False, cold=False) == pytest.approx(solo, rel=0.02)  # no warm-up
    cold_run(costs, "m", load=30.0, warm_up=5.0)
    assert costs.solo_seconds("m", BIG, keyframe=False, cold=False) == pytest.approx(solo, rel=0.02)
    latest = 30.0 + 4.0 * sum(run_parts(TRUTH, SIZES[0]).values())  # parts learnt: the warm-up counts as the load's
    assert latest > 31.0  # SIZES[0]'s parts: about 0.4 s alone
    expected = (DECAY * 38.0 + latest) / (DECAY + 1)  # the recent loads first
    assert costs.part_seconds("m", LOAD, BIG) == pytest.approx(expected, rel=0.01)
