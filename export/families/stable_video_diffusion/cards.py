"""Stable Video Diffusion's model-card defaults: the tiny demo's and those of real weights."""

from __future__ import annotations

from typing import Final

from visualizr.export.model_cards import TINY_WEIGHTS_LABEL, build_card, video_parameters
from visualizr.model_card import ModelCard, ParameterRange, Requirements

FAMILY: Final = "stable-video-diffusion"
DISPLAY_NAME: Final = "Stable Video Diffusion"
# fps is also what SVD is conditioned on (fps - 1); 7 is diffusers' default.
FPS_RANGE: Final = ParameterRange(
    min=3, max=30, default=7, description="Frames per second of the encoded video (SVD is conditioned on it)"
)
GUIDANCE_RANGE: Final = ParameterRange(
    min=1.0,
    max=10.0,
    default=3.0,
    description="Image guidance at the last frame; it ramps up from 1.0 at the first frame",
)
# The tiny demo's defaults are chosen so that a request finishes in seconds on 2 CPU cores.
TINY_DEFAULT_SIZE: Final = 128
TINY_DEFAULT_FRAMES: Final = 14
TINY_DEFAULT_STEPS: Final = 10


def _card(parameters: dict[str, ParameterRange], **fields) -> ModelCard:
    return build_card(FAMILY, "image-to-video", parameters, negative_prompt=False, **fields)


def tiny_model_card(model_id: str, triton_models: list[str], multiple_of: int, num_frames: int) -> ModelCard:
    sizes = (64, 512, TINY_DEFAULT_SIZE)
    frames = (2 * num_frames, min(TINY_DEFAULT_FRAMES, num_frames))
    parameters = video_parameters(sizes, multiple_of, frames, FPS_RANGE, TINY_DEFAULT_STEPS, GUIDANCE_RANGE)
    return _card(
        parameters,
        id=model_id,
        name="Stable Video Diffusion (tiny demo)",
        description=(
            "A tiny, randomly initialised Stable Video Diffusion network (untrained, fixed seed) that ships with "
            "Visualizr so that image-to-video runs without downloading weights. It animates the source image "
            "into abstract, noisy videos; export real stable-video-diffusion-img2vid weights for real results."
        ),
        requirements=Requirements(gpu_memory_gb=0.5, vram_usage_gb=0.1, estimated_load_time_seconds=5.0),
        triton_models=triton_models,
        weights=TINY_WEIGHTS_LABEL,
        notes="Image-to-video only: the motion prompt is not used. Runs on CPU with onnxruntime.",
    )


def weights_model_card(
    model_id: str, name: str, source_name: str, triton_models: list[str], multiple_of: int, num_frames: int
) -> ModelCard:
    sizes = (256, 1024, 1024 - 1024 % multiple_of)
    parameters = video_parameters(sizes, multiple_of, (num_frames, num_frames), FPS_RANGE, 25, GUIDANCE_RANGE)
    return _card(
        parameters,
        id=model_id,
        name=name,
        description=f"Stable Video Diffusion image-to-video exported from the local weights {source_name!r}.",
        requirements=Requirements(gpu_memory_gb=16.0, vram_usage_gb=12.0, estimated_load_time_seconds=60.0),
        triton_models=triton_models,
        weights=source_name,
        notes="Image-to-video only: the motion prompt is not used.",
    )
