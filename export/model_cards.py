"""Model cards and pipeline configs of exported models, and the engine shape limits derived from them."""

from __future__ import annotations

from typing import Final

from visualizr.export.specs import AxisRange, ShapeLimits
from visualizr.model_card import Capabilities, ModelCard, ParameterRange, Requirements
from visualizr.pipeline_config import PipelineConfig

CARD_VERSION: Final = "1.0.0"
SUPPORTED_FORMATS: Final = ["mp4", "gif"]
FPS_RANGE: Final = ParameterRange(min=1, max=30, default=8, description="Frames per second of the encoded video")
GUIDANCE_RANGE: Final = ParameterRange(
    min=1.0,
    max=20.0,
    default=7.5,
    description="Classifier-free guidance scale: higher follows the prompt more",
)


def _size(axis: str, low: int, high: int, default: int, multiple_of: int) -> ParameterRange:
    return ParameterRange(
        min=low, max=high, default=default, multiple_of=multiple_of, description=f"Video {axis} in pixels"
    )


def _parameters(
    low: int,
    high: int,
    default_size: int,
    multiple_of: int,
    max_frames: int,
    default_frames: int,
    default_steps: int,
) -> dict[str, ParameterRange]:
    return {
        "width": _size("width", low, high, default_size, multiple_of),
        "height": _size("height", low, high, default_size, multiple_of),
        "num_frames": ParameterRange(min=2, max=max_frames, default=default_frames, description="Frames to generate"),
        "fps": FPS_RANGE,
        "num_inference_steps": ParameterRange(
            min=1, max=50, default=default_steps, description="Denoising steps: more is slower and finer"
        ),
        "guidance_scale": GUIDANCE_RANGE,
    }


def _capabilities(parameters: dict[str, ParameterRange]) -> Capabilities:
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
        supports_negative_prompt=True,
        supports_image_to_video=True,
    )


# The tiny demo's defaults are chosen so that a prompt-only request finishes in well under 30 s on 2 CPU cores
# (see the export report: one UNet call at batch 2 and the VAE decode were measured at these sizes).
TINY_DEFAULT_SIZE: Final = 128
TINY_DEFAULT_FRAMES: Final = 16
TINY_DEFAULT_STEPS: Final = 20


def tiny_model_card(model_id: str, triton_models: list[str], multiple_of: int, max_frames: int) -> ModelCard:
    parameters = _parameters(
        64, 512, TINY_DEFAULT_SIZE, multiple_of, max_frames, TINY_DEFAULT_FRAMES, TINY_DEFAULT_STEPS
    )
    return ModelCard(
        id=model_id,
        family=model_id,
        name="AnimateDiff (tiny demo)",
        description=(
            "A tiny, randomly initialised AnimateDiff network (untrained, fixed seed) that ships with "
            "Visualizr so that the whole stack runs without downloading weights. It ignores the meaning of "
            "the prompt and makes abstract, noisy videos; export real AnimateDiff weights for real results."
        ),
        version=CARD_VERSION,
        type="text-to-video",
        capabilities=_capabilities(parameters),
        requirements=Requirements(gpu_memory_gb=0.5, vram_usage_gb=0.1, estimated_load_time_seconds=5.0),
        parameters=parameters,
        triton_models=triton_models,
        weights="random-tiny",
        notes="Runs on CPU with onnxruntime; the same export builds TensorRT engines on a GPU.",
    )


def weights_model_card(
    model_id: str, name: str, source_name: str, triton_models: list[str], multiple_of: int, max_frames: int
) -> ModelCard:
    default_size = 512 - 512 % multiple_of
    parameters = _parameters(256, 1024, default_size, multiple_of, max_frames, min(16, max_frames), 25)
    return ModelCard(
        id=model_id,
        family=model_id,
        name=name,
        description=f"AnimateDiff text-to-video exported from the local weights {source_name!r}.",
        version=CARD_VERSION,
        type="text-to-video",
        capabilities=_capabilities(parameters),
        requirements=Requirements(gpu_memory_gb=10.0, vram_usage_gb=8.0, estimated_load_time_seconds=60.0),
        parameters=parameters,
        triton_models=triton_models,
        weights=source_name,
    )


def shape_limits(card: ModelCard, config: PipelineConfig) -> ShapeLimits:
    """Engine shape ranges (latent cells) covering every request the model card accepts."""

    def latent(parameter: str) -> AxisRange:
        p = card.parameter(parameter)
        scale = config.vae_scale_factor
        return AxisRange(int(p.min) // scale, int(p.default) // scale, int(p.max) // scale)

    frames = card.parameter("num_frames")
    return ShapeLimits(
        frames=AxisRange(int(frames.min), int(frames.default), int(frames.max)),
        latent_height=latent("height"),
        latent_width=latent("width"),
        unet_batch=AxisRange(1, min(2, config.unet_max_batch), config.unet_max_batch),
        decode_batch=AxisRange(1, config.decode_chunk_size, config.decode_chunk_size),
    )
