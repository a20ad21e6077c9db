"""Stable Video Diffusion beyond one pass, on fake networks (pure logic): the segment plan, the stitching (no frame
repeated or dropped at a border, the overlap cross-faded), the loop over segments (each conditioned on the frame
where it begins, progress monotonic over the whole clip, cancellation in the middle of the second segment) and the
keyframe stage of a text request (its steps counted with the video's, its picture what SVD animates)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tests.support.pipeline_fakes import FakeSvdComponents, collect, make_svd_pipeline, make_svd_request, run
from visualizr import names
from visualizr.families.stable_video_diffusion.segments import ClipStitcher, SegmentPlan, segment_seed
from visualizr.families.stable_video_diffusion.vocabulary import (
    IMAGE_ENCODER,
    KEYFRAME_TEXT_ENCODER,
    KEYFRAME_UNET,
    KEYFRAME_VAE_DECODER,
)
from visualizr.pipeline import Cancelled, InvalidRequest
from visualizr.pipeline.request import MAX_SEED


# -- the plan --
@pytest.mark.parametrize(
    "num_frames, native, overlap, window, starts",
    [
        (14, 14, 2, 14, (0,)),  # fits: one pass, as before
        (5, 14, 2, 5, (0,)),  # shorter than the window: one pass of 5 frames
        (15, 14, 2, 14, (0, 12)),
        (24, 14, 2, 14, (0, 12)),  # the contract's text example
        (26, 14, 2, 14, (0, 12)),  # exactly two windows
        (27, 14, 2, 14, (0, 12, 24)),
        (72, 14, 2, 14, (0, 12, 24, 36, 48, 60)),  # the contract's from-image example: 3 s at 24 fps
        (120, 25, 3, 25, (0, 22, 44, 66, 88, 110)),  # img2vid-xt's window at the cards' maximum
        (100, 0, 2, 100, (0,)),  # no native window: any length in one pass
    ],
)
def test_plan_covers_the_clip_with_windows(num_frames, native, overlap, window, starts) -> None:
    plan = SegmentPlan.of(num_frames, native, overlap)
    assert (plan.window, plan.starts, plan.count) == (window, starts, len(starts))
    assert plan.starts[-1] + plan.window >= num_frames > (plan.starts[-1] + plan.overlap if plan.count > 1 else 0)


@pytest.mark.parametrize("overlap", [0, 14, -1])
def test_plan_refuses_an_overlap_outside_the_window(overlap: int) -> None:
    with pytest.raises(ValueError, match="overlap"):
        SegmentPlan.of(30, 14, overlap)


def test_segment_seeds_follow_the_request_seed() -> None:
    assert [segment_seed(42, i) for i in range(3)] == [42, 43, 44] and segment_seed(MAX_SEED, 1) == 0


# -- the stitching --
def numbered_segments(plan: SegmentPlan) -> list[np.ndarray]:
    """Segment frames that say which frame of the clip they are: frame k is filled with (k % 256, k // 256, 7)."""
    segments = []
    for start in plan.starts:
        positions = np.arange(start, start + plan.window)
        frames = np.zeros((plan.window, 2, 3, 3), dtype=np.uint8)
        frames[..., 0] = (positions % 256)[:, None, None]
        frames[..., 1] = (positions // 256)[:, None, None]
        frames[..., 2] = 7
        segments.append(frames)
    return segments


@pytest.mark.parametrize("num_frames, native, overlap", [(14, 14, 2), (24, 14, 2), (72, 14, 2), (120, 25, 3),
                                                         (300, 14, 4), (31, 8, 1)])
def test_no_frame_is_repeated_or_dropped_at_a_border(num_frames, native, overlap) -> None:
    plan = SegmentPlan.of(num_frames, native, overlap)
    stitcher = ClipStitcher(plan)
    for frames in numbered_segments(plan):
        stitcher.add(frames)
    video = stitcher.video
    assert video.shape == (num_frames, 2, 3, 3)
    positions = video[:, 0, 0, 0].astype(int) + 256 * video[:, 0, 0, 1].astype(int)
    assert positions.tolist() == list(range(num_frames))  # overlaps mix equal frames: each frame is itself
    assert (video[..., 2] == 7).all() and (video == video[:, :1, :1]).all()


def test_the_overlap_fades_from_the_earlier_segment_to_the_later() -> None:
    plan = SegmentPlan.of(20, 8, 3)  # starts 0, 5, 10, 15
    stitcher = ClipStitcher(plan)
    for value in (0, 120, 240, 0):
        stitcher.add(np.full((8, 1, 1, 3), value, dtype=np.uint8))
    values = stitcher.video[:, 0, 0, 0].tolist()
    assert values[:5] == [0] * 5
    assert values[5:8] == [30, 60, 90]  # the later segment's share: 1/4, 2/4, 3/4
    assert values[8:10] == [120, 120] and values[10:13] == [150, 180, 210] and values[13:15] == [240, 240]
    assert values[15:18] == [180, 120, 60] and values[18:] == [0, 0]


def test_stitcher_refuses_a_segment_of_the_wrong_length_or_one_too_many() -> None:
    plan = SegmentPlan.of(20, 8, 2)
    stitcher = ClipStitcher(plan)
    with pytest.raises(ValueError, match="expected 8 frames"):
        stitcher.add(np.zeros((7, 1, 1, 3), np.uint8))
    for frames in numbered_segments(plan):
        stitcher.add(frames)
    with pytest.raises(ValueError, match="segment 3 of 3"):
        stitcher.add(numbered_segments(plan)[0])


# -- the loop over segments --
WINDOW, OVERLAP, STEPS = 4, 1, 3


def long_pipeline(**config):
    return make_svd_pipeline(native_num_frames=WINDOW, segment_overlap=OVERLAP, **config)


def test_a_long_clip_is_made_of_segments_each_conditioned_where_it_begins() -> None:
    pipeline, components = long_pipeline(), FakeSvdComponents()
    request = make_svd_request(num_frames=11, num_inference_steps=STEPS, noise_aug_strength=0.0)
    events = run(collect(pipeline, request, components))
    plan = pipeline.segment_plan(request)
    assert plan.starts == (0, 3, 6, 9)  # the last one trimmed to 2 frames
    total = plan.count * STEPS
    segment_events = [
        [*((names.PHASE_FRAME_GENERATION, step, total) for step in range(first + 1, first + STEPS + 1)),
         (names.PHASE_DECODING, first + STEPS, total)]  # each segment's steps, then its decoding
        for first in range(0, total, STEPS)
    ]  # fmt: skip
    assert [(e.phase, e.step, e.total_steps) for e in events] == [
        (names.PHASE_IMAGE_ENCODING, 0, total),
        *(event for segment in segment_events for event in segment),
        (names.PHASE_DONE, total, total),
    ]
    video = events[-1].frames
    assert video.shape == (11, 16, 32, 3) and events[-1].keyframe is None
    assert all(shape[1] == WINDOW for kind, shape in components.calls if kind == names.UNET)  # the window
    # each segment as a request of its own: the source image first, then the frame of the previous one where it
    # begins, with the next seed; its frames are the clip's where no other segment overlaps them
    image = request.image
    for index, start in enumerate(plan.starts):
        alone = dataclasses.replace(request, image=image, num_frames=WINDOW, seed=request.seed + index)
        frames = run(pipeline(alone, FakeSvdComponents()))
        first = 0 if index == 0 else OVERLAP  # before: the previous segment's overlap
        end = 11 if index + 1 == plan.count else start + plan.stride  # after: the next one's
        np.testing.assert_array_equal(video[start + first : end], frames[first : end - start])
        conditioning = components.inputs[names.VAE_ENCODER][index][names.VAE_ENCODER_PIXELS]
        np.testing.assert_allclose(conditioning[0], image.transpose(2, 0, 1) / 255.0 * 2 - 1, atol=1e-6)
        image = frames[plan.stride]


def test_a_clip_that_fits_the_window_is_one_pass_as_before() -> None:
    components = FakeSvdComponents()
    request = make_svd_request(num_frames=WINDOW, num_inference_steps=STEPS)
    frames = run(long_pipeline()(request, components))
    assert sum(kind == IMAGE_ENCODER for kind, _ in components.calls) == 1
    np.testing.assert_array_equal(frames, run(make_svd_pipeline()(request, FakeSvdComponents())))


@pytest.mark.parametrize("unet_calls_before_cancel", [STEPS + 1, STEPS + 2])
def test_cancel_in_the_middle_of_the_second_segment_stops_before_the_next_step(unet_calls_before_cancel) -> None:
    components = FakeSvdComponents()

    def unet_calls() -> int:
        return sum(kind == names.UNET for kind, _ in components.calls)

    request = make_svd_request(num_frames=11, num_inference_steps=STEPS)
    with pytest.raises(Cancelled) as info:
        run(collect(long_pipeline(), request, components, lambda: unet_calls() >= unet_calls_before_cancel))
    assert unet_calls() == unet_calls_before_cancel and info.value.step == unet_calls_before_cancel
    assert info.value.total_steps == 4 * STEPS
    decoded = sum(shape[0] for kind, shape in components.calls if kind == names.VAE_DECODER)
    assert decoded == WINDOW  # the first segment only


def test_decoding_a_segment_stops_between_its_decoder_calls() -> None:
    components = FakeSvdComponents()
    request = make_svd_request(num_frames=WINDOW, num_inference_steps=1)  # decode_chunk_size 2: two calls

    def decoder_calls() -> int:
        return sum(kind == names.VAE_DECODER for kind, _ in components.calls)

    with pytest.raises(Cancelled):
        run(collect(long_pipeline(), request, components, lambda: decoder_calls() >= 1))
    assert decoder_calls() == 1


def test_decoding_takes_fewer_frames_per_call_at_large_sizes() -> None:
    pipeline = make_svd_pipeline(decode_chunk_size=8, decode_max_cells=4 * 8 * 8)
    assert [pipeline.frames_per_decode(h, w) for h, w in ((2, 4), (8, 8), (16, 16), (64, 64))] == [8, 4, 1, 1]
    assert make_svd_pipeline(decode_chunk_size=8).frames_per_decode(128, 128) == 8  # no limit


# -- text-to-video through the keyframe stage --
def test_text_request_makes_a_keyframe_then_animates_it() -> None:
    pipeline, components = make_svd_pipeline(keyframe=True), FakeSvdComponents()
    request = make_svd_request(image=None, prompt="a lighthouse", negative_prompt="fog", num_inference_steps=STEPS)
    events = run(collect(pipeline, request, components))
    total = 2 * STEPS  # the keyframe's steps (DDIM: one per timestep), then the video's
    assert [(e.phase, e.step, e.total_steps) for e in events] == [
        (names.PHASE_TEXT_ENCODING, 0, total),
        *((names.PHASE_KEYFRAME, step, total) for step in range(1, STEPS + 1)),
        (names.PHASE_IMAGE_ENCODING, STEPS, total),
        *((names.PHASE_FRAME_GENERATION, step, total) for step in range(STEPS + 1, total + 1)),
        (names.PHASE_DECODING, total, total),
        (names.PHASE_DONE, total, total),
    ]
    assert [kind for kind, _ in components.calls[: STEPS + 3]] == [
        KEYFRAME_TEXT_ENCODER, *[KEYFRAME_UNET] * STEPS, KEYFRAME_VAE_DECODER, IMAGE_ENCODER
    ]
    assert components.calls[0][1] == (2, 8)  # [negative, prompt] tokens
    assert all(shape == (2, 4, 2, 4) for kind, shape in components.calls if kind == KEYFRAME_UNET)
    keyframe = events[-1].keyframe
    assert keyframe.shape == (16, 32, 3) and keyframe.dtype == np.uint8 and keyframe.std() > 0
    # the video is SVD's animation of that picture: the same request with the keyframe as its image
    animated = run(make_svd_pipeline()(dataclasses.replace(request, image=keyframe), FakeSvdComponents()))
    np.testing.assert_array_equal(events[-1].frames, animated)


def test_the_keyframe_follows_prompt_negative_prompt_and_seed() -> None:
    pipeline = make_svd_pipeline(keyframe=True)

    def keyframe(**changes):
        request = make_svd_request(**{"image": None, "prompt": "a lighthouse", "negative_prompt": "fog", **changes})
        return run(collect(pipeline, request, FakeSvdComponents()))[-1].keyframe

    first = keyframe()
    np.testing.assert_array_equal(first, keyframe())
    for change in ({"prompt": "a forest"}, {"negative_prompt": "rain"}, {"seed": 7}):
        assert not np.array_equal(first, keyframe(**change)), change


def test_text_long_clip_counts_the_keyframe_and_every_segment() -> None:
    pipeline = make_svd_pipeline(keyframe=True, native_num_frames=WINDOW, segment_overlap=OVERLAP)
    request = make_svd_request(image=None, prompt="waves", num_frames=7, num_inference_steps=STEPS)
    events = run(collect(pipeline, request, FakeSvdComponents()))
    steps = [e.step for e in events]
    assert steps == sorted(steps) and events[-1].total_steps == STEPS + 2 * STEPS  # keyframe + two segments
    assert events[-1].frames.shape[0] == 7 and events[-1].keyframe is not None


@pytest.mark.parametrize("keyframe_unet_calls", [0, 2])
def test_cancel_during_the_keyframe_stops_it(keyframe_unet_calls: int) -> None:
    components = FakeSvdComponents()

    def calls() -> int:
        return sum(kind == KEYFRAME_UNET for kind, _ in components.calls)

    request = make_svd_request(image=None, prompt="a lighthouse", num_inference_steps=5)
    with pytest.raises(Cancelled) as info:
        run(collect(make_svd_pipeline(keyframe=True), request, components, lambda: calls() >= keyframe_unet_calls))
    assert calls() == keyframe_unet_calls and info.value.step == keyframe_unet_calls
    assert not any(kind in (IMAGE_ENCODER, names.UNET) for kind, _ in components.calls)


def test_a_model_without_a_keyframe_stage_still_needs_an_image() -> None:
    components = FakeSvdComponents()
    with pytest.raises(InvalidRequest, match="image is required"):
        run(collect(make_svd_pipeline(), make_svd_request(image=None, prompt="a lighthouse"), components))
    with pytest.raises(InvalidRequest, match="prompt"):  # with one, a text request needs its prompt
        run(collect(make_svd_pipeline(keyframe=True), make_svd_request(image=None, prompt=" "), components))
    assert components.calls == []
