"""LTX-Video's keyframe sampler: a video that starts at one picture and ends at another, as diffusers'
``LTXConditionPipeline`` makes it from two image conditions (the first at frame 0, the last at the last frame
asked for, both at strength 1). It is another sampler than text- and image-to-video's:

* the sigmas are ``linear_quadratic_schedule``'s, given as timesteps to the scheduler without dynamic shifting;
* the first picture's latent replaces the first latent frame's tokens; the last picture's latent is appended as
  extra tokens (before the video's) whose RoPE coordinates put it at its frame; the video's own coordinates are
  those of the causal VAE's last pixel frame of each latent frame (max(0, 8 f - 7)), divided by the fps;
* held tokens (mask 1) get timestep 0 and, every step, their clean latent plus seeded noise scaled by
  ``noise_scale`` x (t / 1000)^2; the scheduler steps each token at its own timestep (``per_token_timesteps``);
* the extra tokens are dropped before decoding.

The generator is drawn in diffusers' order: the video's noise, the first picture's latent sample, the last
picture's latent sample, the noise its (strength 1) condition is blended with, the held tokens' noise each step,
the decoder's noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import torch

IMAGE_CONDITION_NOISE_SCALE: Final = 0.15  # LTXConditionPipeline's image_cond_noise_scale
HELD: Final = 1.0  # a condition's strength: the tokens are the picture's


def linear_quadratic_schedule(num_steps: int, threshold_noise: float = 0.025) -> torch.Tensor:
    """diffusers' ``linear_quadratic_schedule`` (LTXConditionPipeline's sigmas): linear to ``threshold_noise``
    over the first half of the steps, quadratic after."""
    linear_steps = num_steps // 2
    if num_steps < 2:
        return torch.tensor([1.0])
    linear_sigma_schedule = [i * threshold_noise / linear_steps for i in range(linear_steps)]
    threshold_noise_step_diff = linear_steps - threshold_noise * num_steps
    quadratic_steps = num_steps - linear_steps
    quadratic_coef = threshold_noise_step_diff / (linear_steps * quadratic_steps**2)
    linear_coef = threshold_noise / linear_steps - 2 * threshold_noise_step_diff / (quadratic_steps**2)
    const = quadratic_coef * (linear_steps**2)
    quadratic = [quadratic_coef * (i**2) + linear_coef * i + const for i in range(linear_steps, num_steps)]
    sigmas = [1.0 - x for x in linear_sigma_schedule + quadratic + [1.0]]
    return torch.tensor(sigmas[:-1])


def keyframe_coords(
    shape: tuple[int, int, int], fps: float, temporal_scale: int, spatial_scale: int, frame_index: int = 0
) -> torch.Tensor:
    """The tokens' RoPE coordinates [1, 3, f*h*w] as LTXConditionPipeline makes them (``_prepare_video_ids``,
    ``_scale_video_ids``, then the time axis divided by the fps): latent frame f at pixel frame
    max(0, 8 f + 1 - 8) + ``frame_index``."""
    axes = [torch.arange(n) for n in shape]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=0).unsqueeze(0).reshape(1, 3, -1)
    scaled = grid * torch.tensor([temporal_scale, spatial_scale, spatial_scale])[None, :, None]
    scaled[:, 0] = (scaled[:, 0] + 1 - temporal_scale).clamp(min=0)
    scaled[:, 0] += frame_index
    coords = scaled.float()
    coords[:, 0] = coords[:, 0] * (1.0 / fps)
    return coords


@dataclass
class Keyframes:
    """What the keyframe sampler keeps between steps."""

    mask: torch.Tensor  # [1, S'] each token's condition strength (1: held), extra tokens first
    clean: torch.Tensor  # [1, S', C] the tokens before denoising (the held ones: the pictures' latents)
    extra_tokens: int  # the last picture's tokens, before the video's (dropped before decoding)
    noise_scale: float = IMAGE_CONDITION_NOISE_SCALE


def renoise_held(
    keyframes: Keyframes, latents: torch.Tensor, t: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """The held tokens back at their clean latents plus seeded noise x noise_scale x (t / 1000)^2
    (``add_noise_to_image_conditioning_latents``); the others as they are."""
    noise = torch.randn(latents.shape, generator=generator, dtype=torch.float32).to(latents.device)
    need_to_noise = (keyframes.mask > 1.0 - 1e-6).unsqueeze(-1)
    noised = keyframes.clean + keyframes.noise_scale * noise * ((t / 1000.0) ** 2)
    return torch.where(need_to_noise, noised, latents)


def token_timesteps(keyframes: Keyframes, t: torch.Tensor, batch: int) -> torch.Tensor:
    """Each token's timestep [batch, S']: the step's, at most (1 - strength) x 1000 (held tokens: 0)."""
    mask = keyframes.mask.repeat(batch, 1)
    return torch.min(t.expand(batch).unsqueeze(-1).float(), (1 - mask) * 1000.0)


def keep_held(keyframes: Keyframes, stepped: torch.Tensor, latents: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The stepped tokens where the step's time is below (1 - strength), the others as they were."""
    to_denoise = (t / 1000 - 1e-6 < (1.0 - keyframes.mask)).unsqueeze(-1)
    return torch.where(to_denoise, stepped, latents)
