"""AnimateDiff with an IP-Adapter: the tiny adapter in the h94/IP-Adapter layout and its reload, the exported UNet's
scale input, and the loop's frames against diffusers' own AnimateDiffPipeline with ``load_ip_adapter`` on the same
tiny weights and adapter (same seed), in-process over the exported ONNX files."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
import numpy as np
import pytest
import torch

from tests.support.diffusers_animatediff import diffusers_animatediff, diffusers_frames
from tests.support.images import reference_picture as picture
from visualizr import names
from visualizr.export.families.animatediff.ip_adapter import (
    IMAGE_ENCODER_DIRNAME,
    MODELS_DIRNAME,
    WEIGHT_NAMES,
    ensure_tiny_ip_adapter,
    load_ip_adapter,
    save_tiny_ip_adapter,
)
from visualizr.export.families.animatediff.specs import AnimateDiffDims, UNetSpec
from visualizr.export.specs import ShapeCase
from visualizr.families.animatediff.vocabulary import IMAGE_EMBEDS, UNET_IP_ADAPTER_SCALE
from visualizr.pipeline import GenerationRequest
from visualizr.pipeline.assets import load_pipeline
from visualizr.pipeline.errors import InvalidRequest
from visualizr.pipeline.onnx_components import OnnxComponents, component_onnx_path, open_session
from visualizr.pipeline_config import assets_dir

MODEL_ID = "animatediff"
SCALE = 0.6
REQUEST = GenerationRequest(
    "a knight in a meadow", 64, 64, 6, 3, 7.5, 21, negative_prompt="blurry", ip_adapter_scale=SCALE
)


@pytest.fixture(scope="module")
def tiny():
    from visualizr.export.build_stamp import ExportOptions
    from visualizr.export.families.animatediff import EXPORT

    return EXPORT.load(ExportOptions(repository=Path("unused"), family="animatediff"))


@pytest.fixture(scope="module")
def diffusers_pipe():
    """diffusers' AnimateDiffPipeline on its own copy of the tiny weights, the tiny IP-Adapter loaded by
    ``load_ip_adapter`` from its folder (FreeNoise off: diffusers' fails on a clip shorter than one window)."""
    pipe = diffusers_animatediff()
    pipe.load_ip_adapter(str(ensure_tiny_ip_adapter()), subfolder=MODELS_DIRNAME, weight_name=WEIGHT_NAMES[0])
    return pipe


@pytest.fixture(scope="module")
def ours(model_repository: Path):
    pipeline = load_pipeline(assets_dir(model_repository / MODEL_ID))
    components = OnnxComponents.from_repository(model_repository, MODEL_ID, intra_op_num_threads=2)

    def run(request: GenerationRequest) -> np.ndarray:
        return asyncio.run(pipeline(request, components))

    return run


def with_picture(request: GenerationRequest, image: np.ndarray | None, scale: float = SCALE) -> GenerationRequest:
    return GenerationRequest(**{**request.__dict__, "ip_adapter_image": image, "ip_adapter_scale": scale})


# -- the adapter's folder ------------------------------------------------------------------------------------------


def test_tiny_adapter_is_saved_in_the_h94_layout_and_reloads(tmp_path: Path) -> None:
    save_tiny_ip_adapter(tmp_path)
    models = tmp_path / MODELS_DIRNAME
    assert (models / IMAGE_ENCODER_DIRNAME / "config.json").is_file()
    assert (models / IMAGE_ENCODER_DIRNAME / "preprocessor_config.json").is_file()
    from safetensors.torch import load_file

    keys = load_file(str(models / WEIGHT_NAMES[0])).keys()
    assert {k.split(".")[0] for k in keys} == {"image_proj", "ip_adapter"}
    first, again = load_ip_adapter(tmp_path), load_ip_adapter(ensure_tiny_ip_adapter())
    for part in ("image_proj", "ip_adapter"):
        assert first.state_dict[part].keys() == again.state_dict[part].keys()
        assert all(torch.equal(first.state_dict[part][k], again.state_dict[part][k]) for k in first.state_dict[part])
    pixels = torch.rand((1, 3, first.image_size, first.image_size))
    assert torch.equal(first.image_encoder(pixels).image_embeds, again.image_encoder(pixels).image_embeds)


def test_a_bin_adapter_loads_like_the_safetensors(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(ensure_tiny_ip_adapter() / MODELS_DIRNAME / IMAGE_ENCODER_DIRNAME,
                    tmp_path / MODELS_DIRNAME / IMAGE_ENCODER_DIRNAME)
    reference = load_ip_adapter(ensure_tiny_ip_adapter())
    torch.save(reference.state_dict, tmp_path / MODELS_DIRNAME / WEIGHT_NAMES[1])
    loaded = load_ip_adapter(tmp_path)
    for part, tensors in reference.state_dict.items():
        assert all(torch.equal(loaded.state_dict[part][k], v) for k, v in tensors.items())


# -- the UNet with the adapter --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_unet_at_scale_zero_is_the_plain_unet_bit_for_bit(tiny) -> None:
    from visualizr.export.families.animatediff.loader import load_animatediff
    from visualizr.export.families.animatediff.tiny import ensure_tiny_weights

    plain = load_animatediff(*ensure_tiny_weights()).unet
    dims = tiny.specs[1].dims
    ip_spec, plain_spec = UNetSpec(dims), UNetSpec(AnimateDiffDims(**{**dims.__dict__, "image_embed_dim": 0}))
    inputs = ip_spec.sample_inputs(ShapeCase(2, 5, 4, 6), seed=3)
    zero = (*inputs[:4], torch.zeros(2))
    with_adapter, without = ip_spec.wrapper(tiny.networks[names.UNET]), plain_spec.wrapper(plain)
    with torch.no_grad():
        plain_output = without(*inputs[:3])
        assert torch.equal(with_adapter(*zero), plain_output)
        assert not torch.equal(with_adapter(*inputs), plain_output)


@pytest.mark.slow
@pytest.mark.parametrize(("batch", "frames"), [(2, 7), (3, 21)])
def test_exported_unet_equals_diffusers_ip_adapter_unet(
    tiny, diffusers_pipe, model_repository: Path, batch: int, frames: int
) -> None:
    """Per-sample scales, at shapes the export was neither traced nor verified at (one window; three, FreeNoise),
    against diffusers' UNet with the adapter loaded by load_ip_adapter (one call per sample: its scale is one
    number)."""
    session = open_session(component_onnx_path(model_repository, MODEL_ID, names.UNET), intra_op_num_threads=2)
    generator = torch.Generator().manual_seed(frames)
    config = tiny.config
    sample = torch.randn((batch, 4, frames, 5, 7), generator=generator)
    timestep = torch.full((batch,), 321.0)
    text = torch.randn((batch, config.text_max_length, config.text_hidden_size), generator=generator)
    embeds = torch.randn((batch, config.ip_adapter_embed_dim), generator=generator)
    scales = torch.tensor([0.0, 0.6, 1.0][:batch])
    inputs = {names.UNET_SAMPLE: sample.numpy(), names.UNET_TIMESTEP: timestep.numpy(),
              names.UNET_ENCODER_HIDDEN_STATES: text.numpy(), IMAGE_EMBEDS: embeds.numpy(),
              UNET_IP_ADAPTER_SCALE: scales.numpy()}
    (actual,) = session.run([names.UNET_NOISE_PRED], inputs)
    windows = tiny.config.context
    if frames > windows.length:
        diffusers_pipe.enable_free_noise(windows.length, windows.stride, windows.weighting, windows.noise)
    for i in range(batch):
        diffusers_pipe.set_ip_adapter_scale(float(scales[i]))
        with torch.no_grad():
            reference = diffusers_pipe.unet(
                sample[i : i + 1], timestep[i : i + 1], text[i : i + 1].repeat_interleave(frames, dim=0),
                added_cond_kwargs={"image_embeds": [embeds[i : i + 1, None]]},
            ).sample.numpy()
        assert np.abs(actual[i : i + 1] - reference).max() <= 1e-4 * np.abs(reference).max()
    diffusers_pipe.disable_free_noise()


# -- the loop --------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_frames_equal_diffusers_animatediff_with_ip_adapter(tiny, diffusers_pipe, ours) -> None:
    request = with_picture(REQUEST, picture(1))
    diffusers_pipe.set_ip_adapter_scale(request.ip_adapter_scale)
    expected = diffusers_frames(
        diffusers_pipe, request, tiny.config.decode_chunk_size, ip_adapter_image=request.ip_adapter_image
    )
    frames = ours(request)
    assert frames.shape == expected.shape == (6, 64, 64, 3) and frames.std() > 1
    difference = int(np.abs(frames.astype(np.int16) - expected.astype(np.int16)).max())
    print(f"largest difference from diffusers' AnimateDiff + IP-Adapter over onnxruntime: {difference} (of 255)")
    assert difference <= 2  # onnxruntime vs torch, float32: the existing parity tolerance


@pytest.mark.slow
def test_same_picture_same_frames_another_picture_others_scale_zero_the_text_job(ours) -> None:
    first = ours(with_picture(REQUEST, picture(1)))
    np.testing.assert_array_equal(ours(with_picture(REQUEST, picture(1))), first)
    assert np.abs(ours(with_picture(REQUEST, picture(2))).astype(np.int16) - first).max() > 8
    text_job = ours(with_picture(REQUEST, None, 1.0))
    np.testing.assert_array_equal(ours(with_picture(REQUEST, picture(1), 0.0)), text_job)
    assert not np.array_equal(first, text_job)


def test_image_encoding_is_its_own_phase_before_the_prompt(model_repository: Path) -> None:
    pipeline = load_pipeline(assets_dir(model_repository / MODEL_ID))
    components = OnnxComponents.from_repository(model_repository, MODEL_ID, intra_op_num_threads=2)
    request = GenerationRequest(**{**with_picture(REQUEST, picture(1)).__dict__, "num_inference_steps": 1})

    async def phases(request: GenerationRequest) -> list[str]:
        return [event.phase async for event in pipeline.generate(request, components)]

    tail = [names.PHASE_TEXT_ENCODING, names.PHASE_FRAME_GENERATION, names.PHASE_DECODING, names.PHASE_DONE]
    assert asyncio.run(phases(request)) == [names.PHASE_IMAGE_ENCODING, *tail]
    assert asyncio.run(phases(with_picture(request, None))) == tail


def test_scale_out_of_range_and_a_picture_for_a_model_without_adapter_are_refused(model_repository: Path) -> None:
    pipeline = load_pipeline(assets_dir(model_repository / MODEL_ID))
    for scale in (-0.1, 1.5, float("nan")):
        with pytest.raises(InvalidRequest, match=names.IN_IP_ADAPTER_SCALE):
            pipeline.check_inputs(with_picture(REQUEST, picture(1), scale))
    plain = type(pipeline)(
        msgspec.structs.replace(pipeline.config, ip_adapter_embed_dim=0),
        pipeline.tokenizer,
        pipeline.scheduler_factory,
    )
    with pytest.raises(InvalidRequest, match=names.IN_IP_ADAPTER_IMAGE):
        plain.check_inputs(with_picture(REQUEST, picture(1)))
    plain.check_inputs(REQUEST)


# -- the export of local weights, with and without --ip-adapter --------------------------------------------------------


@pytest.mark.slow
def test_local_weights_get_the_adapter_only_with_ip_adapter(tmp_path: Path) -> None:
    from visualizr.export.__main__ import parse_args
    from visualizr.export.families.animatediff import EXPORT
    from visualizr.export.families.animatediff.tiny import ensure_tiny_weights

    sd_dir, adapter_dir = ensure_tiny_weights()
    base = ["--weights", str(sd_dir), "--motion-adapter", str(adapter_dir), "--model-id", "mine"]
    with_adapter = parse_args([*base, "--ip-adapter", str(ensure_tiny_ip_adapter())])[0]
    assert with_adapter.ip_adapter == ensure_tiny_ip_adapter().resolve()
    assert with_adapter.build_key() != parse_args(base)[0].build_key()
    for options, has_adapter in ((with_adapter, True), (parse_args(base)[0], False)):
        model = EXPORT.load(options)
        unet = next(spec for spec in model.specs if spec.component == names.UNET)
        assert (IMAGE_EMBEDS in unet.input_names) == has_adapter
        assert ("mine_image_encoder" in model.card.triton_models) == has_adapter
        assert model.card.capabilities.supports_ip_adapter == has_adapter
        assert ("character_strength" in model.card.parameters) == has_adapter
        assert model.config.ip_adapter_embed_dim == (16 if has_adapter else 0)
    with pytest.raises(SystemExit):  # not an IP-Adapter folder
        parse_args([*base, "--ip-adapter", str(tmp_path)])
    with pytest.raises(SystemExit):  # an AnimateDiff adapter
        parse_args(["--family", "stable-video-diffusion", "--ip-adapter", str(ensure_tiny_ip_adapter())])
