"""benchmarks/gpu.py runs briefly here on the CPU at a tiny size (the same code path as the real-size GPU run,
which is ``gpu``-marked) so it cannot rot; the real-size architectures are checked on the meta device."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from benchmarks import gpu
from benchmarks.gpu_families import FAMILIES
from benchmarks.gpu_models import (
    LTX_TEXT_LENGTH,
    load_ltx_components,
    ltx_stage_flops,
    ltx_transformer_flops,
    real_size_networks,
    save_components,
    stage_flops,
)
from visualizr.export.families.animatediff.loader import AnimateDiffComponents
from visualizr.launcher import TritonServer

TINY = ["--size", "tiny", "--device", "cpu", "--dtype", "fp32", "--steps", "2", "--frames", "4"]
TINY += ["--height", "64", "--width", "64", "--repeats", "1"]


LTX_TINY = ["--family", "ltx-video", "--size", "tiny", "--device", "cpu", "--dtype", "fp32", "--steps", "2"]
LTX_TINY += ["--frames", "9", "--height", "64", "--width", "96", "--repeats", "1"]


def _check(result: dict, ways: tuple[str, ...], denoiser: str = "unet") -> None:
    assert set(result["medians"]) == set(ways)
    for way in ways:
        stages = result["medians"][way]
        assert set(stages) == {"text_encoder", denoiser, "vae_decoder", "other", "total"}
        assert all(stages[s] > 0 for s in ("text_encoder", denoiser, "vae_decoder"))
        assert stages["total"] >= stages[denoiser]
        assert math.isfinite(result["ratios"][way])
    assert all(result["flops"][s] > 0 for s in ("text_encoder", denoiser, "vae_decoder"))


@pytest.mark.slow
def test_tiny_run_on_cpu_matches_diffusers_frames(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = gpu.main([*TINY, "--json", str(tmp_path / "result.json")])
    _check(result, ("diffusers", "visualizr"))
    # Same weights, seed, scheduler and float32: Visualizr's loop makes diffusers' frames (rounding aside).
    assert result["frame_differences"]["visualizr"] <= 1
    out = capsys.readouterr().out
    assert "visualizr/diff" in out and "TFLOP" in out
    assert (tmp_path / "result.json").is_file()


@pytest.mark.slow
def test_tiny_ltx_run_on_cpu_matches_diffusers_ltx_pipeline(capsys: pytest.CaptureFixture[str]) -> None:
    """The LTX case's code path on the tiny demo: LTXPipeline and Visualizr's loop over the same modules, 9 frames
    (8k + 1) of 64 x 96, two steps with guidance."""
    result = gpu.main(LTX_TINY)
    _check(result, ("diffusers", "visualizr"), denoiser="transformer")
    assert result["frame_differences"]["visualizr"] <= 1  # test_ltx_video_loop's parity tolerance
    # the transformer's FLOPs: one forward at twice the batch (guidance) per step
    assert (
        result["flops"]["transformer"]
        == 2 * ltx_stage_flops(load_ltx_components("tiny", "cpu", torch.float32), 2, 9, 64, 96)["transformer"]
    )
    assert "ltx-video" in capsys.readouterr().out


@pytest.mark.slow
def test_tiny_ltx_run_in_bf16_on_cpu() -> None:
    """The GPU run's dtype on the CPU: the networks made in bf16 before the export describes them (its preview map
    is fitted by the VAE where it is, in its dtype), both pipelines in bf16."""
    result = gpu.main([*LTX_TINY, "--dtype", "bf16"])
    _check(result, ("diffusers", "visualizr"), denoiser="transformer")
    assert result["frame_differences"]["visualizr"] < 64  # bf16: the same video, roughly


@pytest.mark.integration
def test_tiny_run_through_triton(triton: TritonServer) -> None:
    """The demo repository is exported from the tiny weights: Triton runs the same model as diffusers."""
    result = gpu.main([*TINY, "--triton-url", triton.settings.triton_grpc_url])
    _check(result, ("diffusers", "visualizr", "triton"))
    assert result["frame_differences"]["triton"] <= 2  # onnxruntime vs torch, float32


@pytest.mark.integration
def test_tiny_ltx_run_through_triton(triton: TritonServer) -> None:
    result = gpu.main([*LTX_TINY, "--triton-url", triton.settings.triton_grpc_url])
    _check(result, ("diffusers", "visualizr", "triton"), denoiser="transformer")
    assert result["frame_differences"]["triton"] <= 2


@pytest.mark.parametrize("family", ["animatediff", "ltx-video"])
def test_saved_weights_load_back_for_the_export(family: str, tmp_path: Path) -> None:
    bench = FAMILIES[family]
    args = gpu.parse_args(["--family", family, "--size", "tiny", "--device", "cpu", "--dtype", "fp32"])
    components = bench.load(args)
    args.weights = save_components(components, tmp_path / "weights", bench.subfolders)
    loaded = bench.load(args)
    for name in ("text_encoder", bench.denoiser, "vae"):
        saved, back = getattr(components, name).state_dict(), getattr(loaded, name).state_dict()
        assert saved.keys() == back.keys() and all(torch.equal(saved[k], back[k]) for k in saved)


def test_each_family_s_default_case() -> None:
    ltx = gpu.parse_args(["--family", "ltx-video"])
    assert (ltx.frames, ltx.height, ltx.width, ltx.steps, ltx.model_id) == (121, 512, 768, 50, "ltx-video")
    assert ltx.torch_dtype == torch.bfloat16
    default = gpu.parse_args(["--steps", "3"])
    assert (default.family, default.frames, default.steps, default.dtype) == ("animatediff", 16, 3, "fp16")


def test_real_sizes_are_the_published_architectures() -> None:
    networks = real_size_networks("meta")
    millions = {name: sum(p.numel() for p in n.parameters()) / 1e6 for name, n in networks.items()}
    assert round(millions["text_encoder"], 1) == 123.1  # CLIP ViT-L/14 text model
    assert round(millions["vae"], 1) == 83.7  # SD VAE
    unet2d = sum(p.numel() for n, p in networks["unet"].named_parameters() if "motion_modules" not in n) / 1e6
    assert round(unet2d, 1) == 859.5  # SD1.5 UNet
    assert round(millions["unet"] - unet2d) == 453  # AnimateDiff v1.5-2 motion modules

    class Tokenizer:
        model_max_length = 77

    components = AnimateDiffComponents(Tokenizer(), scheduler=None, source_name="meta", **networks)
    flops = stage_flops(components, batch=1, frames=16, height=512, width=512)
    assert round(flops["unet"] / 1e12, 2) == 17.75  # per forward at 16x512x512, batch 1


@pytest.mark.gpu
@pytest.mark.parametrize("family", ["animatediff", "ltx-video"])
def test_real_size_on_the_gpu(family: str, capsys: pytest.CaptureFixture[str]) -> None:
    result = gpu.main(["--family", family, "--repeats", "1"])
    _check(result, ("diffusers", "visualizr"), FAMILIES[family].denoiser)
    print(capsys.readouterr().out)


def test_ltx_real_sizes_are_the_published_architectures() -> None:
    """LTX-Video 0.9.5's networks on the meta device, as the benchmark makes them (in bf16, with the demo's T5
    tokenizer): T5-XXL's encoder, the 2B transformer, the 0.9.5 VAE; the benchmark's FLOPs per stage at 768 x 512,
    121 frames, with guidance (batch 2)."""
    components = load_ltx_components("real", "meta", torch.bfloat16)
    networks = {name: getattr(components, name) for name in ("text_encoder", "transformer", "vae")}
    assert all(p.dtype == torch.bfloat16 for n in networks.values() for p in n.parameters())
    billions = {name: sum(p.numel() for p in n.parameters()) / 1e9 for name, n in networks.items()}
    assert round(billions["text_encoder"], 2) == 4.76  # T5 v1.1 XXL encoder
    assert round(billions["transformer"], 2) == 1.92
    vae = networks["vae"]
    assert (vae.spatial_compression_ratio, vae.temporal_compression_ratio, vae.config.latent_channels) == (32, 8, 128)
    assert vae.config.timestep_conditioning
    assert components.text_max_length == LTX_TEXT_LENGTH
    flops = ltx_stage_flops(components, batch=2, frames=121, height=512, width=768)
    assert flops["transformer"] == ltx_transformer_flops(2, 121, 512, 768)
    print({stage: round(n / 1e12, 2) for stage, n in flops.items()})
    assert flops["text_encoder"] > 2 * 2 * 4.5e9 * LTX_TEXT_LENGTH  # every weight but the embedding, per token
    assert flops["vae_decoder"] > 0


def test_ltx_flop_floor_is_the_transformer_s_matmuls_and_attention() -> None:
    """LTX-Video at 768 x 512, 121 frames (6144 tokens): every weight is used once per token (2 FLOPs per multiply
    and add) plus the attention's two [S, S] products per block, and nothing much else."""
    from benchmarks.gpu_models import LTX_VIDEO_TRANSFORMER

    config, tokens = LTX_VIDEO_TRANSFORMER, 16 * 16 * 24
    inner = config["num_attention_heads"] * config["attention_head_dim"]
    block_weights = 4 * inner * inner + 2 * 4 * inner * inner  # self-attention, feed-forward (x4)
    per_token = config["num_layers"] * (block_weights + 2 * inner * inner)  # + cross-attention queries and output
    text = config["num_layers"] * 2 * config["cross_attention_dim"] * inner * LTX_TEXT_LENGTH  # its keys, values
    attention = config["num_layers"] * (2 * 2 * tokens * tokens * inner + 2 * 2 * tokens * LTX_TEXT_LENGTH * inner)
    floor = 2 * (per_token * tokens + text) + attention
    flops = ltx_transformer_flops(1, 121, 512, 768)
    assert floor * 0.95 < flops < floor * 1.1, (flops, floor)
    assert ltx_transformer_flops(2, 121, 512, 768) == 2 * flops  # classifier-free guidance: twice the batch
