"""Tensor and component names of AnimateDiff's networks (the shared ones are in visualizr.names).

    text_encoder  input_ids int64 [B, 77] -> last_hidden_state float32 [B, 77, D]
    unet          (UNetMotionModel) sample float32 [B, 4, F, h, w], timestep float32 [B],
                  encoder_hidden_states float32 [B, 77, D] -> noise_pred float32 [B, 4, F, h, w]
    vae_decoder   latent_sample float32 [N, 4, h, w] -> image float32 [N, 3, 8h, 8w]
    vae_encoder   pixel_values float32 [N, 3, H, W] -> latent float32 [N, 4, H/8, W/8]

The text encoder's names are shared with Stable Video Diffusion's keyframe stage, so they live in visualizr.names.
"""

from __future__ import annotations

from visualizr.names import TEXT_ENCODER, TEXT_HIDDEN_STATES, TEXT_INPUT_IDS

__all__ = ["TEXT_ENCODER", "TEXT_HIDDEN_STATES", "TEXT_INPUT_IDS"]
