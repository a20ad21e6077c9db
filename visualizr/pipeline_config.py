"""Static facts about one exported pipeline that its denoising loop needs at run time.

The export writes ``<repository>/<model_id>/1/assets/pipeline.json`` next to the family's other assets
(scheduler, tokenizer or image processor); the pipeline model reads it once in ``initialize``. Each family
extends ``PipelineConfig`` with its own facts (``visualizr.families.<family>.loop``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import msgspec

PIPELINE_ASSETS_DIRNAME = "assets"
PIPELINE_CONFIG_FILENAME = "pipeline.json"
TOKENIZER_DIRNAME = "tokenizer"
SCHEDULER_DIRNAME = "scheduler"
FEATURE_EXTRACTOR_DIRNAME = "feature_extractor"
KEYFRAME_DIRNAME = "keyframe"  # a keyframe stage's own assets (tokenizer/, scheduler/), Stable Video Diffusion's


def assets_dir(model_dir: Path, version: int | str = 1) -> Path:
    """``<model_repository>/<model_id>/<version>/assets``: where pipeline.json and the other assets are."""
    return Path(model_dir) / str(version) / PIPELINE_ASSETS_DIRNAME


class LatentRGB(msgspec.Struct, frozen=True):
    """Live previews' linear map (``visualizr.pipeline.previews``): RGB in [-1, 1] = latent channels (scaled, as
    the loop holds them) @ ``factors`` [C][3] + ``bias`` [3]."""

    factors: list[list[float]]
    bias: list[float]


class PipelineConfig(msgspec.Struct, frozen=True, kw_only=True):
    model_id: str  # public id == Triton pipeline model name; component models are "<model_id>_<component>"
    family: str  # the model family (a name of visualizr.families.FAMILY_NAMES)
    latent_channels: int  # 4
    vae_scale_factor: int  # 8: pixels per latent cell
    vae_scaling_factor: float  # 0.18215 for SD1.5-style VAEs
    decode_chunk_size: int = 8  # frames decoded per vae_decoder call
    # Latent cells (frames x h x w) one vae_decoder call may take, 0: no limit. Large frames are decoded fewer at
    # a time, so that the decoder's memory stays bounded (its attention grows with the square of a frame's cells).
    decode_max_cells: int = 0
    unet_max_batch: int = 4  # max_batch_size of the unet model (batch = 2 x jobs with guidance)
    latent_rgb: LatentRGB | None = None  # previews' map, fitted at export; None: SD1.5's (4 channels) or none


Config = TypeVar("Config", bound=PipelineConfig)


def read_pipeline_config(path: Path, config_type: type[Config] = PipelineConfig) -> Config:
    """``config_type``: the family's subclass to read everything, PipelineConfig for the common part."""
    return msgspec.json.decode(path.read_bytes(), type=config_type)
