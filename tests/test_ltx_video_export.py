"""LTX-Video's export: the tiny demo (deterministic, saved as an LTXPipeline folder and loaded back through the
loader real weights use), the stand-ins its ONNX export traces (held to the originals), each network's ONNX file
against torch at batch > 1 and shapes it was not traced at, the TensorRT profiles, and the built repository."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.support.repository_layout import model_dirs
from visualizr import names
from visualizr.export.build_stamp import ExportOptions
from visualizr.export.families.ltx_video import EXPORT
from visualizr.export.families.ltx_video.loader import load_ltx_video
from visualizr.export.families.ltx_video.specs import NETWORK_SPECS, TOKENS, LTXVideoDims
from visualizr.export.families.ltx_video.tiny import SCHEDULER_CONFIG, build_tiny_pipeline, ensure_tiny_weights
from visualizr.export.families.ltx_video.tokenizer_training import build_t5_tokenizer, train_t5_tokenizer
from visualizr.export.families.ltx_video.wrappers import (
    DecomposedRMSNorm,
    TokenTimesteps,
    permuted_movedim,
    rotary_by_positive_axes,
)
from visualizr.export.specs import ShapeCase
from visualizr.families import get_family
from visualizr.families.ltx_video.loop import LTXVideoConfig
from visualizr.families.ltx_video.vocabulary import TRANSFORMER
from visualizr.model_card import read_model_card
from visualizr.pipeline.tokenizer import ClipTokenizer
from visualizr.pipeline_config import read_pipeline_config

pytestmark = pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")

MODEL_ID = "ltx-video"
FAMILY = get_family(MODEL_ID)
NETWORKS = ("text_encoder", "transformer", "vae")
PROMPTS = ["a red fox running through snow, cinematic", "", "Zebras! at dawn 123"]


@pytest.fixture(scope="module")
def tiny_ltx():
    return EXPORT.load(ExportOptions(repository=Path("unused"), family=MODEL_ID))


def test_tiny_build_is_deterministic(tmp_path: Path) -> None:
    tokenizer = train_t5_tokenizer(tmp_path / "tokenizer")
    first, second = build_tiny_pipeline(tokenizer), build_tiny_pipeline(tokenizer)
    for name in NETWORKS:
        a, b = getattr(first, name).state_dict(), getattr(second, name).state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    assert build_t5_tokenizer().to_str() == build_t5_tokenizer().to_str()


@pytest.mark.slow
def test_tiny_weights_are_an_ltx_pipeline_folder_that_reloads_identically() -> None:
    folder = ensure_tiny_weights()
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == "LTXPipeline"
    assert index["transformer"] == ["diffusers", "LTXVideoTransformer3DModel"]
    assert index["vae"] == ["diffusers", "AutoencoderKLLTXVideo"]
    assert index["text_encoder"] == ["transformers", "T5EncoderModel"]
    loaded, built = load_ltx_video(folder), build_tiny_pipeline(folder / "tokenizer")
    for name in NETWORKS:
        a, b = getattr(built, name).state_dict(), getattr(loaded, name).state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    assert (loaded.vae_scale_factor, loaded.vae_temporal_scale_factor, loaded.latent_channels) == (32, 8, 8)
    assert loaded.timestep_conditioning and loaded.vae.config.down_block_types[0] == "LTXVideo095DownBlock3D"
    parameters = sum(p.numel() for n in NETWORKS for p in getattr(loaded, n).parameters())
    assert parameters < 500_000  # a few hundred thousand


def test_the_loop_tokenizes_as_t5_tokenizer_fast() -> None:
    from transformers import T5TokenizerFast

    folder = ensure_tiny_weights() / "tokenizer"
    theirs = T5TokenizerFast.from_pretrained(str(folder))
    ours = ClipTokenizer.from_pretrained(folder)
    expected = theirs(PROMPTS + ["word " * 200], padding="max_length", max_length=128, truncation=True)
    got = ours(PROMPTS + ["word " * 200], max_length=128)
    np.testing.assert_array_equal(got.input_ids, np.array(expected.input_ids))
    np.testing.assert_array_equal(got.attention_mask, np.array(expected.attention_mask))
    assert got.input_ids[0, 0] != 2 and got.attention_mask[1].sum() == 1  # words are known; "" is just </s>


def test_scheduler_is_configured_as_ltx_ships_it() -> None:
    scheduler = load_ltx_video(ensure_tiny_weights()).scheduler
    assert type(scheduler).__name__ == "FlowMatchEulerDiscreteScheduler"
    assert {k: scheduler.config[k] for k in SCHEDULER_CONFIG} == SCHEDULER_CONFIG
    assert scheduler.config.use_dynamic_shifting


def test_rms_norm_stand_in_is_identical() -> None:
    generator = torch.Generator().manual_seed(0)
    for affine in (True, False):
        norm = torch.nn.RMSNorm(16, eps=1e-6, elementwise_affine=affine)
        if affine:
            torch.nn.init.normal_(norm.weight, generator=generator)
        x = torch.randn(3, 40, 16, generator=generator) * 5
        torch.testing.assert_close(DecomposedRMSNorm(norm)(x), norm(x), rtol=0, atol=2e-6)


def test_timesteps_stand_in_is_identical() -> None:
    from diffusers.models.embeddings import Timesteps

    timesteps = torch.rand(3, 37) * 1000  # per token: diffusers embeds them flattened
    for channels, flip, shift in ((256, True, 0), (31, False, 1)):
        original = Timesteps(channels, flip_sin_to_cos=flip, downscale_freq_shift=shift)
        expected = original(timesteps.flatten()).unflatten(0, (3, 37))
        assert torch.equal(TokenTimesteps(original)(timesteps), expected)


def test_rotary_stand_in_is_identical() -> None:
    from diffusers.models.transformers.transformer_ltx import apply_rotary_emb

    x, cos, sin = torch.randn(2, 15, 16), torch.randn(2, 15, 16), torch.randn(2, 15, 16)
    assert torch.equal(rotary_by_positive_axes(x, (cos, sin)), apply_rotary_emb(x, (cos, sin)))


def test_movedim_stand_in_is_identical() -> None:
    x = torch.randn(2, 3, 4, 6, 6)
    expected = [x.movedim(1, -1), x.movedim(-1, 1), x.movedim(0, 2)]
    with permuted_movedim():
        got = [x.movedim(1, -1), x.movedim(-1, 1), x.movedim(0, 2)]
    assert all(a.shape == b.shape and torch.equal(a, b) for a, b in zip(got, expected, strict=True))
    assert torch.Tensor.movedim.__name__ == "movedim"


def test_wrappers_compute_what_the_networks_compute(tiny_ltx) -> None:
    """The traced modules (stand-ins, coordinates as an input) against diffusers' own calls: the transformer at
    one timestep per sample (text-to-video) and per token (the first frame's at 0), the decoder, the encoder."""
    from visualizr.families.ltx_video.loop import video_coords

    specs = {spec.component: spec for spec in tiny_ltx.specs}
    transformer = tiny_ltx.networks[TRANSFORMER]
    sample, timestep, text, mask, _ = specs[TRANSFORMER].sample_inputs(ShapeCase(2, 3, 2, 4), seed=1)
    coords = video_coords((3, 2, 4), 24, 8, 32).repeat(2, 1, 1)
    per_sample = timestep[:, 0]
    for theirs_timestep in (per_sample, timestep):
        ours_timestep = theirs_timestep if theirs_timestep.ndim == 2 else per_sample[:, None].expand(2, 24)
        with torch.no_grad():
            ours = specs[TRANSFORMER].wrapper(transformer)(sample, ours_timestep, text, mask, coords)
            theirs = transformer(sample, text, theirs_timestep, mask, 3, 2, 4, (8 / 24, 32, 32), return_dict=False)
        torch.testing.assert_close(ours, theirs[0], rtol=0, atol=1e-6)
    vae = tiny_ltx.networks[names.VAE_DECODER]
    latents, decode_timestep = torch.randn(1, 8, 2, 2, 3), torch.tensor([0.05])
    with torch.no_grad():
        ours = specs[names.VAE_DECODER].wrapper(vae)(latents, decode_timestep)
        theirs = vae.decode(latents, decode_timestep, return_dict=False)[0]
    assert torch.equal(ours, theirs)
    pixels = torch.rand(2, 3, 64, 96) * 2 - 1
    with torch.no_grad():
        mean, std = specs[names.VAE_ENCODER].wrapper(vae)(pixels).chunk(2, dim=1)
        distribution = vae.encode(pixels.unsqueeze(2)).latent_dist
    assert mean.shape == (2, 8, 2, 3)
    assert torch.equal(mean, distribution.mean[:, :, 0]) and torch.equal(std, distribution.std[:, :, 0])


@pytest.mark.slow
@pytest.mark.parametrize("component", FAMILY.components)
def test_onnx_equals_torch_at_batch_above_one_and_unseen_shapes(tiny_ltx, component: str, tmp_path: Path) -> None:
    from visualizr.export.onnx_export import MAX_RELATIVE_ERROR, export_onnx, verify_onnx

    spec = next(s for s in tiny_ltx.specs if s.component == component)
    network = tiny_ltx.networks[component]
    factor = spec.case_factor(tiny_ltx.unet_downsample_factor)
    traced, cases = spec.trace_case(factor), spec.verification_cases(factor)
    assert all(case.batch > 1 for case in cases) and traced not in cases
    for axis in ("frames", "latent_height", "latent_width"):
        if component != names.TEXT_ENCODER:  # every axis of a video network differs from the trace
            assert all(getattr(case, axis) != getattr(traced, axis) for case in cases), axis
    export_onnx(spec, network, tmp_path / "model.onnx", traced)
    errors = verify_onnx(spec, network, tmp_path / "model.onnx", cases)
    assert len(errors) == len(cases) and max(errors) < MAX_RELATIVE_ERROR, errors


def test_tensorrt_profiles_and_t5_precision() -> None:
    from visualizr.export.families.ltx_video.cards import tiny_model_card
    from visualizr.export.model_cards import shape_limits
    from visualizr.export.tensorrt_build import engine_precision

    config = LTXVideoConfig(
        model_id=MODEL_ID,
        family=MODEL_ID,
        latent_channels=8,
        vae_scale_factor=32,
        vae_scaling_factor=1.0,
        text_max_length=128,
        vae_temporal_scale_factor=8,
        latents_mean=[0.0] * 8,
        latents_std=[1.0] * 8,
        timestep_conditioning=True,
    )
    limits = shape_limits(tiny_model_card(MODEL_ID, [], 32, 0), config)
    dims = LTXVideoDims(latent_channels=8, text_hidden_size=16)
    text, transformer, decoder, encoder = (spec(dims) for spec in NETWORK_SPECS)
    h = limits.latent_height
    assert (h.min, h.opt, h.max) == (2, 4, 32)
    # 161 frames max -> 21 latent frames (and a keyframe's 1); 9 by default -> 2; 2 at least -> 2
    tokens = transformer.axis_ranges(limits)[TOKENS]
    assert (tokens.min, tokens.opt, tokens.max) == (2 * 2 * 2, 2 * 4 * 4, 22 * 32 * 32)
    assert transformer.profiles(limits)[names.UNET_SAMPLE] == ((1, 8, 8), (2, 32, 8), (4, 22528, 8))
    assert decoder.profiles(limits)[names.VAE_LATENT] == ((1, 8, 2, 2, 2), (1, 8, 2, 4, 4), (1, 8, 21, 32, 32))
    assert transformer.profiles(limits)[names.UNET_TIMESTEP] == ((1, 8), (2, 32), (4, 22528))  # one per token
    assert encoder.profiles(limits)[names.VAE_ENCODER_PIXELS] == ((1, 3, 64, 64), (1, 3, 128, 128), (1, 3, 1024, 1024))
    assert [engine_precision(text, p) for p in ("fp16", "bf16", "fp8")] == ["fp32", "bf16", "fp32"]
    assert [engine_precision(transformer, p) for p in ("fp16", "fp8")] == ["fp16", "fp8"]


def test_model_card_pipeline_config_and_assets(exported_repository: Path) -> None:
    model_dir = exported_repository / MODEL_ID
    card = read_model_card(model_dir / "model_card.json")
    assert card.family == MODEL_ID and card.triton_models == [
        f"{MODEL_ID}_text_encoder",
        f"{MODEL_ID}_transformer",
        f"{MODEL_ID}_vae_decoder",
        f"{MODEL_ID}_vae_encoder",
        MODEL_ID,
    ]
    assert "8k+1" in card.notes and card.parameter("width").multiple_of == 32
    assert card.capabilities.supports_image_to_video and card.capabilities.supports_end_image
    config = read_pipeline_config(model_dir / "1" / "assets" / "pipeline.json", LTXVideoConfig)
    assert (config.vae_scale_factor, config.vae_temporal_scale_factor, config.text_max_length) == (32, 8, 128)
    assert (model_dir / "1" / "assets" / "tokenizer" / "tokenizer.json").is_file()
    for component in FAMILY.components:
        assert (exported_repository / f"{MODEL_ID}_{component}" / "1" / names.ONNX_FILENAME).is_file()


@pytest.mark.slow
def test_export_of_a_local_ltx_video_folder(tmp_path: Path) -> None:
    """`python -m visualizr.export --family ltx-video --weights DIR`: the loader the demo goes through."""
    import shutil

    from visualizr.export.__main__ import main, parse_args

    with pytest.raises(SystemExit):
        parse_args(["--family", MODEL_ID, "--weights", str(tmp_path)])  # not an LTXPipeline folder
    weights = tmp_path / "LTX-Video"
    shutil.copytree(ensure_tiny_weights(), weights)
    repository = tmp_path / "repository"
    argv = ["--family", MODEL_ID, "--weights", str(weights), "--model-id", "ltx", "--repository", str(repository)]
    assert main(argv) == 0
    card = read_model_card(repository / "ltx" / "model_card.json")
    assert (card.family, card.weights, card.name) == (MODEL_ID, "LTX-Video", "LTX-Video (LTX-Video)")
    assert card.parameter("num_frames").max == 161 and card.parameter("height").multiple_of == 32
    assert model_dirs(repository) == sorted(
        ["ltx", *FAMILY.component_models("ltx").values()]
    )
