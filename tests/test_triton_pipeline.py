"""The pipeline on the real tritonserver (launched by visualizr.launcher on free ports, see conftest.triton):
streamed progress, frames, determinism, equality with the in-process ONNX loop, cancellation."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import numpy as np
import pytest
from tritonclient.utils import InferenceServerException

from tests.support.images import reference_picture
from tests.support.triton_stats import assert_cancel_stops_within_one_step, collect_events
from visualizr import names
from visualizr.launcher import TritonServer
from visualizr.pipeline import GenerationRequest, ProgressEvent
from visualizr.pipeline.assets import load_pipeline
from visualizr.pipeline.onnx_components import OnnxComponents
from visualizr.pipeline_config import assets_dir

pytestmark = pytest.mark.integration

MODEL_ID = "animatediff"
SMALL = GenerationRequest("a red fox in the snow", 64, 64, 4, 2, 7.5, 1234, negative_prompt="blurry")


def generate(server: TritonServer, request: GenerationRequest) -> list[ProgressEvent]:
    return asyncio.run(collect_events(server, MODEL_ID, request))


def assert_is_the_in_process_loop(model_repository: Path, request: GenerationRequest, frames: np.ndarray):
    """Triton's ``frames`` for ``request`` are the in-process ONNX loop's (to 1/255); returns its pipeline and
    components."""
    pipeline = load_pipeline(assets_dir(model_repository / MODEL_ID))
    components = OnnxComponents.from_repository(model_repository, MODEL_ID, intra_op_num_threads=2)
    local = asyncio.run(pipeline(request, components))
    difference = np.abs(local.astype(np.int16) - frames.astype(np.int16))
    assert difference.max() <= 1, f"Triton and in-process frames differ by up to {difference.max()}"
    return pipeline, components


def test_streams_progress_then_frames(triton: TritonServer) -> None:
    events = generate(triton, SMALL)
    assert [(e.phase, e.step, e.total_steps) for e in events] == [
        (names.PHASE_TEXT_ENCODING, 0, 2),
        (names.PHASE_FRAME_GENERATION, 1, 2),
        (names.PHASE_FRAME_GENERATION, 2, 2),
        (names.PHASE_DECODING, 2, 2),
        (names.PHASE_DONE, 2, 2),
    ]
    assert all(e.frames is None for e in events[:-1])
    frames = events[-1].frames
    assert frames is not None and frames.dtype == np.uint8 and frames.shape == (4, 64, 64, 3)
    assert frames.std() > 0


def test_same_seed_same_frames_and_equal_to_the_in_process_loop(triton: TritonServer, model_repository: Path) -> None:
    first = generate(triton, SMALL)[-1].frames
    again = generate(triton, SMALL)[-1].frames
    other = generate(triton, GenerationRequest(**{**SMALL.__dict__, "seed": 99}))[-1].frames
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)

    assert_is_the_in_process_loop(model_repository, SMALL, first)


def test_bad_request_gets_an_error_response(triton: TritonServer) -> None:
    with pytest.raises(InferenceServerException, match="width"):
        generate(triton, GenerationRequest(**{**SMALL.__dict__, "width": 60}))


def test_concurrent_requests_both_finish(triton: TritonServer) -> None:
    async def both() -> list[list[ProgressEvent]]:
        return await asyncio.gather(collect_events(triton, MODEL_ID, SMALL), collect_events(triton, MODEL_ID, SMALL))

    first, second = asyncio.run(both())
    np.testing.assert_array_equal(first[-1].frames, second[-1].frames)


def test_cancel_stops_within_one_step(triton: TritonServer) -> None:
    assert_cancel_stops_within_one_step(triton, MODEL_ID, SMALL)


def test_custom_metrics_on_the_triton_metrics_port(triton: TritonServer) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    def scrape() -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
        text = httpx.get(f"http://{triton.settings.triton_host}:{triton.settings.triton_metrics_port}/metrics").text
        return {
            family.name: {tuple(sorted(s.labels.items())): s.value for s in family.samples}
            for family in text_string_to_metric_families(text)
        }

    before = scrape()
    generate(triton, SMALL)
    after = scrape()
    model = (("family", "animatediff"), ("model", MODEL_ID))  # the step histogram is labelled by family too
    success = (*model, ("outcome", "success"))
    assert after["visualizr_pipeline_generations"][success] == before["visualizr_pipeline_generations"][success] + 1
    steps = after["visualizr_pipeline_step_duration_seconds"]
    assert any(value >= SMALL.num_inference_steps for labels, value in steps.items() if ("le", "+Inf") in labels)
    assert after["visualizr_pipeline_active_generations"][model] == 0
    assert "nv_inference_request_success" in after  # Triton's own metrics on the same port


def _source_image() -> np.ndarray:
    """64x64 uint8: two coloured halves crossed by a gradient (structure the VAE latent keeps)."""
    y, x = np.mgrid[0:64, 0:64]
    halves = np.where(x[..., None] < 32, np.array([230, 40, 40]), np.array([20, 60, 220]))
    return np.clip(halves + 2 * y[..., None] - 64, 0, 255).astype(np.uint8)


IMAGE_TO_VIDEO = GenerationRequest(
    **{**SMALL.__dict__, "num_inference_steps": 4, "image": _source_image(), "strength": 0.5}
)


def test_image_to_video(triton: TritonServer, model_repository: Path) -> None:
    events = generate(triton, IMAGE_TO_VIDEO)
    steps = int(IMAGE_TO_VIDEO.num_inference_steps * IMAGE_TO_VIDEO.strength)  # 2 of the 4 timesteps run
    assert [(e.phase, e.step, e.total_steps) for e in events] == [
        (names.PHASE_TEXT_ENCODING, 0, steps),
        *((names.PHASE_FRAME_GENERATION, i, steps) for i in range(1, steps + 1)),
        (names.PHASE_DECODING, steps, steps),
        (names.PHASE_DONE, steps, steps),
    ]
    frames = events[-1].frames
    assert frames is not None and frames.dtype == np.uint8 and frames.shape == (4, 64, 64, 3)
    np.testing.assert_array_equal(frames, generate(triton, IMAGE_TO_VIDEO)[-1].frames)
    assert not np.array_equal(frames, generate(triton, SMALL)[-1].frames)

    pipeline, components = assert_is_the_in_process_loop(model_repository, IMAGE_TO_VIDEO, frames)

    # The tiny demo VAE is random: decode(encode(image)) is not the image, so "close to the input image" is
    # measured against the image as this model sees it: its latent, repeated over the frames, decoded unnoised.
    latent = asyncio.run(pipeline.encode_image(components, IMAGE_TO_VIDEO.image))
    seen = asyncio.run(pipeline.decode_latents(components, latent[:, :, None].repeat(1, 1, 4, 1, 1)))

    def distance(strength: float) -> float:
        request = GenerationRequest(**{**IMAGE_TO_VIDEO.__dict__, "strength": strength})
        out = generate(triton, request)[-1].frames
        return float(np.abs(out.astype(np.float32) - seen.astype(np.float32)).mean())

    low, full = distance(0.25), distance(1.0)
    assert low < 0.75 * full, f"strength 0.25 is {low:.1f} from the image, strength 1.0 {full:.1f}"


def test_character_reference_through_the_ip_adapter(triton: TritonServer, model_repository: Path) -> None:
    """The two IP-Adapter inputs through the real tritonserver: the picture's encoding is its own phase, the frames
    are the in-process loop's, and the reference changes them."""
    reference = reference_picture(1)
    request = GenerationRequest(**{**SMALL.__dict__, "ip_adapter_image": reference, "ip_adapter_scale": 0.6})
    events = generate(triton, request)
    assert [e.phase for e in events[:2]] == [names.PHASE_IMAGE_ENCODING, names.PHASE_TEXT_ENCODING]
    frames = events[-1].frames
    assert frames is not None and frames.shape == (4, 64, 64, 3)
    assert not np.array_equal(frames, generate(triton, SMALL)[-1].frames)

    assert_is_the_in_process_loop(model_repository, request, frames)
