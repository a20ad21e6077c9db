"""Static facts about one exported pipeline that the denoising loop needs at run time.

The export writes ``<repository>/<model_id>/1/assets/pipeline.json`` next to ``tokenizer/`` and ``scheduler/``;
the pipeline model reads it once in ``initialize``.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

PIPELINE_ASSETS_DIRNAME = "assets"
PIPELINE_CONFIG_FILENAME = "pipeline.json"
TOKENIZER_DIRNAME = "tokenizer"
SCHEDULER_DIRNAME = "scheduler"


class PipelineConfig(msgspec.Struct, frozen=True):
    model_id: str  # public id == Triton pipeline model name
    family: str  # component models are visualizr.names.component_model_name(family, component)
    text_max_length: int  # tokenizer padding length (77 for CLIP)
    text_hidden_size: int  # D of the text encoder output
    latent_channels: int  # 4
    vae_scale_factor: int  # 8: pixels per latent cell
    vae_scaling_factor: float  # 0.18215 for SD1.5 VAEs
    decode_chunk_size: int = 8  # frames decoded per vae_decoder call
    unet_max_batch: int = 4  # max_batch_size of the unet model (batch = 2 x jobs with guidance)


def write_pipeline_config(config: PipelineConfig, path: Path) -> None:
    path.write_bytes(msgspec.json.format(msgspec.json.encode(config), indent=2))


def read_pipeline_config(path: Path) -> PipelineConfig:
    return msgspec.json.decode(path.read_bytes(), type=PipelineConfig)
