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

The keyframe stage (text-to-video: a Stable Diffusion-class model makes the first frame from the prompt), when the
model was exported with one: ``keyframe_`` + the shared names (visualizr.pipeline.text_to_image):

    keyframe_text_encoder  (CLIPTextModel) input_ids int64 [B, 77] -> last_hidden_state float32 [B, 77, D]
    keyframe_unet          (UNet2DConditionModel) sample float32 [B, 4, h, w], timestep float32 [B],
                           encoder_hidden_states float32 [B, 77, D] -> noise_pred float32 [B, 4, h, w]
    keyframe_vae_decoder   (AutoencoderKL) latent_sample float32 [N, 4, h, w] -> image float32 [N, 3, 8h, 8w]
"""

from __future__ import annotations

from typing import Final

from visualizr import names

IMAGE_ENCODER: Final = names.IMAGE_ENCODER  # shared with AnimateDiff's IP-Adapter (visualizr.names)
IMAGE_ENCODER_PIXELS: Final = names.IMAGE_ENCODER_PIXELS
IMAGE_EMBEDS: Final = names.IMAGE_EMBEDS
UNET_ADDED_TIME_IDS: Final = "added_time_ids"

KEYFRAME_PREFIX: Final = "keyframe_"
KEYFRAME_TEXT_ENCODER: Final = KEYFRAME_PREFIX + names.TEXT_ENCODER
KEYFRAME_UNET: Final = KEYFRAME_PREFIX + names.UNET
KEYFRAME_VAE_DECODER: Final = KEYFRAME_PREFIX + names.VAE_DECODER
