"""Live previews: a few frames of the latents projected to RGB by a per-model linear map (ComfyUI's latent
previews), on the device, never a VAE decode. ``pipeline.json``'s ``latent_rgb`` holds the map: fitted at export
from the model's own VAE decoder (``fit_latent_rgb``), or, when absent, ComfyUI's factors for SD1.5-VAE latents."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
import torch

from visualizr.pipeline_config import LatentRGB


class VaeGeometry(Protocol):
    """What the fit needs to know of a VAE (an export's loaded components have these)."""

    latent_channels: int
    vae_scaling_factor: float
    vae_scale_factor: int


MAX_PREVIEW_FRAMES = 4  # frames of a preview, evenly spread over the clip
MAX_PREVIEW_SIDE = 64  # latent cells on a preview frame's long side (pooled down beyond)

# ComfyUI's latent_rgb_factors of SD1.5 (comfy/latent_formats.py, SD15): 4 latent channels -> RGB in [-1, 1].
SD15_LATENT_RGB_FACTORS = (
    (0.3512, 0.2297, 0.3227),
    (0.3250, 0.4974, 0.2350),
    (-0.2829, 0.1762, 0.2721),
    (-0.2120, -0.2616, -0.6177),
)


SD15_LATENT_RGB = LatentRGB([list(row) for row in SD15_LATENT_RGB_FACTORS], [0.0, 0.0, 0.0])


def projection_for(latent_rgb: LatentRGB | None, latent_channels: int) -> LatentRGB | None:
    """The model's own map, else SD1.5's when its latents have SD1.5's 4 channels, else None (no previews)."""
    if latent_rgb is not None:
        return latent_rgb
    return SD15_LATENT_RGB if latent_channels == len(SD15_LATENT_RGB_FACTORS) else None


def preview_frames(frame_latents: torch.Tensor, projection: LatentRGB) -> np.ndarray:
    """Frame latents [F, C, h, w] (on any device) -> uint8 [F', h', w', 3] on the host: at most
    MAX_PREVIEW_FRAMES frames, pooled to at most MAX_PREVIEW_SIDE cells on the long side, projected to RGB."""
    count = frame_latents.shape[0]
    picked = torch.linspace(0, count - 1, min(count, MAX_PREVIEW_FRAMES)).round().long()
    latents = frame_latents[picked.to(frame_latents.device)].float()
    factor = -(-max(latents.shape[-2:]) // MAX_PREVIEW_SIDE)  # ceil
    if factor > 1:
        latents = torch.nn.functional.avg_pool2d(latents, factor, ceil_mode=True)
    factors = torch.tensor(projection.factors, dtype=torch.float32, device=latents.device)
    bias = torch.tensor(projection.bias, dtype=torch.float32, device=latents.device)
    rgb = torch.einsum("fchw,cr->fhwr", latents, factors) + bias
    return ((rgb + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8).cpu().numpy()


def fit_latent_rgb(
    decode: Callable[[torch.Tensor], torch.Tensor], vae: VaeGeometry, samples: int = 8, side: int = 8, seed: int = 0
) -> LatentRGB:
    """The least-squares linear map from latents (scaled, as the loop holds them) to the decoder's picture
    averaged over each latent cell's pixels; ``decode``: unscaled latents [N, C, h, w] -> images [N, 3, H, W]
    in [-1, 1]. Seeded, so an export writes the same map every time."""
    channels = vae.latent_channels
    generator = torch.Generator().manual_seed(seed)
    latents = torch.randn(samples, channels, side, side, generator=generator)
    with torch.no_grad():
        images = decode(latents / vae.vae_scaling_factor).float()
    target = torch.nn.functional.avg_pool2d(images, vae.vae_scale_factor)  # [N, 3, side, side]
    inputs = latents.permute(0, 2, 3, 1).reshape(-1, channels)
    inputs = torch.cat([inputs, torch.ones(inputs.shape[0], 1)], dim=1)
    solution = torch.linalg.lstsq(inputs, target.permute(0, 2, 3, 1).reshape(-1, 3)).solution  # [C + 1, 3]
    rows = [[round(float(v), 4) for v in row] for row in solution.tolist()]  # stable across thread counts
    return LatentRGB(rows[:-1], rows[-1])
