"""What every family's model cards share, and the engine shape limits derived from a card.

A family's card defaults (names, descriptions, parameter ranges of its tiny demo and of real weights) live in
``export/families/<family>/cards.py``.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any, Final

from visualizr.export.specs import AxisRange, ShapeLimits
from visualizr.model_card import Capabilities, ModelCard, ParameterRange
from visualizr.pipeline_config import PipelineConfig

if TYPE_CHECKING:
    from visualizr.export.build_stamp import ExportOptions

CARD_VERSION: Final = "1.0.0"
SUPPORTED_FORMATS: Final = ["mp4", "gif"]
TINY_WEIGHTS_LABEL: Final = "random-tiny"  # ModelCard.weights of an embedded demo


def size_range(axis: str, low: int, high: int, default: int, multiple_of: int) -> ParameterRange:
    return ParameterRange(
        min=low, max=high, default=default, multiple_of=multiple_of, description=f"Video {axis} in pixels"
    )


def video_parameters(
    sizes: tuple[int, int, int],
    multiple_of: int,
    frames: tuple[int, int],
    fps: ParameterRange,
    default_steps: int,
    guidance: ParameterRange,
) -> dict[str, ParameterRange]:
    """The parameters every card has. ``sizes``: (min, max, default) pixels per side; ``frames``: (max, default)."""
    low, high, default = sizes
    max_frames, default_frames = frames
    return {
        "width": size_range("width", low, high, default, multiple_of),
        "height": size_range("height", low, high, default, multiple_of),
        "num_frames": ParameterRange(min=2, max=max_frames, default=default_frames, description="Frames to generate"),
        "fps": fps,
        "num_inference_steps": ParameterRange(
            min=1, max=50, default=default_steps, description="Denoising steps: more is slower and finer"
        ),
        "guidance_scale": guidance,
    }


def capabilities(
    parameters: dict[str, ParameterRange], *, negative_prompt: bool, image_to_video: bool, native_num_frames: int = 0
) -> Capabilities:
    width, height = parameters["width"], parameters["height"]
    frames, fps = parameters["num_frames"], parameters["fps"]
    return Capabilities(
        max_resolution=f"{width.max}x{height.max}",
        min_resolution=f"{width.min}x{height.min}",
        max_duration_seconds=round(frames.max / fps.min, 3),
        min_duration_seconds=round(frames.min / fps.max, 3),
        max_fps=int(fps.max),
        min_fps=int(fps.min),
        supported_formats=list(SUPPORTED_FORMATS),
        supports_negative_prompt=negative_prompt,
        supports_image_to_video=image_to_video,
        native_num_frames=native_num_frames,
    )


def build_card(
    family: str,
    kind: str,
    parameters: dict[str, ParameterRange],
    *,
    negative_prompt: bool,
    native_num_frames: int = 0,
    **fields: Any,
) -> ModelCard:
    """A card of ``family`` (``kind``: its type) whose capabilities follow from its parameters."""
    return ModelCard(
        family=family,
        version=CARD_VERSION,
        type=kind,
        capabilities=capabilities(
            parameters, negative_prompt=negative_prompt, image_to_video=True, native_num_frames=native_num_frames
        ),
        parameters=parameters,
        **fields,
    )


def model_card(
    cards: ModuleType, options: ExportOptions, triton_models: list[str], multiple_of: int, frames: int, source: str
) -> ModelCard:
    """The card of an export: ``cards`` is the family's cards module (``tiny_model_card``, ``weights_model_card``
    and ``DISPLAY_NAME``); ``frames`` the frames one pass of its UNet makes (the card's native_num_frames);
    ``source`` the weights' folder."""
    if options.is_tiny:
        return cards.tiny_model_card(options.id, triton_models, multiple_of, frames)
    name = options.model_name or f"{cards.DISPLAY_NAME} ({source})"
    return cards.weights_model_card(options.id, name, source, triton_models, multiple_of, frames)


def shape_limits(card: ModelCard, config: PipelineConfig, unet_frames: int = 0) -> ShapeLimits:
    """Engine shape ranges (latent cells) covering every request the model card accepts; ``unet_frames``: the
    most frames one UNet pass takes when a long clip is made of passes over part of it (0: the whole clip, as
    AnimateDiff's context windows are gathered inside one pass)."""

    def latent(parameter: str) -> AxisRange:
        p = card.parameter(parameter)
        scale = config.vae_scale_factor
        return AxisRange(int(p.min) // scale, int(p.default) // scale, int(p.max) // scale)

    frames = card.parameter("num_frames")
    most = min(int(frames.max), unet_frames) if unet_frames else int(frames.max)
    return ShapeLimits(
        frames=AxisRange(min(int(frames.min), most), min(int(frames.default), most), most),
        latent_height=latent("height"),
        latent_width=latent("width"),
        unet_batch=AxisRange(1, min(2, config.unet_max_batch), config.unet_max_batch),
        decode_batch=AxisRange(1, config.decode_chunk_size, config.decode_chunk_size),
    )
