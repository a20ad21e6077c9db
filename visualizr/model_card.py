"""The model card: what a model is, what it can do and which parameter ranges it accepts.

The export writes one ``model_card.json`` next to each pipeline model in the model repository; the API serves it
and validates requests against it. One schema for both sides.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

MODEL_CARD_FILENAME = "model_card.json"


class ParameterRange(msgspec.Struct, frozen=True):
    min: float | int
    max: float | int
    default: float | int
    description: str
    multiple_of: int | None = None


class Capabilities(msgspec.Struct, frozen=True):
    max_resolution: str
    min_resolution: str
    max_duration_seconds: float
    min_duration_seconds: float
    max_fps: int
    min_fps: int
    supported_formats: list[str]
    supports_negative_prompt: bool = True
    supports_style_transfer: bool = False
    # The pipeline model accepts the optional `image` and `strength` inputs (cards written before: False).
    supports_image_to_video: bool = False
    # Frames one pass of the model makes (its motion window / segment). Longer clips, up to parameters.num_frames.max,
    # are made of overlapping windows or segments; 0: the model makes every clip in one pass.
    native_num_frames: int = 0
    # > 0: those longer clips are segments generated and decoded one after the other, consecutive ones sharing this
    # many frames (their cost grows by whole segments); 0: windows within one pass (or no longer clips).
    segment_overlap: int = 0
    # An image-to-video model that takes text too: a keyframe stage makes the first frame from the prompt.
    text_to_video_via_keyframe: bool = False
    # The pipeline model takes a character's reference picture (`ip_adapter_image`, `ip_adapter_scale`): IP-Adapter.
    supports_ip_adapter: bool = False
    # The from-image route may carry an `end_image`: the video starts at `image` and ends at it.
    supports_end_image: bool = False


class Requirements(msgspec.Struct, frozen=True):
    gpu_memory_gb: float
    vram_usage_gb: float
    estimated_load_time_seconds: float


class ModelCard(msgspec.Struct, frozen=True):
    id: str  # public model id == Triton name of the pipeline model
    family: str  # prefix of the component model names (see visualizr.names.component_model_name)
    name: str
    description: str
    version: str
    type: str  # "text-to-video" (image-to-video too when capabilities.supports_image_to_video)
    capabilities: Capabilities
    requirements: Requirements
    # width, height, num_frames, fps, num_inference_steps, guidance_scale
    parameters: dict[str, ParameterRange]
    triton_models: list[str]  # every Triton model this pipeline needs, components first, pipeline last
    weights: str  # "random-tiny" for the embedded demo, else the source folder's name
    notes: str = ""

    def parameter(self, name: str) -> ParameterRange:
        return self.parameters[name]


def write_model_card(card: ModelCard, path: Path) -> None:
    path.write_bytes(msgspec.json.format(msgspec.json.encode(card), indent=2))


def read_model_card(path: Path) -> ModelCard:
    return msgspec.json.decode(path.read_bytes(), type=ModelCard)
