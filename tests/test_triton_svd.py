"""Stable Video Diffusion on the real tritonserver (conftest.triton): streamed progress, frames of exactly the
requested size, determinism, equality with the in-process ONNX loop, per-request errors, cancellation within
one step, both families serving side by side; a text request through the demo's keyframe stage (the keyframe
sent with the frames) and a clip longer than one pass (segments)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from tritonclient.utils import InferenceServerException

from tests.support.images import gradient_image
from tests.support.triton_stats import assert_cancel_stops_within_one_step, collect_events
from visualizr import names
from visualizr.launcher import TritonServer
from visualizr.pipeline import GenerationRequest, ProgressEvent
from visualizr.pipeline.assets import load_pipeline
from visualizr.pipeline.onnx_components import OnnxComponents
from visualizr.pipeline_config import assets_dir

pytestmark = pytest.mark.integration

MODEL_ID = "stable-video-diffusion"
IMAGE = gradient_image(48, 64)
SMALL = GenerationRequest(
    "ignored: SVD takes no prompt", 64, 48, 5, 3, 2.5, 1234, image=IMAGE, fps=7, motion_bucket_id=100,
    noise_aug_strength=0.02,
)


def generate(server: TritonServer, request: GenerationRequest) -> list[ProgressEvent]:
    return asyncio.run(collect_events(server, MODEL_ID, request))


def test_streams_progress_then_frames_of_the_requested_size(triton: TritonServer) -> None:
    events = generate(triton, SMALL)
    assert [(e.phase, e.step, e.total_steps) for e in events] == [
        (names.PHASE_IMAGE_ENCODING, 0, 3),
        (names.PHASE_FRAME_GENERATION, 1, 3),
        (names.PHASE_FRAME_GENERATION, 2, 3),
        (names.PHASE_FRAME_GENERATION, 3, 3),
        (names.PHASE_DECODING, 3, 3),
        (names.PHASE_DONE, 3, 3),
    ]
    frames = events[-1].frames
    assert frames is not None and frames.dtype == np.uint8 and frames.shape == (5, 48, 64, 3)
    assert frames.std() > 0


def test_same_seed_same_frames_and_equal_to_the_in_process_loop(triton: TritonServer, model_repository: Path) -> None:
    first = generate(triton, SMALL)[-1].frames
    np.testing.assert_array_equal(first, generate(triton, SMALL)[-1].frames)
    other = generate(triton, GenerationRequest(**{**SMALL.__dict__, "seed": 99}))[-1].frames
    assert not np.array_equal(first, other)
    pipeline = load_pipeline(assets_dir(model_repository / MODEL_ID))
    components = OnnxComponents.from_repository(model_repository, MODEL_ID, intra_op_num_threads=2)
    local = asyncio.run(pipeline(SMALL, components))
    difference = np.abs(local.astype(np.int16) - first.astype(np.int16))
    assert difference.max() <= 1, f"Triton and in-process frames differ by up to {difference.max()}"


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"image": None, "prompt": ""}, "prompt"),  # neither an image nor a prompt to make one from
        ({"width": 60}, "width"),
        ({"motion_bucket_id": 999}, "motion_bucket_id"),
    ],
)
def test_bad_request_gets_an_error_response(triton: TritonServer, overrides: dict, message: str) -> None:
    with pytest.raises(InferenceServerException, match=message):
        generate(triton, GenerationRequest(**{**SMALL.__dict__, **overrides}))


def test_both_families_serve_concurrently(triton: TritonServer) -> None:
    text = GenerationRequest("a red fox in the snow", 64, 64, 4, 2, 7.5, 1234)

    async def both() -> tuple[list[ProgressEvent], list[ProgressEvent]]:
        svd = collect_events(triton, MODEL_ID, SMALL)
        return await asyncio.gather(svd, collect_events(triton, "animatediff", text))

    svd, animatediff = asyncio.run(both())
    assert svd[-1].frames.shape == (5, 48, 64, 3) and animatediff[-1].frames.shape == (4, 64, 64, 3)
    np.testing.assert_array_equal(svd[-1].frames, generate(triton, SMALL)[-1].frames)


def test_cancel_stops_within_one_step(triton: TritonServer) -> None:
    assert_cancel_stops_within_one_step(triton, MODEL_ID, SMALL)


TEXT = GenerationRequest(
    "a lighthouse on a cliff", 64, 48, 5, 2, 2.5, 77, negative_prompt="blurry", fps=7, motion_bucket_id=100
)


def test_text_request_streams_the_keyframe_stage_and_sends_the_keyframe(
    triton: TritonServer, model_repository: Path
) -> None:
    events = generate(triton, TEXT)
    keyframe_steps = 2  # the demo's keyframe scheduler (DDIM): one step per timestep
    total = keyframe_steps + 2
    assert [(e.phase, e.step, e.total_steps) for e in events] == [
        (names.PHASE_TEXT_ENCODING, 0, total),
        (names.PHASE_KEYFRAME, 1, total),
        (names.PHASE_KEYFRAME, 2, total),
        (names.PHASE_IMAGE_ENCODING, 2, total),
        (names.PHASE_FRAME_GENERATION, 3, total),
        (names.PHASE_FRAME_GENERATION, 4, total),
        (names.PHASE_DECODING, 4, total),
        (names.PHASE_DONE, 4, total),
    ]
    done = events[-1]
    assert done.frames.shape == (5, 48, 64, 3) and done.keyframe.shape == (48, 64, 3)
    assert all(e.keyframe is None for e in events[:-1])
    pipeline = load_pipeline(assets_dir(model_repository / MODEL_ID))
    components = OnnxComponents.from_repository(model_repository, MODEL_ID, intra_op_num_threads=2)
    local = asyncio.run(_last(pipeline.generate(TEXT, components)))
    for ours, theirs in ((done.frames, local.frames), (done.keyframe, local.keyframe)):
        assert np.abs(ours.astype(np.int16) - theirs.astype(np.int16)).max() <= 1


def test_a_clip_longer_than_one_pass_is_made_of_segments(triton: TritonServer) -> None:
    request = GenerationRequest(**{**SMALL.__dict__, "num_frames": 30, "num_inference_steps": 2})
    events = generate(triton, request)
    segments = 3  # window 14, overlap 2: frames 0-13, 12-25, 24-37 (trimmed to 29)
    steps = [e.step for e in events]
    assert steps == sorted(steps) and events[-1].total_steps == segments * 2
    assert [e.step for e in events if e.phase == names.PHASE_FRAME_GENERATION] == list(range(1, segments * 2 + 1))
    assert events[-1].frames.shape == (30, 48, 64, 3) and events[-1].keyframe is None


async def _last(events):
    last = None
    async for event in events:
        last = event
    return last
