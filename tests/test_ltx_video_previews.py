"""LTX-Video's live previews, pure logic: its tokens unpacked to frames, flow matching's clean-latent prediction,
and the export's fit of its map from a video decoder (latent frame k -> the frames it decodes to)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from visualizr.export.families.ltx_video.previews import fit_preview_map
from visualizr.families.ltx_video.loop import LTXDenoising, LTXVideoConfig, LTXVideoPipeline, pack_latents
from visualizr.pipeline_config import LatentRGB

CHANNELS = 4
# channels 0..2 -> red, green, blue; channel 3 unused
IDENTITY = LatentRGB([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]], [0.0, 0.0, 0.0])


def config() -> LTXVideoConfig:
    return LTXVideoConfig(
        model_id="ltx-tiny",
        family="ltx-video",
        latent_channels=CHANNELS,
        vae_scale_factor=32,
        vae_scaling_factor=0.5,
        text_max_length=8,
        vae_temporal_scale_factor=8,
        latents_mean=[0.1, -0.2, 0.3, 0.0],
        latents_std=[2.0, 0.5, 1.5, 1.0],
        timestep_conditioning=True,
        latent_rgb=IDENTITY,
    )


def pipeline() -> LTXVideoPipeline:
    return LTXVideoPipeline(config(), tokenizer=None, scheduler_factory=FlowMatchEulerDiscreteScheduler)


def state(latents: torch.Tensor, steps: int = 4) -> LTXDenoising:
    """A generation of the unpacked ``latents`` [1, C, f, h, w], before its first step."""
    scheduler = FlowMatchEulerDiscreteScheduler()
    scheduler.set_timesteps(steps)
    generator = torch.Generator().manual_seed(0)
    return LTXDenoising(
        scheduler, scheduler.timesteps, pack_latents(latents), generator, {}, latent_shape=tuple(latents.shape[2:])
    )


def to_colour(value: torch.Tensor) -> np.ndarray:
    return ((value + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()


def test_a_preview_unpacks_the_tokens_to_frames_rows_and_columns() -> None:
    frames, height, width = 6, 3, 5
    latents = torch.zeros(1, CHANNELS, frames, height, width)
    latents[0, 0] = torch.arange(frames).view(-1, 1, 1) / 10  # red says the frame
    latents[0, 1] = torch.arange(height).view(1, -1, 1) / 10  # green the row
    latents[0, 2] = -torch.arange(width).view(1, 1, -1) / 10  # blue the column
    preview = pipeline().preview(state(latents))
    assert preview is not None and preview.shape == (4, height, width, 3)  # 4 of 6 frames: 0, 2, 3, 5
    np.testing.assert_array_equal(preview, to_colour(latents[0, :3, [0, 2, 3, 5]].permute(1, 2, 3, 0)))


def test_a_preview_shows_flow_matchings_clean_prediction_after_each_step() -> None:
    generator = torch.Generator().manual_seed(1)
    clean = torch.rand(1, CHANNELS, 2, 2, 3, generator=generator) - 0.5
    noise = torch.randn(clean.shape, generator=generator)
    run = state(noise)
    velocity = pack_latents(noise - clean)  # the exact flow: latents at sigma s are clean + s * (noise - clean)
    for t in run.timesteps:
        run.latents = run.scheduler.step(velocity, t, run.latents).prev_sample
        run.velocity = velocity
        torch.testing.assert_close(pipeline().preview_latents(run), clean, atol=1e-5, rtol=0)
    torch.testing.assert_close(run.latents, pack_latents(clean), atol=1e-5, rtol=0)  # the last step reached it


def test_the_fit_reads_each_latent_frame_from_the_frames_it_decodes() -> None:
    """A linear video decoder whose frames of latent frame k are k's colours (frame 0 alone, then 8 each) plus a
    flicker that averages out over each group of 8: the fit recovers its map in the loop's normalised latents."""
    true = torch.tensor([[0.5, -0.2, 0.1], [0.0, 0.3, 0.2], [-0.4, 0.1, 0.6], [0.2, 0.2, -0.3]])
    bias = torch.tensor([0.1, -0.05, 0.0])
    seen_timesteps = []

    def decode(z: torch.Tensor, temb: torch.Tensor | None) -> SimpleNamespace:  # [1, C, N, h, w] -> [1, 3, T, H, W]
        seen_timesteps.append(temb)
        colours = torch.einsum("bcfhw,cr->brfhw", z, true) + bias.view(1, 3, 1, 1, 1)
        later = colours[:, :, 1:].repeat_interleave(8, dim=2)
        later = later + torch.tensor([1.0, -1.0] * 4).repeat(colours.shape[2] - 1).view(1, 1, -1, 1, 1)
        video = torch.cat([colours[:, :, :1], later], dim=2)
        return SimpleNamespace(sample=video.repeat_interleave(32, dim=3).repeat_interleave(32, dim=4))

    loop_config = config()
    fitted = fit_preview_map(SimpleNamespace(decode=decode, device="cpu", dtype=torch.float32), loop_config)
    std, mean = torch.tensor(loop_config.latents_std), torch.tensor(loop_config.latents_mean)
    # the decoder sees z = latents / scaling * std + mean
    np.testing.assert_allclose(fitted.factors, (true * (std / 0.5)[:, None]).numpy(), atol=1e-3)
    np.testing.assert_allclose(fitted.bias, (mean @ true + bias).numpy(), atol=1e-3)
    assert [float(t) for t in seen_timesteps] == [pytest.approx(loop_config.decode_timestep)]
