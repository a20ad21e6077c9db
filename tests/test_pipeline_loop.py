"""The shared denoising loop, as AnimateDiff's, against fake components: pure logic, no ONNX, no Triton."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, EulerDiscreteScheduler

from tests.support.pipeline_fakes import (
    CONFIG,
    FakeComponents,
    FakeTokenizer,
    collect,
    fake_encode_image,
    make_pipeline,
    make_request,
    run,
)
from visualizr import names
from visualizr.families.animatediff.context import ContextWindows
from visualizr.families.animatediff.loop import denoising_steps
from visualizr.names import PHASE_DECODING, PHASE_DONE, PHASE_FRAME_GENERATION, PHASE_TEXT_ENCODING
from visualizr.pipeline import Cancelled, InvalidRequest
from visualizr.pipeline.diffusion import Denoising, to_uint8_frames


def test_guidance_batches_text_and_unet_calls_at_two() -> None:
    components = FakeComponents()
    run(collect(make_pipeline(), make_request(), components))
    kinds = [kind for kind, _ in components.calls]
    assert kinds == ["text"] + ["unet"] * 4 + ["decode"] * 2  # 3 frames in chunks of 2
    assert components.calls[0][1] == (2, CONFIG.text_max_length)
    assert all(shape == (2, 4, 3, 2, 4) for kind, shape in components.calls if kind == "unet")
    uncond, cond = components.text_ids[0]
    tokenizer = FakeTokenizer()
    np.testing.assert_array_equal(uncond, tokenizer(["blurry"], "max_length", 8, True, "np").input_ids[0])
    np.testing.assert_array_equal(cond, tokenizer(["a cat"], "max_length", 8, True, "np").input_ids[0])
    assert all(t.shape == (2,) and t[0] == t[1] for t in components.unet_timesteps)
    assert [float(t[0]) for t in components.unet_timesteps] == sorted(
        (float(t[0]) for t in components.unet_timesteps), reverse=True
    )


@pytest.mark.parametrize("guidance_scale", [0.0, 1.0])
def test_no_guidance_runs_at_batch_one(guidance_scale: float) -> None:
    components = FakeComponents()
    run(collect(make_pipeline(), make_request(guidance_scale=guidance_scale), components))
    assert components.calls[0] == ("text", (1, CONFIG.text_max_length))
    assert all(shape[0] == 1 for kind, shape in components.calls if kind == "unet")


def test_progress_events_in_order_with_frames_last() -> None:
    events = run(collect(make_pipeline(), make_request(num_inference_steps=3), FakeComponents()))
    assert [(e.phase, e.step, e.total_steps) for e in events] == [
        (PHASE_TEXT_ENCODING, 0, 3),
        (PHASE_FRAME_GENERATION, 1, 3),
        (PHASE_FRAME_GENERATION, 2, 3),
        (PHASE_FRAME_GENERATION, 3, 3),
        (PHASE_DECODING, 3, 3),
        (PHASE_DONE, 3, 3),
    ]
    assert all(e.frames is None for e in events[:-1]) and events[-1].is_final
    frames = events[-1].frames
    assert frames.dtype == np.uint8 and frames.shape == (3, 16, 32, 3)


@pytest.mark.parametrize("scheduler_class", [DDIMScheduler, EulerDiscreteScheduler])
def test_same_seed_same_frames_other_seed_other_frames(scheduler_class) -> None:
    pipeline = make_pipeline(scheduler_class)
    first = run(pipeline(make_request(seed=7), FakeComponents()))
    again = run(pipeline(make_request(seed=7), FakeComponents()))
    other = run(pipeline(make_request(seed=8), FakeComponents()))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_latents_are_seeded_and_scaled_by_init_noise_sigma() -> None:
    pipeline = make_pipeline(EulerDiscreteScheduler)
    scheduler = pipeline.scheduler_factory()
    scheduler.set_timesteps(4)
    request = make_request()
    latents = pipeline.prepare_latents(request, scheduler, torch.Generator().manual_seed(3))
    expected = torch.randn((1, 4, 3, 2, 4), generator=torch.Generator().manual_seed(3)) * scheduler.init_noise_sigma
    assert latents.shape == (1, 4, 3, 2, 4)
    torch.testing.assert_close(latents, expected)


@pytest.mark.parametrize("noise", ["shuffle_context", "random"])
def test_noise_past_one_context_window_repeats_the_frames_a_window_back(noise: str) -> None:
    """FreeNoise's shuffle_context (its equality with diffusers' own: tests/test_animatediff_context.py)."""
    pipeline = make_pipeline(EulerDiscreteScheduler, context=ContextWindows(length=4, stride=2, noise=noise))
    scheduler = pipeline.scheduler_factory()
    scheduler.set_timesteps(4)
    latents = pipeline.prepare_latents(make_request(num_frames=7), scheduler, torch.Generator().manual_seed(3))
    drawn = torch.randn((1, 4, 7, 2, 4), generator=torch.Generator().manual_seed(3)) * scheduler.init_noise_sigma
    torch.testing.assert_close(latents[:, :, :4], drawn[:, :, :4])
    if noise == "random":
        torch.testing.assert_close(latents, drawn)
        return
    pairs = [(4, (0, 1)), (5, (0, 1)), (6, (2, 3))]  # frames 4-5 repeat 0-1 shuffled, frame 6 one of 2-3
    for frame, sources in pairs:
        assert any(torch.equal(latents[:, :, frame], latents[:, :, s]) for s in sources), frame
    assert not torch.equal(latents[:, :, 4], latents[:, :, 5])
    short = pipeline.prepare_latents(make_request(num_frames=4), scheduler, torch.Generator().manual_seed(3))
    one_window = torch.randn((1, 4, 4, 2, 4), generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(short, one_window * scheduler.init_noise_sigma)  # one window: the noise as drawn


@pytest.mark.parametrize("cancel_after", [0, 1, 3])
def test_cancel_stops_before_the_next_unet_call(cancel_after: int) -> None:
    components = FakeComponents()

    def is_cancelled() -> bool:
        return sum(kind == "unet" for kind, _ in components.calls) >= cancel_after

    with pytest.raises(Cancelled) as info:
        run(collect(make_pipeline(), make_request(num_inference_steps=10), components, is_cancelled))
    assert sum(kind == "unet" for kind, _ in components.calls) == cancel_after
    assert info.value.step == cancel_after and info.value.total_steps == 10
    assert not any(kind == "decode" for kind, _ in components.calls)


def test_cancel_before_start_calls_nothing() -> None:
    components = FakeComponents()
    with pytest.raises(Cancelled):
        run(collect(make_pipeline(), make_request(), components, lambda: True))
    assert components.calls == []


def test_decode_chunks_and_unscales_latents() -> None:
    components = FakeComponents()
    pipeline = make_pipeline(decode_chunk_size=2)
    latents = torch.arange(1 * 4 * 5 * 2 * 3, dtype=torch.float32).reshape(1, 4, 5, 2, 3) / 100
    frames = run(pipeline.decode_latents(components, latents))
    assert [shape for _, shape in components.calls] == [(2, 4, 2, 3), (2, 4, 2, 3), (1, 4, 2, 3)]
    decoded = np.concatenate(components.decoded)
    np.testing.assert_allclose(decoded[3], latents[0, :, 3].numpy() / CONFIG.vae_scaling_factor)
    assert frames.shape == (5, 16, 24, 3) and frames.dtype == np.uint8


def test_to_uint8_frames_maps_minus_one_to_zero_and_one_to_255() -> None:
    images = np.stack([np.full((3, 2, 2), v, dtype=np.float32) for v in (-2.0, -1.0, 0.0, 1.0)])
    frames = to_uint8_frames(images)
    assert frames.shape == (4, 2, 2, 3)
    assert frames[:, 0, 0, 0].tolist() == [0, 0, 128, 255]


class IdentityScheduler:
    def scale_model_input(self, sample, t):
        return sample

    def step(self, model_output, t, sample):
        return SimpleNamespace(prev_sample=model_output)


class SplitUnet(FakeComponents):
    async def unet(self, inputs):
        sample = inputs[names.UNET_SAMPLE]
        self.calls.append(("unet", sample.shape))
        return np.stack([np.full(sample.shape[1:], 1.0), np.full(sample.shape[1:], 3.0)]).astype(np.float32)


def test_classifier_free_guidance_arithmetic() -> None:
    pipeline = make_pipeline()
    latents = torch.zeros((1, 4, 1, 2, 2))
    hidden = np.zeros((2, 8, 6), dtype=np.float32)
    state = Denoising(
        IdentityScheduler(), torch.tensor([10]), latents, None, {names.UNET_ENCODER_HIDDEN_STATES: hidden}, 2.5
    )
    components = SplitUnet()
    out = run(pipeline.denoise_step(components, state, torch.tensor(10)))
    torch.testing.assert_close(out, torch.full((1, 4, 1, 2, 2), 1.0 + 2.5 * (3.0 - 1.0)))
    assert components.calls == [("unet", (2, 4, 1, 2, 2))]  # one call at twice the batch


def test_progress_callback_may_be_async() -> None:
    seen: list[str] = []

    async def on_progress(event) -> None:
        seen.append(event.phase)

    frames = run(make_pipeline()(make_request(num_inference_steps=2), FakeComponents(), on_progress))
    assert seen == [
        PHASE_TEXT_ENCODING,
        PHASE_FRAME_GENERATION,
        PHASE_FRAME_GENERATION,
        PHASE_DECODING,
        PHASE_DONE,
    ]
    assert frames.shape == (3, 16, 32, 3)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"prompt": "  "}, "prompt"),
        ({"width": 30}, "width"),
        ({"height": 0}, "height"),
        ({"num_frames": 0}, "num_frames"),
        ({"num_inference_steps": 0}, "num_inference_steps"),
        ({"guidance_scale": float("nan")}, "guidance_scale"),
        ({"guidance_scale": -1.0}, "guidance_scale"),
        ({"seed": -1}, "seed"),
    ],
)
def test_check_inputs_rejects(overrides: dict, message: str) -> None:
    components = FakeComponents()
    with pytest.raises(InvalidRequest, match=message):
        run(collect(make_pipeline(), make_request(**overrides), components))
    assert components.calls == []


# -- image-to-video --
IMAGE = (np.arange(16 * 32 * 3) % 251).astype(np.uint8).reshape(16, 32, 3)  # [height, width, 3] of make_request


def unet_calls(components: FakeComponents) -> int:
    return sum(kind == "unet" for kind, _ in components.calls)


@pytest.mark.parametrize("scheduler_class", [DDIMScheduler, EulerDiscreteScheduler])
@pytest.mark.parametrize("steps, strength", [(4, 0.5), (4, 1.0), (10, 0.3), (10, 0.75), (7, 0.6)])
def test_image_runs_the_last_strength_fraction_of_the_timesteps(scheduler_class, steps: int, strength: float) -> None:
    components = FakeComponents()
    pipeline = make_pipeline(scheduler_class)
    request = make_request(num_inference_steps=steps, image=IMAGE, strength=strength)
    events = run(collect(pipeline, request, components))
    expected = int(steps * strength)
    assert unet_calls(components) == expected
    assert [kind for kind, _ in components.calls].count("encode_image") == 1
    assert components.calls[:2] == [("text", (2, CONFIG.text_max_length)), ("encode_image", (1, 3, 16, 32))]
    full = pipeline.scheduler_factory()
    full.set_timesteps(steps)
    ran = [float(t[0]) for t in components.unet_timesteps]
    assert ran == [float(t) for t in full.timesteps[steps - expected :]]
    # progress counts the steps actually run
    assert [(e.phase, e.step, e.total_steps) for e in events] == [
        (PHASE_TEXT_ENCODING, 0, expected),
        *((PHASE_FRAME_GENERATION, i, expected) for i in range(1, expected + 1)),
        (PHASE_DECODING, expected, expected),
        (PHASE_DONE, expected, expected),
    ]
    assert events[-1].frames.shape == (3, 16, 32, 3)


def test_image_pixels_go_to_the_encoder_in_minus_one_to_one() -> None:
    components = FakeComponents()
    run(make_pipeline()(make_request(image=IMAGE, strength=0.5), components))
    (pixels,) = components.encoded
    np.testing.assert_allclose(pixels[0], IMAGE.transpose(2, 0, 1).astype(np.float32) / 127.5 - 1.0, atol=1e-6)


def test_image_latents_are_the_scaled_image_latent_noised_to_the_first_timestep() -> None:
    pipeline = make_pipeline()
    components = FakeComponents()
    latent = run(pipeline.encode_image(components, IMAGE))
    expected_latent = fake_encode_image(IMAGE.transpose(2, 0, 1)[None] / np.float32(127.5) - 1)
    torch.testing.assert_close(latent, torch.from_numpy(expected_latent) * CONFIG.vae_scaling_factor)
    scheduler = pipeline.scheduler_factory()
    scheduler.set_timesteps(10)
    timesteps = pipeline.strength_timesteps(scheduler, 10, 0.3)
    request = make_request()
    latents = pipeline.prepare_image_latents(request, latent, scheduler, timesteps[0], torch.Generator().manual_seed(3))
    noise = torch.randn((1, 4, 3, 2, 4), generator=torch.Generator().manual_seed(3))
    alpha = scheduler.alphas_cumprod[int(timesteps[0])]
    torch.testing.assert_close(
        latents, alpha.sqrt() * latent[:, :, None].expand(-1, -1, 3, -1, -1) + (1 - alpha).sqrt() * noise
    )


@pytest.mark.parametrize("scheduler_class", [DDIMScheduler, EulerDiscreteScheduler])
def test_image_to_video_is_deterministic_by_seed_and_follows_the_image(scheduler_class) -> None:
    pipeline = make_pipeline(scheduler_class)
    request = make_request(image=IMAGE, strength=0.5)
    first = run(pipeline(request, FakeComponents()))
    again = run(pipeline(request, FakeComponents()))
    other_seed = run(pipeline(make_request(image=IMAGE, strength=0.5, seed=43), FakeComponents()))
    other_image = run(pipeline(make_request(image=255 - IMAGE, strength=0.5), FakeComponents()))
    text_only = run(pipeline(make_request(), FakeComponents()))
    np.testing.assert_array_equal(first, again)
    for different in (other_seed, other_image, text_only):
        assert not np.array_equal(first, different)


def test_strength_is_ignored_without_an_image() -> None:
    components = FakeComponents()
    frames = run(make_pipeline()(make_request(strength=0.5), components))
    assert unet_calls(components) == 4 and not components.encoded
    np.testing.assert_array_equal(frames, run(make_pipeline()(make_request(), FakeComponents())))


def test_denoising_steps() -> None:
    assert [denoising_steps(10, s) for s in (0.05, 0.1, 0.29, 0.5, 0.99, 1.0)] == [1, 1, 2, 5, 9, 10]
    assert denoising_steps(4, 0.01) == 1  # at least one step
    # a strength that went through float32 counts as the decimal it was written as
    assert denoising_steps(10, float(np.float32(0.7))) == 7 == denoising_steps(10, 0.7)


def test_image_request_equality_compares_pixels() -> None:
    request = make_request(image=IMAGE)
    assert request == make_request(image=IMAGE.copy())
    assert request != make_request(image=255 - IMAGE) and request != make_request()
    assert hash(request) == hash(make_request(image=IMAGE.copy()))
    assert "image" not in repr(request) and "strength=1.0" in repr(request)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"strength": 0.0}, "strength"),
        ({"strength": -0.1}, "strength"),
        ({"strength": 1.5}, "strength"),
        ({"strength": float("nan")}, "strength"),
        ({"image": IMAGE[:8]}, "image"),
        ({"image": IMAGE.transpose(1, 0, 2)}, "image"),
        ({"image": IMAGE[..., :1]}, "image"),
        ({"image": IMAGE.astype(np.float32)}, "image"),
        ({"image": IMAGE.tolist()}, "image"),
    ],
)
def test_check_inputs_rejects_bad_image_or_strength(overrides: dict, message: str) -> None:
    components = FakeComponents()
    with pytest.raises(InvalidRequest, match=message):
        run(collect(make_pipeline(), make_request(**{"image": IMAGE, "strength": 0.5, **overrides}), components))
    assert components.calls == []
