"""Stable Video Diffusion: image-to-video with a spatio-temporal UNet conditioned on a CLIP image embedding and
the image's latent, decoded by a temporal VAE decoder. Text-to-video through a keyframe: a model exported with a
keyframe stage (a Stable Diffusion-class text-to-image model) makes the first frame from the prompt, then animates
it. Clips longer than the native window are made of overlapping segments (``segments``)."""

from __future__ import annotations

import math
from typing import Final

from visualizr import names
from visualizr.families.base import Family, Network
from visualizr.families.stable_video_diffusion.vocabulary import (
    IMAGE_ENCODER,
    KEYFRAME_TEXT_ENCODER,
    KEYFRAME_UNET,
    KEYFRAME_VAE_DECODER,
)

MAX_MOTION_BUCKET_ID: Final = 255  # SVD was trained on motion buckets 0..255
MAX_NOISE_AUG_STRENGTH: Final = 0.04  # at motion_strength 1; SVD's default 0.02 at 0.5


def motion_conditioning(motion_strength: float) -> dict[str, int | float]:
    """The API's motion_strength m in (0, 1] as SVD's conditioning: motion_bucket_id = floor(255 m) and
    noise_aug_strength = 0.04 m, so that m = 0.5 gives SVD's own defaults (127, 0.02) and more strength means
    more motion and an image followed less closely."""
    return {
        names.IN_MOTION_BUCKET_ID: math.floor(MAX_MOTION_BUCKET_ID * motion_strength + 1e-6),
        names.IN_NOISE_AUG_STRENGTH: round(MAX_NOISE_AUG_STRENGTH * motion_strength, 6),
    }


FAMILY: Final = Family(
    name="stable-video-diffusion",
    kind="image-to-video",
    networks=(
        Network(IMAGE_ENCODER),
        Network(names.VAE_ENCODER),
        Network(names.UNET, batched=True),
        Network(names.VAE_DECODER),
        Network(KEYFRAME_TEXT_ENCODER, optional=True),
        Network(KEYFRAME_UNET, batched=True, optional=True),
        Network(KEYFRAME_VAE_DECODER, optional=True),
    ),
    required_inputs=(
        names.IN_WIDTH,
        names.IN_HEIGHT,
        names.IN_NUM_FRAMES,
        names.IN_NUM_INFERENCE_STEPS,
        names.IN_GUIDANCE_SCALE,
    ),
    # the image, or (with a keyframe stage) the prompt to make the first frame from
    optional_inputs=(
        names.IN_IMAGE,
        names.IN_PROMPT,
        names.IN_NEGATIVE_PROMPT,
        names.IN_MIN_GUIDANCE_SCALE,
        names.IN_FPS,
        names.IN_MOTION_BUCKET_ID,
        names.IN_NOISE_AUG_STRENGTH,
        names.IN_SEED,
        names.IN_PREVIEW_EVERY,
    ),
    pipeline="visualizr.families.stable_video_diffusion.loop:StableVideoDiffusionPipeline",
    motion=motion_conditioning,
)
