"""Tensor and component names only Stable Video Diffusion's networks use (shared ones: visualizr.names).

    image_encoder  (CLIPVisionModelWithProjection) pixel_values float32 [B, 3, S, S] (CLIP-normalised, S = 224)
                   -> image_embeds float32 [B, D]
    vae_encoder    pixel_values float32 [N, 3, H, W] in [-1, 1] -> latent float32 [N, 4, H/8, W/8] (mode, unscaled)
    unet           (UNetSpatioTemporalConditionModel) sample float32 [B, F, 8, h, w] (noisy latents ++ image
                   latents on the channels), timestep float32 [B], encoder_hidden_states float32 [B, 1, D],
                   added_time_ids float32 [B, 3] (fps - 1, motion_bucket_id, noise_aug_strength)
                   -> noise_pred float32 [B, F, 4, h, w]
    vae_decoder    (temporal decoder) latent_sample float32 [F, 4, h, w] (one clip of F frames, mixed by its
                   temporal layers) -> image float32 [F, 3, 8h, 8w] in [-1, 1]
"""

from __future__ import annotations

from typing import Final

IMAGE_ENCODER: Final = "image_encoder"
IMAGE_ENCODER_PIXELS: Final = "pixel_values"
IMAGE_EMBEDS: Final = "image_embeds"
UNET_ADDED_TIME_IDS: Final = "added_time_ids"
