"""Stable Video Diffusion's loop: against fake networks (pure logic), and against diffusers'
StableVideoDiffusionPipeline on the tiny demo's real torch networks (same seed -> the same frames)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from tests.support.pipeline_fakes import (
    SVD_CONFIG,
    SVD_IMAGE,
    FakeSvdComponents,
    collect,
    make_svd_pipeline,
    make_svd_request,
    run,
)
from visualizr import names
from visualizr.families.stable_video_diffusion.clip_image import ClipNormalization
from visualizr.families.stable_video_diffusion.loop import StableVideoDiffusionPipeline
from visualizr.families.stable_video_diffusion.vocabulary import IMAGE_ENCODER, UNET_ADDED_TIME_IDS
from visualizr.pipeline import Cancelled, InvalidRequest
from visualizr.pipeline.diffusion import Denoising
from visualizr.pipeline.torch_components import TorchComponents


def test_calls_in_order_with_one_batched_unet_call_per_step() -> None:
    components = FakeSvdComponents()
    events = run(collect(make_svd_pipeline(), make_svd_request(), components))
    size = SVD_CONFIG.image_size
    assert components.calls == [
        (IMAGE_ENCODER, (1, 3, size, size)),
        (names.VAE_ENCODER, (1, 3, 16, 32)),
        *[(names.UNET, (2, 3, 8, 2, 4))] * 4,  # [uncond, cond] x frames x (noisy ++ image latents)
        (names.VAE_DECODER, (2, 4, 2, 4)),  # decode_chunk_size 2: a clip of 2 frames, then 1
        (names.VAE_DECODER, (1, 4, 2, 4)),
    ]
    assert [(e.phase, e.step, e.total_steps) for e in events] == [
        (names.PHASE_IMAGE_ENCODING, 0, 4),
        *((names.PHASE_FRAME_GENERATION, i, 4) for i in range(1, 5)),
        (names.PHASE_DECODING, 4, 4),
        (names.PHASE_DONE, 4, 4),
    ]
    assert events[-1].frames.shape == (3, 16, 32, 3) and events[-1].frames.dtype == np.uint8


def test_unconditional_half_is_zeros_and_time_ids_are_the_micro_conditioning() -> None:
    components = FakeSvdComponents()
    run(make_svd_pipeline()(make_svd_request(fps=10, motion_bucket_id=200, noise_aug_strength=0.1), components))
    unet = components.inputs[names.UNET][0]
    hidden, sample = unet[names.UNET_ENCODER_HIDDEN_STATES], unet[names.UNET_SAMPLE]
    assert not hidden[0].any() and hidden[1].any()
    assert not sample[0, :, 4:].any() and sample[1, :, 4:].any()  # the image latents: zeros for uncond
    np.testing.assert_array_equal(sample[1, 0, 4:], sample[1, 2, 4:])  # ... repeated over the frames
    np.testing.assert_allclose(unet[UNET_ADDED_TIME_IDS], [[9, 200, 0.1], [9, 200, 0.1]], rtol=1e-6)


def test_absent_micro_conditioning_takes_diffusers_defaults() -> None:
    components = FakeSvdComponents()
    run(make_svd_pipeline()(make_svd_request(fps=None), components))
    np.testing.assert_allclose(components.inputs[names.UNET][0][UNET_ADDED_TIME_IDS][0], [6, 127, 0.02], rtol=1e-6)


def test_no_guidance_runs_at_batch_one() -> None:
    components = FakeSvdComponents()
    run(make_svd_pipeline()(make_svd_request(guidance_scale=1.0), components))
    assert all(shape[0] == 1 for kind, shape in components.calls if kind == names.UNET)
    assert components.inputs[names.UNET][0][names.UNET_ENCODER_HIDDEN_STATES].shape[0] == 1


class IdentityScheduler:
    def scale_model_input(self, sample, t):
        return sample

    def step(self, model_output, t, sample):
        return SimpleNamespace(prev_sample=model_output)


class SplitUnet(FakeSvdComponents):
    async def unet(self, inputs):
        sample = inputs[names.UNET_SAMPLE]
        half = sample[:1, :, : sample.shape[2] // 2].shape
        return np.concatenate([np.full(half, 1.0), np.full(half, 3.0)]).astype(np.float32)


def test_guidance_ramps_over_the_frames() -> None:
    pipeline = make_svd_pipeline()
    request = make_svd_request(num_frames=5, guidance_scale=3.0, min_guidance_scale=1.0)
    ramp = pipeline.guidance_ramp(request, 1.0)
    assert ramp.shape == (1, 5, 1, 1, 1) and ramp.flatten().tolist() == [1.0, 1.5, 2.0, 2.5, 3.0]
    state = Denoising(
        IdentityScheduler(),
        torch.tensor([1.0]),
        torch.zeros((1, 5, 4, 2, 2)),
        None,
        {names.UNET_ENCODER_HIDDEN_STATES: np.zeros((2, 1, 6), np.float32)},
        guidance=ramp,
        concat_latents=torch.zeros((2, 5, 4, 2, 2)),
    )
    out = run(pipeline.denoise_step(SplitUnet(), state, torch.tensor(1.0)))
    expected = 1.0 + ramp.reshape(5) * (3.0 - 1.0)  # per frame: uncond + scale * (cond - uncond)
    torch.testing.assert_close(out[0, :, 0, 0, 0], expected)


def test_same_seed_same_frames_and_every_input_matters() -> None:
    pipeline = make_svd_pipeline()
    first = run(pipeline(make_svd_request(), FakeSvdComponents()))
    np.testing.assert_array_equal(first, run(pipeline(make_svd_request(), FakeSvdComponents())))
    for change in (
        {"seed": 43},
        {"image": 255 - SVD_IMAGE},
        {"motion_bucket_id": 30},
        {"noise_aug_strength": 0.5},
        {"fps": 20},
        {"guidance_scale": 6.0},
    ):
        assert not np.array_equal(first, run(pipeline(make_svd_request(**change), FakeSvdComponents()))), change


@pytest.mark.parametrize("cancel_after", [0, 1, 3])
def test_cancel_stops_before_the_next_unet_call(cancel_after: int) -> None:
    components = FakeSvdComponents()

    def unet_calls() -> int:
        return sum(kind == names.UNET for kind, _ in components.calls)

    request = make_svd_request(num_inference_steps=10)
    with pytest.raises(Cancelled) as info:
        run(collect(make_svd_pipeline(), request, components, lambda: unet_calls() >= cancel_after))
    assert unet_calls() == cancel_after and info.value.step == cancel_after
    assert not any(kind == names.VAE_DECODER for kind, _ in components.calls)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"image": None}, "image is required"),
        ({"image": SVD_IMAGE[:8]}, "image"),
        ({"width": 30}, "width"),
        ({"fps": 0}, "fps"),
        ({"motion_bucket_id": 256}, "motion_bucket_id"),
        ({"motion_bucket_id": -1}, "motion_bucket_id"),
        ({"noise_aug_strength": -0.1}, "noise_aug_strength"),
        ({"noise_aug_strength": float("nan")}, "noise_aug_strength"),
        ({"min_guidance_scale": float("inf")}, "min_guidance_scale"),
        ({"guidance_scale": -1.0}, "guidance_scale"),
    ],
)
def test_check_inputs_rejects(overrides: dict, message: str) -> None:
    components = FakeSvdComponents()
    with pytest.raises(InvalidRequest, match=message):
        run(collect(make_svd_pipeline(), make_svd_request(**overrides), components))
    assert components.calls == []


def test_decoder_gets_each_chunk_as_one_clip() -> None:
    components = FakeSvdComponents()
    latents = torch.arange(1 * 5 * 4 * 2 * 3, dtype=torch.float32).reshape(1, 5, 4, 2, 3) / 100
    frames = run(make_svd_pipeline(decode_chunk_size=3).decode_latents(components, latents))
    decoder_calls = components.inputs[names.VAE_DECODER]
    assert [c[names.VAE_LATENT].shape[0] for c in decoder_calls] == [3, 2]  # clips of 3 and 2 frames
    np.testing.assert_allclose(decoder_calls[1][names.VAE_LATENT][0], latents[0, 3].numpy() / 0.5)
    assert frames.shape == (5, 16, 24, 3)


# -- against diffusers, on the tiny demo's real networks --
@pytest.fixture(scope="module")
def tiny_svd(tmp_path_factory: pytest.TempPathFactory):
    from visualizr.export.build_stamp import ExportOptions
    from visualizr.export.families.stable_video_diffusion import EXPORT

    options = ExportOptions(repository=tmp_path_factory.mktemp("unused"), family="stable-video-diffusion")
    return EXPORT.load(options)


@pytest.mark.parametrize("guidance_scale", [1.0, 2.5])
def test_frames_equal_diffusers_stable_video_diffusion(tiny_svd, guidance_scale: float, tmp_path: Path) -> None:
    from diffusers import StableVideoDiffusionPipeline as DiffusersPipeline
    from PIL import Image

    from visualizr.pipeline.assets import SchedulerFactory

    scheduler, feature_extractor = tiny_svd.assets["scheduler"], tiny_svd.assets["feature_extractor"]
    scheduler.save_pretrained(str(tmp_path / "scheduler"))
    feature_extractor.save_pretrained(str(tmp_path / "feature_extractor"))
    ours = StableVideoDiffusionPipeline(
        tiny_svd.config,
        ClipNormalization.from_pretrained(tmp_path / "feature_extractor"),
        SchedulerFactory.from_assets(tmp_path),
    )
    image = np.clip(SVD_IMAGE.astype(np.int16) * 3 // 2, 0, 255).astype(np.uint8)[:, :, ::-1].copy()
    image = np.tile(image, (2, 2, 1))  # 32 x 64
    request = make_svd_request(
        width=64, height=32, num_frames=5, num_inference_steps=3, guidance_scale=guidance_scale,
        min_guidance_scale=1.0, image=image, fps=9, motion_bucket_id=90, noise_aug_strength=0.05, seed=11,
    )
    frames = run(ours(request, TorchComponents.from_specs(tiny_svd.specs, tiny_svd.networks)))

    reference = DiffusersPipeline(
        vae=tiny_svd.networks["vae_decoder"],
        image_encoder=tiny_svd.networks["image_encoder"],
        unet=tiny_svd.networks["unet"],
        scheduler=SchedulerFactory.from_assets(tmp_path)(),
        feature_extractor=feature_extractor,
    )
    reference.set_progress_bar_config(disable=True)
    expected = reference(
        Image.fromarray(image),
        height=32,
        width=64,
        num_frames=5,
        num_inference_steps=3,
        min_guidance_scale=1.0,
        max_guidance_scale=guidance_scale,
        fps=9,
        motion_bucket_id=90,
        noise_aug_strength=0.05,
        decode_chunk_size=tiny_svd.config.decode_chunk_size,
        generator=torch.Generator().manual_seed(11),
        output_type="np",
    ).frames[0]
    expected = (np.asarray(expected) * 255).round().astype(np.uint8)
    assert frames.shape == expected.shape == (5, 32, 64, 3)
    difference = np.abs(frames.astype(np.int16) - expected.astype(np.int16))
    print(f"largest difference from diffusers: {difference.max()} (of 255)")
    assert difference.max() <= 1, f"frames differ from diffusers' by up to {difference.max()}"
    assert frames.std() > 1  # not a constant picture


# -- the keyframe stage and segments against diffusers, on the tiny demo's real networks --
@pytest.fixture(scope="module")
def tiny_svd_assets(tiny_svd, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's pipeline assets as the export writes them (pipeline.json, scheduler/, feature_extractor/,
    keyframe/tokenizer/, keyframe/scheduler/)."""
    import msgspec

    folder = tmp_path_factory.mktemp("svd-assets")
    for dirname, asset in tiny_svd.assets.items():
        asset.save_pretrained(str(folder / dirname))
    (folder / "pipeline.json").write_bytes(msgspec.json.encode(tiny_svd.config))
    return folder


