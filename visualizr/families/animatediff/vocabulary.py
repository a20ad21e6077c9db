"""Tensor and component names of AnimateDiff's networks (the shared ones are in visualizr.names).

    text_encoder   input_ids int64 [B, 77] -> last_hidden_state float32 [B, 77, D]
    unet           (UNetMotionModel) sample float32 [B, 4, F, h, w], timestep float32 [B],
                   encoder_hidden_states float32 [B, 77, D] -> noise_pred float32 [B, 4, F, h, w];
                   with an IP-Adapter also image_embeds float32 [B, E] and ip_adapter_scale float32 [B]
    vae_decoder    latent_sample float32 [N, 4, h, w] -> image float32 [N, 3, 8h, 8w]
    vae_encoder    pixel_values float32 [N, 3, H, W] -> latent float32 [N, 4, H/8, W/8]
    image_encoder  (IP-Adapter's CLIPVisionModelWithProjection; only a model exported with ``--ip-adapter``)
                   pixel_values float32 [B, 3, S, S] (CLIP-normalised) -> image_embeds float32 [B, E]

The text and image encoders' names are shared with Stable Video Diffusion, so they live in visualizr.names.
"""

from __future__ import annotations

from typing import Final

from visualizr.names import (
    IMAGE_EMBEDS,
    IMAGE_ENCODER,
    IMAGE_ENCODER_PIXELS,
    TEXT_ENCODER,
    TEXT_HIDDEN_STATES,
    TEXT_INPUT_IDS,
)

# The IP-Adapter's scale per sample: its decoupled cross-attention is added times this (0: the plain UNet).
UNET_IP_ADAPTER_SCALE: Final = "ip_adapter_scale"

__all__ = [
    "IMAGE_EMBEDS",
    "IMAGE_ENCODER",
    "IMAGE_ENCODER_PIXELS",
    "TEXT_ENCODER",
    "TEXT_HIDDEN_STATES",
    "TEXT_INPUT_IDS",
    "UNET_IP_ADAPTER_SCALE",
]
