"""AnimateDiff's model-card defaults: the tiny demo's and those of real weights."""

from __future__ import annotations

from typing import Final

import msgspec

from visualizr.export.model_cards import TINY_WEIGHTS_LABEL, build_card, video_parameters
from visualizr.families.animatediff.context import ContextWindows
from visualizr.model_card import ModelCard, ParameterRange, Requirements

FAMILY: Final = "animatediff"
DISPLAY_NAME: Final = "AnimateDiff"
FPS_RANGE: Final = ParameterRange(min=1, max=30, default=8, description="Frames per second of the encoded video")
GUIDANCE_RANGE: Final = ParameterRange(
    min=1.0,
    max=20.0,
    default=7.5,
    description="Classifier-free guidance scale: higher follows the prompt more",
)
# FreeNoise context windows of every export (diffusers' enable_free_noise defaults): clips longer than one window,
# up to LONG_CLIP_MAX_FRAMES, are made in windows of `length` frames `stride` apart (capped at the motion adapter's
# positional-embedding length). The window is the card's native_num_frames.
CONTEXT_WINDOWS: Final = ContextWindows(length=16, stride=4, weighting="pyramid", noise="shuffle_context")
# IP-Adapter: the API's character_strength (the adapter scale of a character's reference picture).
CHARACTER_STRENGTH: Final = "character_strength"
CHARACTER_STRENGTH_RANGE: Final = ParameterRange(
    min=0.0,
    max=1.0,
    default=0.6,
    description="How closely the video follows the character's reference picture (the IP-Adapter scale)",
)
LONG_CLIP_MAX_FRAMES: Final = 120  # 5 s at 24 fps; memory and time grow linearly with the frames
MAX_SIZE: Final = 1024
# The tiny demo's defaults are chosen so that a prompt-only request finishes in well under 30 s on 2 CPU cores
# (see the export report: one UNet call at batch 2 and the VAE decode were measured at these sizes).
TINY_DEFAULT_SIZE: Final = 128
TINY_DEFAULT_FRAMES: Final = 16
TINY_DEFAULT_STEPS: Final = 20


def _card(parameters: dict[str, ParameterRange], native_frames: int, **fields) -> ModelCard:
    return build_card(
        FAMILY, "text-to-video", parameters, negative_prompt=True, native_num_frames=native_frames, **fields
    )


def tiny_model_card(model_id: str, triton_models: list[str], multiple_of: int, native_frames: int) -> ModelCard:
    sizes = (64, MAX_SIZE, TINY_DEFAULT_SIZE)
    parameters = video_parameters(
        sizes, multiple_of, (LONG_CLIP_MAX_FRAMES, TINY_DEFAULT_FRAMES), FPS_RANGE, TINY_DEFAULT_STEPS, GUIDANCE_RANGE
    )
    return _card(
        parameters,
        native_frames,
        id=model_id,
        name="AnimateDiff (tiny demo)",
        description=(
            "A tiny, randomly initialised AnimateDiff network (untrained, fixed seed) that ships with "
            "Visualizr so that the whole stack runs without downloading weights. It ignores the meaning of "
            "the prompt and makes abstract, noisy videos; export real AnimateDiff weights for real results."
        ),
        requirements=Requirements(gpu_memory_gb=0.5, vram_usage_gb=0.1, estimated_load_time_seconds=5.0),
        triton_models=triton_models,
        weights=TINY_WEIGHTS_LABEL,
        notes="Runs on CPU with onnxruntime; the same export builds TensorRT engines on a GPU.",
    )


def weights_model_card(
    model_id: str, name: str, source_name: str, triton_models: list[str], multiple_of: int, native_frames: int
) -> ModelCard:
    sizes = (256, MAX_SIZE, 512 - 512 % multiple_of)
    frames = (LONG_CLIP_MAX_FRAMES, min(16, native_frames))
    parameters = video_parameters(sizes, multiple_of, frames, FPS_RANGE, 25, GUIDANCE_RANGE)
    return _card(
        parameters,
        native_frames,
        id=model_id,
        name=name,
        description=f"AnimateDiff text-to-video exported from the local weights {source_name!r}.",
        requirements=Requirements(gpu_memory_gb=10.0, vram_usage_gb=8.0, estimated_load_time_seconds=60.0),
        triton_models=triton_models,
        weights=source_name,
    )


def with_ip_adapter(card: ModelCard) -> ModelCard:
    """The card of a model exported with an IP-Adapter: it takes a reference picture and a character_strength."""
    capabilities = msgspec.structs.replace(card.capabilities, supports_ip_adapter=True)
    parameters = {**card.parameters, CHARACTER_STRENGTH: CHARACTER_STRENGTH_RANGE}
    return msgspec.structs.replace(card, capabilities=capabilities, parameters=parameters)
