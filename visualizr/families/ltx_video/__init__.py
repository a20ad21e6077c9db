"""LTX-Video: a diffusion transformer (DiT) over the tokens of a whole clip's latents, conditioned on a T5
prompt, denoised by flow matching, decoded in one pass by a timestep-conditioned video VAE (32 x 32 x 8); from
an image, the image's latent is the first frame's tokens, held at timestep 0."""

from __future__ import annotations

import math
from typing import Final

from visualizr import names
from visualizr.families.base import Family, Network
from visualizr.families.ltx_video.vocabulary import TRANSFORMER

# LTX's scheduler stretches its sigmas to ``shift_terminal``: with one step that divides by zero (NaN timesteps; so
# does diffusers' LTXPipeline), so two steps is the least that runs.
MIN_STEPS: Final = 2


def latent_num_frames(num_frames: int, temporal_scale: int) -> int:
    """Latent frames of the shortest 8k + 1 clip (``temporal_scale`` = 8) with at least ``num_frames`` frames:
    LTX makes 8k + 1 frames, so other counts are made at the next such count and trimmed."""
    return math.ceil((num_frames - 1) / temporal_scale) + 1


FAMILY: Final = Family(
    name="ltx-video",
    kind="text-to-video",
    networks=(
        Network(names.TEXT_ENCODER),
        Network(TRANSFORMER, batched=True),
        Network(names.VAE_DECODER),
        Network(names.VAE_ENCODER),
    ),
    required_inputs=(
        names.IN_PROMPT,
        names.IN_WIDTH,
        names.IN_HEIGHT,
        names.IN_NUM_FRAMES,
        names.IN_NUM_INFERENCE_STEPS,
        names.IN_GUIDANCE_SCALE,
    ),
    optional_inputs=(
        names.IN_NEGATIVE_PROMPT,
        names.IN_SEED,
        names.IN_FPS,
        names.IN_PREVIEW_EVERY,
        names.IN_IMAGE,
        names.IN_END_IMAGE,
    ),
    pipeline="visualizr.families.ltx_video.loop:LTXVideoPipeline",
    # the image is the first frame as it is (LTXImageToVideoPipeline has no strength): motion_strength sets nothing
    motion=lambda strength: {},
)
