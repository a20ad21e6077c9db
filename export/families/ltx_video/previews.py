"""LTX-Video's previews' map (``visualizr.pipeline.previews``): fitted at export, for the demo and for given weights
alike (ComfyUI's factors are SD1.5's 4 channels; LTX has 128), from the model's own VAE decoder."""

from __future__ import annotations

from typing import Any

import torch

from visualizr.families.ltx_video.loop import LTXVideoConfig
from visualizr.pipeline.previews import fit_latent_rgb
from visualizr.pipeline_config import LatentRGB

FIT_SAMPLES = 16  # latent frames of 8 x 8 cells: 1024 cells for 129 unknowns per colour


def fit_preview_map(vae: Any, config: LTXVideoConfig) -> LatentRGB:
    """The least-squares map from the loop's (normalised) latents to the decoder's colours."""
    return fit_latent_rgb(latent_frames_decoder(vae, config), config, samples=FIT_SAMPLES)


def latent_frames_decoder(vae: Any, config: LTXVideoConfig) -> Any:
    """Latent frames [N, C, h, w] (divided by the scaling factor, as ``fit_latent_rgb`` gives them) decoded as one
    clip at the loop's decode timestep -> [N, 3, H, W]: each latent frame's picture, the mean of the frames it
    decodes to (the first latent frame makes one frame, each later one ``vae_temporal_scale_factor``). Run where
    the VAE's weights are, in their dtype (the GPU benchmark's networks are on the GPU in bf16)."""
    mean = torch.tensor(config.latents_mean).view(1, -1, 1, 1, 1)
    std = torch.tensor(config.latents_std).view(1, -1, 1, 1, 1)
    temb = torch.tensor([config.decode_timestep]) if config.timestep_conditioning else None

    def decode(latents: torch.Tensor) -> torch.Tensor:
        clip = latents.movedim(0, 1).unsqueeze(0) * std + mean  # [1, C, N, h, w], denormalised as the loop does
        clip, timestep = (None if t is None else t.to(vae.device, vae.dtype) for t in (clip, temb))
        video = vae.decode(clip, timestep).sample[0].to("cpu", torch.float32)  # [3, 1 + (N - 1) * scale, H, W]
        later = video[:, 1:].unflatten(1, (latents.shape[0] - 1, config.vae_temporal_scale_factor)).mean(2)
        return torch.cat([video[:, :1], later], dim=1).movedim(1, 0)

    return decode