def ours_on(tiny_svd, assets: Path, **config):
    """Our loop from the exported assets, over the tiny demo's torch networks (the ONNX files' very modules)."""
    import msgspec

    from visualizr.pipeline_config import PIPELINE_CONFIG_FILENAME

    if config:
        (assets / PIPELINE_CONFIG_FILENAME).write_bytes(msgspec.json.encode(msgspec.structs.replace(tiny_svd.config,
                                                                                                    **config)))
    pipeline = StableVideoDiffusionPipeline.from_assets(assets)
    if config:
        (assets / PIPELINE_CONFIG_FILENAME).write_bytes(msgspec.json.encode(tiny_svd.config))
    return pipeline, TorchComponents.from_specs(tiny_svd.specs, tiny_svd.networks)


def diffusers_svd(tiny_svd, assets: Path, image: np.ndarray, seed: int, **kwargs) -> np.ndarray:
    from diffusers import StableVideoDiffusionPipeline as DiffusersPipeline
    from PIL import Image

    from visualizr.pipeline.assets import SchedulerFactory

    reference = DiffusersPipeline(
        vae=tiny_svd.networks["vae_decoder"],
        image_encoder=tiny_svd.networks["image_encoder"],
        unet=tiny_svd.networks["unet"],
        scheduler=SchedulerFactory.from_assets(assets)(),
        feature_extractor=tiny_svd.assets["feature_extractor"],
    )
    reference.set_progress_bar_config(disable=True)
    height, width = image.shape[:2]
    frames = reference(
        Image.fromarray(image), height=height, width=width, generator=torch.Generator().manual_seed(seed),
        decode_chunk_size=tiny_svd.config.decode_chunk_size, output_type="np", **kwargs,
    ).frames[0]
    return (np.asarray(frames) * 255).round().astype(np.uint8)


