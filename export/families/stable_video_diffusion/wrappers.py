"""Stable Video Diffusion's torch wrappers: forward takes a network's ONNX inputs in order, returns its output."""

from __future__ import annotations

import torch


class UNetWrapper(torch.nn.Module):
    def __init__(self, unet: torch.nn.Module) -> None:
        super().__init__()
        self.unet = unet

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        added_time_ids: torch.Tensor,
    ) -> torch.Tensor:
        return self.unet(sample, timestep, encoder_hidden_states, added_time_ids, return_dict=True).sample


class TemporalVAEDecoderWrapper(torch.nn.Module):
    """One clip per call: ``num_frames`` is the latents' first axis, traced as the graph's own Shape op (so the
    ONNX file takes any clip length with no frame-count input)."""

    def __init__(self, vae: torch.nn.Module) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, latent_sample: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(latent_sample, num_frames=latent_sample.shape[0], return_dict=True).sample


class KeyframeUNetWrapper(torch.nn.Module):
    """The keyframe stage's UNet2DConditionModel: one picture's noise prediction."""

    def __init__(self, unet: torch.nn.Module) -> None:
        super().__init__()
        self.unet = unet

    def forward(
        self, sample: torch.Tensor, timestep: torch.Tensor, encoder_hidden_states: torch.Tensor
    ) -> torch.Tensor:
        return self.unet(sample, timestep, encoder_hidden_states, return_dict=True).sample
