"""The networks the loop calls, behind one async protocol (in-process onnxruntime or torch, or Triton BLS).

Arrays are numpy on the CPU; with tensor I/O on a GPU they are torch tensors on the device
(``visualizr.pipeline.tensors``). The annotations name the numpy case."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Protocol

import numpy as np

from visualizr.names import (
    TEXT_HIDDEN_STATES,
    TEXT_INPUT_IDS,
    UNET_ENCODER_HIDDEN_STATES,
    UNET_NOISE_PRED,
    UNET_SAMPLE,
    UNET_TIMESTEP,
    VAE_ENCODER_LATENT,
    VAE_ENCODER_PIXELS,
    VAE_IMAGE,
    VAE_LATENT,
)


class Components(Protocol):
    async def encode_text(self, input_ids: np.ndarray) -> np.ndarray:
        """int64 [B, L] -> float32 last_hidden_state [B, L, D]."""
        ...

    async def unet(
        self, sample: np.ndarray, timestep: np.ndarray, encoder_hidden_states: np.ndarray
    ) -> np.ndarray:
        """float32 [B, 4, F, h, w], float32 [B], float32 [B, L, D] -> noise_pred float32 [B, 4, F, h, w]."""
        ...

    async def decode(self, latents: np.ndarray) -> np.ndarray:
        """float32 [N, 4, h, w] (divided by the scaling factor) -> image float32 [N, 3, 8h, 8w] in [-1, 1]."""
        ...

    async def encode_image(self, pixels: np.ndarray) -> np.ndarray:
        """float32 [N, 3, H, W] in [-1, 1] -> latent float32 [N, 4, H/8, W/8] (mean, not yet scaled)."""
        ...


class NetworkComponents(ABC):
    """The Components protocol written once over the tensor-name vocabulary: each method is one call of one
    network. Subclasses only say how a network is called (in-process onnxruntime, Triton BLS)."""

    @abstractmethod
    async def run(self, component: str, inputs: dict[str, np.ndarray], output: str) -> np.ndarray:
        """Call ``component`` (one of visualizr.names.COMPONENTS) and return its output tensor ``output``."""

    async def encode_text(self, input_ids: np.ndarray) -> np.ndarray:
        return await self.run("text_encoder", {TEXT_INPUT_IDS: input_ids}, TEXT_HIDDEN_STATES)

    async def unet(
        self, sample: np.ndarray, timestep: np.ndarray, encoder_hidden_states: np.ndarray
    ) -> np.ndarray:
        inputs = {UNET_SAMPLE: sample, UNET_TIMESTEP: timestep, UNET_ENCODER_HIDDEN_STATES: encoder_hidden_states}
        return await self.run("unet", inputs, UNET_NOISE_PRED)

    async def decode(self, latents: np.ndarray) -> np.ndarray:
        return await self.run("vae_decoder", {VAE_LATENT: latents}, VAE_IMAGE)

    async def encode_image(self, pixels: np.ndarray) -> np.ndarray:
        return await self.run("vae_encoder", {VAE_ENCODER_PIXELS: pixels}, VAE_ENCODER_LATENT)
