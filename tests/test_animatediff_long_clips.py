"""AnimateDiff clips longer than one context window: the loop's frames against diffusers' own AnimateDiffPipeline
with FreeNoise on the tiny demo's weights (same seed), in torch and over the exported ONNX files, and the exported
UNet against diffusers' FreeNoise UNet at frame counts it was not traced at."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.support.diffusers_animatediff import diffusers_animatediff, diffusers_frames
from visualizr import names
from visualizr.families.animatediff.loop import AnimateDiffPipeline
from visualizr.families.animatediff.vocabulary import IMAGE_EMBEDS, UNET_IP_ADAPTER_SCALE
from visualizr.pipeline import GenerationRequest
from visualizr.pipeline.onnx_components import OnnxComponents, component_onnx_path, open_session
from visualizr.pipeline.torch_components import TorchComponents

MODEL_ID = "animatediff"
# 16-frame windows 4 apart: windows at 0 and 4, then one more ending at frame 23 for the last 3 frames
REQUEST = GenerationRequest("a lighthouse at dusk", 64, 64, 23, 3, 7.5, 11, negative_prompt="blurry")


@pytest.fixture(scope="module")
def tiny():
    from visualizr.export.build_stamp import ExportOptions
    from visualizr.export.families.animatediff import EXPORT

    return EXPORT.load(ExportOptions(repository=Path("unused"), family="animatediff"))


@pytest.fixture(scope="module")
def free_noise(tiny):
    """diffusers' AnimateDiffPipeline on its own copy of the tiny weights, FreeNoise on with the export's windows."""
    pipe = diffusers_animatediff()
    windows = tiny.config.context
    pipe.enable_free_noise(windows.length, windows.stride, windows.weighting, windows.noise)
    return pipe


def _ours(tiny) -> AnimateDiffPipeline:
    scheduler = tiny.assets["scheduler"]

    def new_scheduler():
        return type(scheduler).from_config(scheduler.config)

    return AnimateDiffPipeline(tiny.config, tiny.assets["tokenizer"], new_scheduler)


def _largest_difference(frames: np.ndarray, expected: np.ndarray) -> int:
    assert frames.shape == expected.shape == (REQUEST.num_frames, REQUEST.height, REQUEST.width, 3)
    assert frames.std() > 1  # not a constant picture
    return int(np.abs(frames.astype(np.int16) - expected.astype(np.int16)).max())


@pytest.fixture(scope="module")
def expected(tiny, free_noise) -> np.ndarray:
    assert tiny.config.context.length < REQUEST.num_frames
    return diffusers_frames(free_noise, REQUEST, tiny.config.decode_chunk_size)


def test_long_clip_equals_diffusers_free_noise_in_torch(tiny, expected: np.ndarray) -> None:
    components = TorchComponents.from_specs(tiny.specs, tiny.networks)
    frames = asyncio.run(_ours(tiny)(REQUEST, components))
    difference = _largest_difference(frames, expected)
    print(f"largest difference from diffusers' FreeNoise: {difference} (of 255)")
    assert difference <= 1


def test_long_clip_equals_diffusers_free_noise_over_onnx(tiny, expected: np.ndarray, model_repository: Path) -> None:
    components = OnnxComponents.from_repository(model_repository, MODEL_ID, intra_op_num_threads=2)
    frames = asyncio.run(_ours(tiny)(REQUEST, components))
    difference = _largest_difference(frames, expected)
    print(f"largest difference from diffusers' FreeNoise over onnxruntime: {difference} (of 255)")
    assert difference <= 2  # onnxruntime vs torch, float32


@pytest.mark.parametrize(("batch", "frames"), [(2, 21), (3, 38)])
def test_exported_unet_equals_diffusers_free_noise_unet(
    tiny, free_noise, model_repository: Path, batch: int, frames: int
) -> None:
    """Frame counts it was not traced (25) nor verified (4, 7, 28, 35) at: 21 (one window short of aligned) and 38."""
    session = open_session(component_onnx_path(model_repository, MODEL_ID, names.UNET), intra_op_num_threads=2)
    generator = torch.Generator().manual_seed(frames)
    sample = torch.randn((batch, 4, frames, 5, 7), generator=generator)
    timestep = torch.full((batch,), 321.0)
    text = torch.randn((batch, tiny.config.text_max_length, tiny.config.text_hidden_size), generator=generator)
    with torch.no_grad():
        reference = free_noise.unet(sample, timestep, text.repeat_interleave(frames, dim=0)).sample.numpy()
    inputs = {names.UNET_SAMPLE: sample.numpy(), names.UNET_TIMESTEP: timestep.numpy(),
              names.UNET_ENCODER_HIDDEN_STATES: text.numpy(),  # and the demo's IP-Adapter off: the plain UNet
              IMAGE_EMBEDS: np.zeros((batch, tiny.config.ip_adapter_embed_dim), np.float32),
              UNET_IP_ADAPTER_SCALE: np.zeros(batch, np.float32)}
    (actual,) = session.run([names.UNET_NOISE_PRED], inputs)
    assert actual.shape == reference.shape
    assert np.abs(actual - reference).max() <= 1e-4 * np.abs(reference).max()
