"""LTX-Video's model-card defaults: the tiny demo's and those of real weights.

LTX makes 8k + 1 frames (its VAE compresses 8 frames into one latent frame, plus the first); a request for any
other count is made at the next such count and trimmed to the frames asked for (the card's notes say so)."""

from __future__ import annotations

from typing import Final

import msgspec

from visualizr.export.model_cards import TINY_WEIGHTS_LABEL, build_card, video_parameters
from visualizr.families.ltx_video import MIN_STEPS
from visualizr.model_card import ModelCard, ParameterRange, Requirements

FAMILY: Final = "ltx-video"
DISPLAY_NAME: Final = "LTX-Video"
# LTXPipeline's frame_rate (25 by default) also sets RoPE's time scale, so the fps is a generation parameter.
FPS_RANGE: Final = ParameterRange(
    min=8, max=30, default=25, description="Frames per second of the video (LTX-Video is conditioned on it)"
)
GUIDANCE_RANGE: Final = ParameterRange(
    min=1.0, max=10.0, default=3.0, description="Classifier-free guidance scale: higher follows the prompt more"
)
MAX_FRAMES: Final = 161  # LTXPipeline's default clip: 6.4 s at 25 fps
MAX_SIZE: Final = 1024
# The tiny demo's defaults: a request of a few seconds on 2 CPU cores (4 x 4 latent cells x 2 latent frames).
TINY_DEFAULT_SIZE: Final = 128
TINY_DEFAULT_FRAMES: Final = 9
TINY_DEFAULT_STEPS: Final = 8
FRAME_RULE: Final = (
    "LTX-Video makes 8k+1 frames; other counts are generated at the next 8k+1 and trimmed to the frames asked for."
)
IMAGE_RULE: Final = (
    "From an image, the image is the first frame as it is (with an end_image, that one is the last): motion_strength"
    " does not change the video."
)


def _card(parameters: dict[str, ParameterRange], **fields) -> ModelCard:
    steps = msgspec.structs.replace(parameters["num_inference_steps"], min=MIN_STEPS)
    parameters = {**parameters, "num_inference_steps": steps}
    card = build_card(FAMILY, "text-to-video", parameters, negative_prompt=True, **fields)  # from an image too
    capabilities = msgspec.structs.replace(card.capabilities, supports_end_image=True)  # keyframes
    notes = f"{FRAME_RULE} {IMAGE_RULE} {card.notes}".strip()
    return msgspec.structs.replace(card, capabilities=capabilities, notes=notes)


def tiny_model_card(model_id: str, triton_models: list[str], multiple_of: int, native_frames: int) -> ModelCard:
    sizes = (64, MAX_SIZE, TINY_DEFAULT_SIZE)
    frames = (MAX_FRAMES, TINY_DEFAULT_FRAMES)
    return _card(
        video_parameters(sizes, multiple_of, frames, FPS_RANGE, TINY_DEFAULT_STEPS, GUIDANCE_RANGE),
        id=model_id,
        name="LTX-Video (tiny demo)",
        description=(
            "A tiny, randomly initialised LTX-Video diffusion transformer (untrained, fixed seed) that ships with "
            "Visualizr so that the DiT family runs without downloading weights. It makes abstract, noisy videos; "
            "export real LTX-Video weights for real results."
        ),
        requirements=Requirements(gpu_memory_gb=0.5, vram_usage_gb=0.1, estimated_load_time_seconds=5.0),
        triton_models=triton_models,
        weights=TINY_WEIGHTS_LABEL,
        notes="Runs on CPU with onnxruntime.",
    )


def weights_model_card(
    model_id: str, name: str, source_name: str, triton_models: list[str], multiple_of: int, native_frames: int
) -> ModelCard:
    sizes = (256, MAX_SIZE, 768)
    parameters = video_parameters(sizes, multiple_of, (MAX_FRAMES, 121), FPS_RANGE, 40, GUIDANCE_RANGE)
    return _card(
        parameters,
        id=model_id,
        name=name,
        description=f"LTX-Video text- and image-to-video exported from the local weights {source_name!r}.",
        requirements=Requirements(gpu_memory_gb=24.0, vram_usage_gb=20.0, estimated_load_time_seconds=90.0),
        triton_models=triton_models,
        weights=source_name,
    )
