"""Tensor and component names only LTX-Video's networks use (shared ones: visualizr.names).

text_encoder  (T5EncoderModel) input_ids int64 [B, L], attention_mask int64 [B, L] (1: a token; all ones but for
              keyframes, as diffusers' pipelines run T5) -> last_hidden_state float32 [B, L, D] (L = 128)
transformer   (LTXVideoTransformer3DModel) sample float32 [B, S, C] (the packed latents: S = frames x h x w
              tokens), timestep float32 [B, S] (per token: image-to-video's first frame at 0),
              encoder_hidden_states float32 [B, L, D], encoder_attention_mask float32 [B, L] (1: a token),
              video_coords float32 [B, 3, S] (each token's frame, y and x, in pixels and frames at the frame
              rate: RoPE's positions) -> noise_pred float32 [B, S, C]
vae_decoder   (AutoencoderKLLTXVideo, timestep-conditioned) latent_sample float32 [B, C, f, h, w] (the whole
              clip, denormalised), decode_timestep float32 [B] -> image float32 [B, 3, 8(f - 1) + 1, 32h, 32w]
vae_encoder   (AutoencoderKLLTXVideo, an image as a one-frame clip) pixel_values float32 [B, 3, H, W] in [-1, 1]
              -> latent_distribution float32 [B, 2C, H/32, W/32] (the mean, then the standard deviation)
"""

from __future__ import annotations

from typing import Final

TRANSFORMER: Final = "transformer"
ENCODER_ATTENTION_MASK: Final = "encoder_attention_mask"
VIDEO_COORDS: Final = "video_coords"
DECODE_TIMESTEP: Final = "decode_timestep"
LATENT_DISTRIBUTION: Final = "latent_distribution"
TEXT_ATTENTION_MASK: Final = "attention_mask"
