"""The networks the loop calls, behind one async protocol (in-process onnxruntime or Triton BLS)."""

from __future__ import annotations

from typing import Protocol

import numpy as np


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
