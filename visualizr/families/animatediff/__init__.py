"""AnimateDiff: text-to-video (and image-to-video from a first image, img2img style) with a motion-module UNet."""

from __future__ import annotations

from typing import Final

from visualizr import names
from visualizr.families.animatediff.vocabulary import TEXT_ENCODER
from visualizr.families.base import Family, Network

FAMILY: Final = Family(
    name="animatediff",
    kind="text-to-video",
    networks=(
        Network(TEXT_ENCODER),
        Network(names.UNET, batched=True),
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
        names.IN_IMAGE,
        names.IN_STRENGTH,
        names.IN_PREVIEW_EVERY,
    ),
    pipeline="visualizr.families.animatediff.loop:AnimateDiffPipeline",
)
