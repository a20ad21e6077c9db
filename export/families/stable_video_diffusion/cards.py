"""Stable Video Diffusion's model-card defaults: the tiny demo's and those of real weights, and what a card says
about its stages (segments beyond the native window, text-to-video through a keyframe)."""

from __future__ import annotations

from typing import Final

import msgspec

from visualizr.export.model_cards import TINY_WEIGHTS_LABEL, build_card, video_parameters
from visualizr.families.stable_video_diffusion.segments import DEFAULT_OVERLAP
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
# Longer clips than one pass makes are made of segments, up to this many frames (5 s at 24 fps).
MAX_FRAMES: Final = 120
MAX_SIZE: Final = 1024
# The tiny demo's defaults are chosen so that a request finishes in seconds on 2 CPU cores.
TINY_DEFAULT_SIZE: Final = 128
TINY_DEFAULT_FRAMES: Final = 14
TINY_DEFAULT_STEPS: Final = 10
# Latent cells one temporal-decoder call takes: the decoder's mid-block attention holds (cells per frame)^2 floats
# per frame, so frames of 1024 x 1024 (128 x 128 cells) are decoded one at a time on the CPU demo (~1 GB each), and
# real weights decode 8 frames of 1024 x 576 per call, as diffusers' examples do.
TINY_DECODE_MAX_CELLS: Final = 128 * 128
WEIGHTS_DECODE_MAX_CELLS: Final = 8 * (1024 // 8) * (576 // 8)


def decode_max_cells(is_tiny: bool) -> int:
    return TINY_DECODE_MAX_CELLS if is_tiny else WEIGHTS_DECODE_MAX_CELLS


def _card(parameters: dict[str, ParameterRange], **fields) -> ModelCard:
    return build_card(FAMILY, "image-to-video", parameters, negative_prompt=False, **fields)


def tiny_model_card(model_id: str, triton_models: list[str], multiple_of: int, num_frames: int) -> ModelCard:
    sizes = (64, MAX_SIZE, TINY_DEFAULT_SIZE)
    frames = (MAX_FRAMES, min(TINY_DEFAULT_FRAMES, num_frames))
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
        notes="Runs on CPU with onnxruntime; 1024 x 1024 works but takes minutes.",
    )


def weights_model_card(
    model_id: str, name: str, source_name: str, triton_models: list[str], multiple_of: int, num_frames: int
) -> ModelCard:
    sizes = (256, MAX_SIZE, MAX_SIZE - MAX_SIZE % multiple_of)
    parameters = video_parameters(sizes, multiple_of, (MAX_FRAMES, num_frames), FPS_RANGE, 25, GUIDANCE_RANGE)
    return _card(
        parameters,
        id=model_id,
        name=name,
        description=f"Stable Video Diffusion image-to-video exported from the local weights {source_name!r}.",
        requirements=Requirements(gpu_memory_gb=16.0, vram_usage_gb=12.0, estimated_load_time_seconds=60.0),
        triton_models=triton_models,
        weights=source_name,
    )


def with_stages(card: ModelCard, native_num_frames: int, keyframe_source: str | None) -> ModelCard:
    """The card of a model whose one pass makes ``native_num_frames`` (longer clips: segments) and, with a keyframe
    stage (exported from the Stable Diffusion folder ``keyframe_source``), that takes text too."""
    segments = (
        f" Clips longer than the {native_num_frames} frames one pass makes (up to {card.parameter('num_frames').max})"
        " are made of segments, each conditioned on the previous one's frames and cross-faded into it."
    )
    if keyframe_source is None:
        notes = "Image-to-video only: the motion prompt is not used."
    else:
        segments += (
            " It takes text too, through a keyframe: a Stable Diffusion model"
            f"{'' if card.weights == TINY_WEIGHTS_LABEL else f' ({keyframe_source})'} first makes a picture from"
            " the prompt, negative prompt and seed, which it then animates."
        )
        notes = "Text (through a keyframe) or an image; an image's motion prompt is not used."
    capabilities = msgspec.structs.replace(
        card.capabilities,
        native_num_frames=native_num_frames,
        segment_overlap=DEFAULT_OVERLAP,
        text_to_video_via_keyframe=keyframe_source is not None,
        supports_negative_prompt=keyframe_source is not None,
    )
    return msgspec.structs.replace(
        card, description=card.description + segments, notes=f"{notes} {card.notes}".strip(), capabilities=capabilities
    )
