"""benchmarks/gpu.py runs briefly here on the CPU at a tiny size (the same code path as the real-size GPU run,
which is ``gpu``-marked) so it cannot rot; the real-size architectures are checked on the meta device."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from benchmarks import gpu
from benchmarks.gpu_models import load_components, real_size_networks, save_components, stage_flops
from visualizr.export.families.animatediff.loader import AnimateDiffComponents
from visualizr.launcher import TritonServer

TINY = ["--size", "tiny", "--device", "cpu", "--dtype", "fp32", "--steps", "2", "--frames", "4"]
TINY += ["--height", "64", "--width", "64", "--repeats", "1"]


def _check(result: dict, ways: tuple[str, ...]) -> None:
    assert set(result["medians"]) == set(ways)
    for way in ways:
        stages = result["medians"][way]
        assert set(stages) == {"text_encoder", "unet", "vae_decoder", "other", "total"}
        assert stages["unet"] > 0 and stages["total"] >= stages["unet"]
        assert math.isfinite(result["ratios"][way])
    assert result["flops"]["unet"] > 0


@pytest.mark.slow
def test_tiny_run_on_cpu_matches_diffusers_frames(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = gpu.main([*TINY, "--json", str(tmp_path / "result.json")])
    _check(result, ("diffusers", "visualizr"))
    # Same weights, seed, scheduler and float32: Visualizr's loop makes diffusers' frames (rounding aside).
    assert result["frame_differences"]["visualizr"] <= 1
    out = capsys.readouterr().out
    assert "visualizr/diff" in out and "TFLOP" in out
    assert (tmp_path / "result.json").is_file()


@pytest.mark.integration
def test_tiny_run_through_triton(triton: TritonServer) -> None:
    """The demo repository is exported from the tiny weights: Triton runs the same model as diffusers."""
    result = gpu.main([*TINY, "--triton-url", triton.settings.triton_grpc_url])
    _check(result, ("diffusers", "visualizr", "triton"))
    assert result["frame_differences"]["triton"] <= 2  # onnxruntime vs torch, float32


def test_saved_weights_load_back_for_the_export(tmp_path: Path) -> None:
    components = load_components("tiny", "cpu")
    loaded = load_components("tiny", "cpu", weights=save_components(components, tmp_path / "weights"))
    for name in ("text_encoder", "unet", "vae"):
        saved, back = getattr(components, name).state_dict(), getattr(loaded, name).state_dict()
        assert saved.keys() == back.keys() and all(torch.equal(saved[k], back[k]) for k in saved)


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
def test_real_size_on_the_gpu(capsys: pytest.CaptureFixture[str]) -> None:
    result = gpu.main(["--repeats", "1"])
    _check(result, ("diffusers", "visualizr"))
    print(capsys.readouterr().out)


def test_ltx_flop_floor_is_the_transformer_s_matmuls_and_attention() -> None:
    """LTX-Video at 768 x 512, 121 frames (6144 tokens): every weight is used once per token (2 FLOPs per multiply
    and add) plus the attention's two [S, S] products per block, and nothing much else."""
    from benchmarks.gpu_models import LTX_TEXT_LENGTH, LTX_VIDEO_TRANSFORMER, ltx_transformer_flops

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
