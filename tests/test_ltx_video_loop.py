"""LTX-Video's loop against diffusers' LTXPipeline (text) and LTXImageToVideoPipeline (image) on the tiny demo's
real networks (in torch and over the exported ONNX files), and its own rules (frame counts, tokens' coordinates,
cancellation)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import torch

from visualizr import names
from visualizr.families.ltx_video import MIN_STEPS, latent_num_frames
from visualizr.families.ltx_video.loop import LTXVideoPipeline, calculate_shift, video_coords
from visualizr.families.ltx_video.vocabulary import TRANSFORMER
from visualizr.pipeline.assets import SchedulerFactory
from visualizr.pipeline.errors import Cancelled
from visualizr.pipeline.request import GenerationRequest
from visualizr.pipeline.tokenizer import ClipTokenizer
from visualizr.pipeline.torch_components import TorchComponents

pytestmark = pytest.mark.slow


def run(coroutine):
    return asyncio.run(coroutine)


def request(**overrides) -> GenerationRequest:
    fields = dict(
        prompt="a red fox running through snow",
        negative_prompt="blurry",
        width=96,
        height=64,
        num_frames=9,
        num_inference_steps=3,
        guidance_scale=3.0,
        seed=7,
        fps=24,
    )
    return GenerationRequest(**{**fields, **overrides})


@pytest.mark.parametrize(("frames", "latent"), [(1, 1), (2, 2), (9, 2), (10, 3), (17, 3), (121, 16)])
def test_frames_are_made_at_the_next_8k_plus_1(frames: int, latent: int) -> None:
    assert latent_num_frames(frames, 8) == latent


def test_video_coords_are_diffusers_rope_grid() -> None:
    from diffusers.models.transformers.transformer_ltx import LTXVideoRotaryPosEmbed

    rope = LTXVideoRotaryPosEmbed(dim=48)
    hidden = torch.zeros(2, 3 * 4 * 5, 8)
    expected = rope(hidden, 3, 4, 5, (8 / 24, 32, 32))
    coords = video_coords((3, 4, 5), 24, 8, 32).repeat(2, 1, 1)
    for ours, theirs in zip(rope(hidden, video_coords=coords), expected, strict=True):
        assert torch.equal(ours, theirs)


def test_shift_is_diffusers() -> None:
    from diffusers.pipelines.ltx.pipeline_ltx import calculate_shift as diffusers_shift

    config = {"base_image_seq_len": 1024, "max_image_seq_len": 4096, "base_shift": 0.95, "max_shift": 2.05}
    assert calculate_shift(768, config) == diffusers_shift(768, 1024, 4096, 0.95, 2.05)


# -- against diffusers, on the tiny demo's real networks --
@pytest.fixture(scope="module")
def tiny_ltx(tmp_path_factory: pytest.TempPathFactory):
    from visualizr.export.build_stamp import ExportOptions
    from visualizr.export.families.ltx_video import EXPORT

    options = ExportOptions(repository=tmp_path_factory.mktemp("unused"), family="ltx-video")
    model = EXPORT.load(options)
    assets = tmp_path_factory.mktemp("assets")
    for dirname, asset in model.assets.items():
        asset.save_pretrained(str(assets / dirname))
    return model, assets


def our_pipeline(tiny_ltx) -> LTXVideoPipeline:
    model, assets = tiny_ltx
    return LTXVideoPipeline(
        model.config, ClipTokenizer.from_pretrained(assets / "tokenizer"), SchedulerFactory.from_assets(assets)
    )


def picture(height: int, width: int) -> np.ndarray:
    """A source image with structure on both axes: uint8 [H, W, 3]."""
    y, x = np.mgrid[0:height, 0:width]
    red = (255 * x / width).astype(np.uint8)
    green = (255 * (((x // 16) + (y // 16)) % 2)).astype(np.uint8)
    blue = (255 * y / height).astype(np.uint8)
    return np.stack([red, green, blue], axis=-1)


def diffusers_frames(tiny_ltx, req: GenerationRequest) -> np.ndarray:
    """diffusers' frames: LTXPipeline, with an image LTXImageToVideoPipeline (the image at the video's size), with
    an end image too LTXConditionPipeline (the images at frames 0 and num_frames - 1; its explicit timesteps with
    the scheduler's dynamic shifting off, which would refuse them)."""
    from diffusers import FlowMatchEulerDiscreteScheduler, LTXConditionPipeline, LTXImageToVideoPipeline, LTXPipeline
    from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition
    from PIL import Image

    model, assets = tiny_ltx
    scheduler = SchedulerFactory.from_assets(assets)()
    pipeline_class, image = LTXPipeline, {}
    if req.end_image is not None:
        scheduler = FlowMatchEulerDiscreteScheduler.from_config(scheduler.config, use_dynamic_shifting=False)
        first = LTXVideoCondition(image=Image.fromarray(req.image), frame_index=0)
        last = LTXVideoCondition(image=Image.fromarray(req.end_image), frame_index=req.num_frames - 1)
        pipeline_class, image = LTXConditionPipeline, {"conditions": [first, last]}
    elif req.image is not None:
        pipeline_class, image = LTXImageToVideoPipeline, {"image": Image.fromarray(req.image)}
    reference = pipeline_class(
        scheduler=scheduler,
        vae=model.networks[names.VAE_DECODER],
        text_encoder=model.networks[names.TEXT_ENCODER],
        tokenizer=model.assets["tokenizer"],
        transformer=model.networks[TRANSFORMER],
    )
    reference.set_progress_bar_config(disable=True)
    frames = latent_num_frames(req.num_frames, 8) * 8 - 7
    video = reference(
        **image,
        prompt=req.prompt,
        negative_prompt=req.negative_prompt,
        width=req.width,
        height=req.height,
        num_frames=frames,
        frame_rate=req.fps,
        num_inference_steps=req.num_inference_steps,
        guidance_scale=req.guidance_scale,
        generator=torch.Generator().manual_seed(req.seed),
        decode_timestep=model.config.decode_timestep,
        decode_noise_scale=model.config.decode_noise_scale,
        max_sequence_length=model.config.text_max_length,
        output_type="np",
    ).frames[0]
    return (np.asarray(video) * 255).round().astype(np.uint8)[: req.num_frames]


def assert_close(frames: np.ndarray, expected: np.ndarray) -> None:
    assert frames.shape == expected.shape
    difference = np.abs(frames.astype(np.int16) - expected.astype(np.int16))
    print(f"largest difference from diffusers: {difference.max()} (of 255)")
    assert difference.max() <= 1, f"frames differ from diffusers' by up to {difference.max()}"
    assert frames.std() > 1  # not a constant picture


@pytest.mark.parametrize("overrides", [{}, {"guidance_scale": 1.0, "num_frames": 7, "fps": 25}])
def test_frames_equal_diffusers_ltx_pipeline(tiny_ltx, overrides: dict) -> None:
    model, _ = tiny_ltx
    req = request(**overrides)
    frames = run(our_pipeline(tiny_ltx)(req, TorchComponents.from_specs(model.specs, model.networks)))
    assert frames.shape == (req.num_frames, req.height, req.width, 3)
    assert_close(frames, diffusers_frames(tiny_ltx, req))


@pytest.mark.parametrize("overrides", [{}, {"guidance_scale": 1.0, "num_frames": 12, "width": 64, "height": 96}])
def test_frames_from_an_image_equal_diffusers_image_to_video_pipeline(tiny_ltx, overrides: dict) -> None:
    model, _ = tiny_ltx
    req = request(**overrides)
    req = request(**overrides, image=picture(req.height, req.width))
    components = TorchComponents.from_specs(model.specs, model.networks)
    frames = run(our_pipeline(tiny_ltx)(req, components))
    assert frames.shape == (req.num_frames, req.height, req.width, 3)
    assert_close(frames, diffusers_frames(tiny_ltx, req))
    text_only = run(our_pipeline(tiny_ltx)(request(**overrides), components))
    assert not np.array_equal(frames, text_only)  # the image changed the video


@pytest.mark.parametrize(
    "overrides", [{}, {"guidance_scale": 1.0, "num_frames": 12, "width": 64, "height": 96, "num_inference_steps": 4}]
)
def test_frames_from_two_images_equal_diffusers_condition_pipeline(tiny_ltx, overrides: dict) -> None:
    model, _ = tiny_ltx
    req = request(**overrides)
    first, last = picture(req.height, req.width), 255 - picture(req.height, req.width)
    req = request(**overrides, image=first, end_image=last)
    components = TorchComponents.from_specs(model.specs, model.networks)
    frames = run(our_pipeline(tiny_ltx)(req, components))
    assert frames.shape == (req.num_frames, req.height, req.width, 3)
    assert_close(frames, diffusers_frames(tiny_ltx, req))
    from_first = run(our_pipeline(tiny_ltx)(request(**overrides, image=first), components))
    assert not np.array_equal(frames, from_first)  # the end image changed the video


@pytest.mark.parametrize("images", [0, 1, 2])  # text, from an image, keyframes
def test_frames_over_the_exported_onnx_files_equal_diffusers(tiny_ltx, model_repository: Path, images: int) -> None:
    from visualizr.pipeline.onnx_components import OnnxComponents

    first = picture(64, 96)
    pictures = [{}, {"image": first}, {"image": first, "end_image": 255 - first}][images]
    req = request(num_frames=12, fps=25, seed=3, **pictures)  # 17 made, 12 kept
    components = OnnxComponents.from_repository(model_repository, "ltx-video", intra_op_num_threads=2)
    frames = run(our_pipeline(tiny_ltx)(req, components))
    assert_close(frames, diffusers_frames(tiny_ltx, req))


def test_cancel_stops_before_the_next_transformer_call(tiny_ltx) -> None:
    model, _ = tiny_ltx
    components = TorchComponents.from_specs(model.specs, model.networks)
    calls: list[str] = []

    class Counting:
        async def run(self, component, inputs, output):
            calls.append(component)
            return await components.run(component, inputs, output)

    events = []

    async def collect():
        async for event in our_pipeline(tiny_ltx).generate(request(), Counting(), lambda: len(events) >= 2):
            events.append(event)

    with pytest.raises(Cancelled):
        run(collect())
    assert calls == [names.TEXT_ENCODER, TRANSFORMER]  # the text, one step, then nothing
    calls.clear(), events.clear()

    async def collect_from_image():
        req = request(image=picture(64, 96))
        async for event in our_pipeline(tiny_ltx).generate(req, Counting(), lambda: len(events) >= 2):
            events.append(event)

    with pytest.raises(Cancelled):
        run(collect_from_image())
    assert calls == [names.TEXT_ENCODER, names.VAE_ENCODER, TRANSFORMER]


def test_one_step_is_refused_by_the_loop_and_the_card(tiny_ltx) -> None:
    """One step makes NaN timesteps (LTX's terminal shift; diffusers' LTXPipeline fails alike): the card's minimum
    is two and the loop refuses fewer before any network runs."""
    from visualizr.export.families.ltx_video.cards import tiny_model_card
    from visualizr.pipeline.errors import InvalidRequest

    assert tiny_model_card("ltx-video", [], 32, 0).parameters["num_inference_steps"].min == MIN_STEPS == 2
    with pytest.raises(InvalidRequest, match="num_inference_steps must be >= 2"):
        our_pipeline(tiny_ltx).check_inputs(GenerationRequest("a lake", 64, 64, 9, 1, 3.0, 42))


def test_previews_every_n_steps_from_the_exported_map_and_nothing_computed_without(tiny_ltx, monkeypatch) -> None:
    model, _ = tiny_ltx
    components = TorchComponents.from_specs(model.specs, model.networks)
    assert len(model.config.latent_rgb.factors) == model.config.latent_channels  # fitted at export (previews.py)
    computed = []
    original = LTXVideoPipeline.preview_latents
    monkeypatch.setattr(
        LTXVideoPipeline, "preview_latents", lambda self, state: computed.append(1) or original(self, state)
    )

    async def events(req: GenerationRequest) -> list:
        return [event async for event in our_pipeline(tiny_ltx).generate(req, components)]

    asked = run(events(request(num_frames=25, num_inference_steps=5, preview_every=2)))  # 4 latent frames
    previews = {event.step: event.preview for event in asked if event.preview is not None}
    assert sorted(previews) == [2, 4, 5] and len(computed) == 3
    assert all(p.dtype == np.uint8 and p.shape == (4, 2, 3, 3) for p in previews.values())  # 64 x 96 px: 2 x 3
    assert previews[2].tobytes() != previews[5].tobytes()  # the clean prediction changes as the video forms
    plain = run(events(request(num_frames=25, num_inference_steps=5)))
    assert [event.preview for event in plain] == [None] * len(plain) and len(computed) == 3  # nothing more computed
    np.testing.assert_array_equal(asked[-1].frames, plain[-1].frames)  # previews change nothing
    # from a picture (its tokens held) and from two (the last picture's tokens appended): the video's frames only
    first = picture(64, 96)
    for pictures in ({"image": first}, {"image": first, "end_image": 255 - first}):
        shown = run(events(request(num_frames=25, num_inference_steps=3, preview_every=1, **pictures)))
        assert [e.preview.shape for e in shown if e.preview is not None] == [(4, 2, 3, 3)] * 3
