"""Loads a local diffusers Stable Video Diffusion folder into the components the exporter needs.

Accepted layout (local, nothing is downloaded): a saved ``StableVideoDiffusionPipeline`` folder, as
``stabilityai/stable-video-diffusion-img2vid`` and ``-img2vid-xt`` ship it: ``image_encoder/``
(CLIPVisionModelWithProjection), ``feature_extractor/`` (CLIPImageProcessor), ``unet/``
(UNetSpatioTemporalConditionModel), ``vae/`` (AutoencoderKLTemporalDecoder), ``scheduler/``. Weights saved only
as the ``fp16`` variant are loaded from it. Everything is exported in float32.

The keyframe stage (text-to-video: the first frame made from the prompt) comes from a Stable Diffusion-class
diffusers folder: ``tokenizer/`` (CLIPTokenizer), ``text_encoder/`` (CLIPTextModel), ``unet/``
(UNet2DConditionModel), ``vae/`` (AutoencoderKL), ``scheduler/`` (used as it is, like StableDiffusionPipeline
uses it). The tiny demo's is the AnimateDiff demo's Stable Diffusion folder.

The tiny demo model is saved in these layouts and loaded back through this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from visualizr.export.family import DiffusersComponents, class_name, freeze, quiet_libraries

SUBFOLDERS = ("image_encoder", "feature_extractor", "unet", "vae", "scheduler")
KEYFRAME_SUBFOLDERS = ("tokenizer", "text_encoder", "unet", "vae", "scheduler")
_WEIGHT_SUFFIXES = (".safetensors", ".bin")


@dataclass
class KeyframeComponents(DiffusersComponents):
    """A Stable Diffusion-class text-to-image model: the keyframe stage's networks."""

    tokenizer: Any  # transformers.CLIPTokenizer
    text_encoder: Any  # transformers.CLIPTextModel
    unet: Any  # diffusers.UNet2DConditionModel
    vae: Any  # diffusers.AutoencoderKL
    scheduler: Any  # the folder's diffusers scheduler
    source_name: str

    @property
    def text_max_length(self) -> int:
        return int(self.tokenizer.model_max_length)

    @property
    def text_hidden_size(self) -> int:
        return int(self.text_encoder.config.hidden_size)


@dataclass
class StableVideoDiffusionComponents(DiffusersComponents):
    image_encoder: Any  # transformers.CLIPVisionModelWithProjection
    feature_extractor: Any  # transformers.CLIPImageProcessor
    unet: Any  # diffusers.UNetSpatioTemporalConditionModel
    vae: Any  # diffusers.AutoencoderKLTemporalDecoder
    scheduler: Any  # diffusers.EulerDiscreteScheduler (v-prediction, Karras sigmas)
    source_name: str  # the weights folder's name, for the model card
    keyframe: KeyframeComponents | None = None  # the keyframe stage, when exported with one

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


def _missing(folder: Path, subfolders: tuple[str, ...]) -> list[str]:
    return [name for name in subfolders if not (Path(folder) / name).is_dir()]


def check_folder(weights: Path) -> str | None:
    """Why ``weights`` is not a Stable Video Diffusion folder, or None."""
    missing = _missing(weights, SUBFOLDERS)
    return f"not a StableVideoDiffusionPipeline folder (missing {', '.join(missing)})" if missing else None


def check_keyframe_folder(weights: Path) -> str | None:
    """Why ``weights`` is not a Stable Diffusion folder the keyframe stage can use, or None."""
    missing = _missing(weights, KEYFRAME_SUBFOLDERS)
    if missing:
        return f"not a Stable Diffusion diffusers folder (missing {', '.join(missing)})"
    if class_name(Path(weights) / "unet") not in (None, "UNet2DConditionModel"):
        return f"its unet is a {class_name(Path(weights) / 'unet')}, not a UNet2DConditionModel"
    return None


def _pretrained(weights: Path, model_class: Any, name: str) -> Any:
    folder = weights / name
    return model_class.from_pretrained(str(folder), variant=weights_variant(folder))


def _scheduler(folder: Path, default: str) -> Any:
    import diffusers

    return getattr(diffusers, class_name(folder) or default).from_pretrained(str(folder))


def _checked(weights: Path, problem: str | None) -> Path:
    if problem:
        raise FileNotFoundError(f"{weights}: {problem}")
    return weights


def load_keyframe(weights: Path) -> KeyframeComponents:
    """Load a local Stable Diffusion folder as the keyframe stage, in float32, eval mode."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    quiet_libraries()
    weights = Path(weights).resolve()
    _checked(weights, check_keyframe_folder(weights))
    components = KeyframeComponents(
        tokenizer=CLIPTokenizer.from_pretrained(str(weights / "tokenizer")),
        text_encoder=_pretrained(weights, CLIPTextModel, "text_encoder"),
        unet=_pretrained(weights, UNet2DConditionModel, "unet"),
        vae=_pretrained(weights, AutoencoderKL, "vae"),
        scheduler=_scheduler(weights / "scheduler", "PNDMScheduler"),
        source_name=weights.name,
    )
    freeze(components.text_encoder, components.unet, components.vae)
    return components


def load_stable_video_diffusion(weights: Path, keyframe: Path | None = None) -> StableVideoDiffusionComponents:
    """Load a local Stable Video Diffusion folder (layout: see the module docstring) in float32, eval mode, with
    the keyframe stage of the Stable Diffusion folder ``keyframe`` when given."""
    from diffusers import AutoencoderKLTemporalDecoder, UNetSpatioTemporalConditionModel
    from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

    quiet_libraries()
    weights = Path(weights).resolve()
    _checked(weights, check_folder(weights))
    components = StableVideoDiffusionComponents(
        image_encoder=_pretrained(weights, CLIPVisionModelWithProjection, "image_encoder"),
        feature_extractor=CLIPImageProcessor.from_pretrained(str(weights / "feature_extractor")),
        unet=_pretrained(weights, UNetSpatioTemporalConditionModel, "unet"),
        vae=_pretrained(weights, AutoencoderKLTemporalDecoder, "vae"),
        scheduler=_scheduler(weights / "scheduler", "EulerDiscreteScheduler"),
        source_name=weights.name,
        keyframe=None if keyframe is None else load_keyframe(keyframe),
    )
    freeze(components.image_encoder, components.unet, components.vae)
    return components
