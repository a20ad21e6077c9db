"""Loads a local diffusers LTX-Video folder into the components the exporter needs.

Accepted layout (local, nothing is downloaded): a saved ``LTXPipeline`` folder, as ``Lightricks/LTX-Video``
(0.9.5 and later) ships it: ``tokenizer/`` (T5TokenizerFast), ``text_encoder/`` (T5EncoderModel),
``transformer/`` (LTXVideoTransformer3DModel), ``vae/`` (AutoencoderKLLTXVideo), ``scheduler/``
(FlowMatchEulerDiscreteScheduler). Everything is exported in float32. The tiny demo model is saved in this layout
and loaded back through this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from visualizr.export.family import class_name, freeze, quiet_libraries

SUBFOLDERS = ("tokenizer", "text_encoder", "transformer", "vae", "scheduler")


@dataclass
class LTXVideoComponents:
    tokenizer: Any  # transformers.T5TokenizerFast
    text_encoder: Any  # transformers.T5EncoderModel
    transformer: Any  # diffusers.LTXVideoTransformer3DModel
    vae: Any  # diffusers.AutoencoderKLLTXVideo
    scheduler: Any  # diffusers.FlowMatchEulerDiscreteScheduler
    source_name: str  # the weights folder's name, for the model card

    @property
    def latent_channels(self) -> int:
        return int(self.vae.config.latent_channels)

    @property
    def vae_scale_factor(self) -> int:
        return int(self.vae.spatial_compression_ratio)

    @property
    def vae_temporal_scale_factor(self) -> int:
        return int(self.vae.temporal_compression_ratio)

    @property
    def text_max_length(self) -> int:
        return int(self.tokenizer.model_max_length)

    @property
    def text_hidden_size(self) -> int:
        return int(self.text_encoder.config.d_model)

    @property
    def timestep_conditioning(self) -> bool:
        return bool(self.vae.config.timestep_conditioning)


def check_folder(weights: Path) -> str | None:
    """Why ``weights`` is not an LTX-Video folder, or None."""
    missing = [name for name in SUBFOLDERS if not (Path(weights) / name).is_dir()]
    if missing:
        return f"not an LTXPipeline folder (missing {', '.join(missing)})"
    if class_name(Path(weights) / "transformer") not in (None, "LTXVideoTransformer3DModel"):
        return f"its transformer is a {class_name(Path(weights) / 'transformer')}, not an LTXVideoTransformer3DModel"
    return None


def load_ltx_video(weights: Path) -> LTXVideoComponents:
    """Load a local LTX-Video folder (layout: see the module docstring) in float32, eval mode."""
    from diffusers import AutoencoderKLLTXVideo, FlowMatchEulerDiscreteScheduler, LTXVideoTransformer3DModel
    from transformers import T5EncoderModel, T5TokenizerFast

    quiet_libraries()
    weights = Path(weights).resolve()
    problem = check_folder(weights)
    if problem:
        raise FileNotFoundError(f"{weights}: {problem}")
    components = LTXVideoComponents(
        tokenizer=T5TokenizerFast.from_pretrained(str(weights / "tokenizer")),
        text_encoder=T5EncoderModel.from_pretrained(str(weights / "text_encoder")),
        transformer=LTXVideoTransformer3DModel.from_pretrained(str(weights / "transformer")),
        vae=AutoencoderKLLTXVideo.from_pretrained(str(weights / "vae")),
        scheduler=FlowMatchEulerDiscreteScheduler.from_pretrained(str(weights / "scheduler")),
        source_name=weights.name,
    )
    freeze(components.text_encoder, components.transformer, components.vae)
    return components
