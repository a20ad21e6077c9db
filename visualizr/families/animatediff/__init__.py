"""AnimateDiff: text-to-video (and image-to-video from a first image, img2img style) with a motion-module UNet;
with an IP-Adapter, conditioned on a reference picture too (a character's)."""

from __future__ import annotations

from typing import Final

from visualizr import names
from visualizr.families.animatediff.vocabulary import IMAGE_ENCODER, TEXT_ENCODER
from visualizr.families.base import Family, Network

FAMILY: Final = Family(
    name="animatediff",
    kind="text-to-video",
    networks=(
        Network(TEXT_ENCODER),
        Network(names.UNET, batched=True),
        Network(names.VAE_DECODER),
        Network(names.VAE_ENCODER),
        Network(IMAGE_ENCODER, optional=True),  # an IP-Adapter's (a model exported with --ip-adapter)
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
        names.IN_IP_ADAPTER_IMAGE,
        names.IN_IP_ADAPTER_SCALE,
        names.IN_PREVIEW_EVERY,
    ),
    pipeline="visualizr.families.animatediff.loop:AnimateDiffPipeline",
)