def assert_close_to(ours: np.ndarray, expected: np.ndarray, most: int = 1) -> None:
    assert ours.shape == expected.shape
    difference = np.abs(ours.astype(np.int16) - expected.astype(np.int16))
    print(f"largest difference from diffusers: {difference.max()} (of 255)")
    assert difference.max() <= most, f"differs from diffusers' by up to {difference.max()}"
    assert ours.std() > 1  # not a constant picture


TEXT = {"prompt": "a lighthouse on a cliff at dusk", "negative_prompt": "blurry", "seed": 17}
VIDEO = {"num_frames": 5, "num_inference_steps": 3, "guidance_scale": 2.5, "min_guidance_scale": 1.0, "fps": 9,
         "motion_bucket_id": 90, "noise_aug_strength": 0.05}


def test_keyframe_equals_diffusers_stable_diffusion(tiny_svd, tiny_svd_assets: Path) -> None:
    from diffusers import StableDiffusionPipeline

    from visualizr.families.stable_video_diffusion.vocabulary import KEYFRAME_PREFIX
    from visualizr.pipeline.assets import SchedulerFactory
    from visualizr.pipeline.components import StageComponents
    from visualizr.pipeline_config import KEYFRAME_DIRNAME, SCHEDULER_DIRNAME

    pipeline, components = ours_on(tiny_svd, tiny_svd_assets)
    request = make_svd_request(image=None, width=64, height=48, **{**VIDEO, **TEXT})
    keyframe = run(pipeline.keyframe(request, StageComponents(components, KEYFRAME_PREFIX)))[0]

    networks = tiny_svd.networks
    reference = StableDiffusionPipeline(
        vae=networks["keyframe_vae_decoder"],
        text_encoder=networks["keyframe_text_encoder"],
        tokenizer=tiny_svd.assets[f"{KEYFRAME_DIRNAME}/tokenizer"],
        unet=networks["keyframe_unet"],
        scheduler=SchedulerFactory.from_dir(tiny_svd_assets / KEYFRAME_DIRNAME / SCHEDULER_DIRNAME)(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    reference.set_progress_bar_config(disable=True)
    expected = reference(
        TEXT["prompt"], negative_prompt=TEXT["negative_prompt"], height=48, width=64, num_inference_steps=3,
        guidance_scale=tiny_svd.config.keyframe.guidance_scale, generator=torch.Generator().manual_seed(TEXT["seed"]),
        output_type="np",
    ).images[0]
    assert_close_to(keyframe, (np.asarray(expected) * 255).round().astype(np.uint8))


def test_text_request_animates_its_keyframe_as_diffusers_does(tiny_svd, tiny_svd_assets: Path) -> None:
    pipeline, components = ours_on(tiny_svd, tiny_svd_assets)
    request = make_svd_request(image=None, width=64, height=48, **{**VIDEO, **TEXT})
    events = run(collect(pipeline, request, components))
    keyframe, frames = events[-1].keyframe, events[-1].frames
    assert [e.phase for e in events[:2]] == [names.PHASE_TEXT_ENCODING, names.PHASE_KEYFRAME]
    svd = {k: v for k, v in VIDEO.items() if k not in ("guidance_scale", "min_guidance_scale")}
    expected = diffusers_svd(tiny_svd, tiny_svd_assets, keyframe, TEXT["seed"], max_guidance_scale=2.5,
                             min_guidance_scale=1.0, **svd)
    assert_close_to(frames, expected)


def test_each_segment_is_diffusers_svd_given_the_frame_it_begins_at(tiny_svd, tiny_svd_assets: Path) -> None:
    """Window 4, overlap 1: segment 0 makes frames 0..3 from the image, segment 1 frames 3..6 from segment 0's
    frame 3, with the next seed; frame 3 is their cross-fade."""
    pipeline, components = ours_on(tiny_svd, tiny_svd_assets, native_num_frames=4, segment_overlap=1)
    image = np.tile(np.clip(SVD_IMAGE.astype(np.int16) * 3 // 2, 0, 255).astype(np.uint8), (2, 2, 1))  # 32 x 64
    request = make_svd_request(image=image, width=64, height=32, seed=11, **{**VIDEO, "num_frames": 7})
    video = run(pipeline(request, components))
    svd = {k: v for k, v in VIDEO.items() if k not in ("guidance_scale", "min_guidance_scale", "num_frames")}
    options = {"num_frames": 4, "max_guidance_scale": 2.5, "min_guidance_scale": 1.0, **svd}
    first = diffusers_svd(tiny_svd, tiny_svd_assets, image, 11, **options)
    ours_first = run(pipeline(dataclasses.replace(request, num_frames=4), components))  # the picture we gave it
    assert_close_to(ours_first, first)
    second = diffusers_svd(tiny_svd, tiny_svd_assets, ours_first[3], 12, **options)
    assert video.shape == (7, 32, 64, 3)
    assert_close_to(video[:3], first[:3])
    assert_close_to(video[4:], second[1:])
    fade = (first[3].astype(np.float32) + second[0].astype(np.float32)) / 2
    assert np.abs(video[3].astype(np.float32) - fade).max() <= 2
