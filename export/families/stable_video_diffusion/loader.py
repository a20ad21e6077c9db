"""Loads a local diffusers Stable Video Diffusion folder into the components the exporter needs.

Accepted layout (local, nothing is downloaded): a saved ``StableVideoDiffusionPipeline`` folder, as
``stabilityai/stable-video-diffusion-img2vid`` and ``-img2vid-xt`` ship it: ``image_encoder/``
(CLIPVisionModelWithProjection), ``feature_extractor/`` (CLIPImageProcessor), ``unet/``
(UNetSpatioTemporalConditionModel), ``vae/`` (AutoencoderKLTemporalDecoder), ``scheduler/``. Weights saved only
as the ``fp16`` variant are loaded from it. Everything is exported in float32.

The tiny demo model is saved in this layout and loaded back through this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from visualizr.export.family import DiffusersComponents, class_name, freeze, quiet_libraries

SUBFOLDERS = ("image_encoder", "feature_extractor", "unet", "vae", "scheduler")
_WEIGHT_SUFFIXES = (".safetensors", ".bin")


@dataclass
class StableVideoDiffusionComponents(DiffusersComponents):
    image_encoder: Any  # transformers.CLIPVisionModelWithProjection
    feature_extractor: Any  # transformers.CLIPImageProcessor
    unet: Any  # diffusers.UNetSpatioTemporalConditionModel
    vae: Any  # diffusers.AutoencoderKLTemporalDecoder
    scheduler: Any  # diffusers.EulerDiscreteScheduler (v-prediction, Karras sigmas)
    source_name: str  # the weights folder's name, for the model card

    @property
    def image_size(self) -> int:
        return int(self.image_encoder.config.image_size)

    @property
    def image_embed_dim(self) -> int:
        return int(self.image_encoder.config.projection_dim)

    @property
    def num_frames(self) -> int:
        """The frame count the UNet was trained on (14 for img2vid, 25 for img2vid-xt)."""
        return int(self.unet.config.num_frames)


def weights_variant(folder: Path) -> str | None:
    """``fp16`` when the folder holds only fp16-variant weights (as the SVD releases do), else None."""
    files = [p.name for p in folder.iterdir() if p.name.endswith(_WEIGHT_SUFFIXES)]
    plain = [name for name in files if name.count(".") == 1]
    return "fp16" if not plain and any(".fp16." in name for name in files) else None


def check_folder(weights: Path) -> str | None:
    """Why ``weights`` is not a Stable Video Diffusion folder, or None."""
    missing = [name for name in SUBFOLDERS if not (Path(weights) / name).is_dir()]
    return f"not a StableVideoDiffusionPipeline folder (missing {', '.join(missing)})" if missing else None


def load_stable_video_diffusion(weights: Path) -> StableVideoDiffusionComponents:
    """Load a local Stable Video Diffusion folder (layout: see the module docstring) in float32, eval mode."""
    import diffusers
    from diffusers import AutoencoderKLTemporalDecoder, UNetSpatioTemporalConditionModel
    from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

    quiet_libraries()
    weights = Path(weights).resolve()
    problem = check_folder(weights)
    if problem:
        raise FileNotFoundError(f"{weights}: {problem}")

    def pretrained(model_class: Any, name: str) -> Any:
        folder = weights / name
        return model_class.from_pretrained(str(folder), variant=weights_variant(folder))

    scheduler_class = getattr(diffusers, class_name(weights / "scheduler") or "EulerDiscreteScheduler")
    components = StableVideoDiffusionComponents(
        image_encoder=pretrained(CLIPVisionModelWithProjection, "image_encoder"),
        feature_extractor=CLIPImageProcessor.from_pretrained(str(weights / "feature_extractor")),
        unet=pretrained(UNetSpatioTemporalConditionModel, "unet"),
        vae=pretrained(AutoencoderKLTemporalDecoder, "vae"),
        scheduler=scheduler_class.from_pretrained(str(weights / "scheduler")),
        source_name=weights.name,
    )
    freeze(components.image_encoder, components.unet, components.vae)
    return components
