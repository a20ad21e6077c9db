"""Loads a local diffusers AnimateDiff into the components the exporter needs.

Accepted layouts (all local, nothing is downloaded):

* a Stable Diffusion 1.5 diffusers folder (``text_encoder/ tokenizer/ unet/ vae/ scheduler/``) plus a motion
  adapter given separately: a diffusers ``MotionAdapter`` folder or an original AnimateDiff checkpoint file
  (``mm_sd_v15_v2.safetensors``/``.ckpt``); without one, ``<weights>/motion_adapter`` is used when present;
* a saved ``AnimateDiffPipeline`` folder, whose ``unet/`` already is a ``UNetMotionModel``.

The tiny demo model is saved in the first layout and loaded back through this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from visualizr.export.families.animatediff.ip_adapter import IPAdapter, add_ip_adapter, load_ip_adapter
from visualizr.export.family import DiffusersComponents, class_name, freeze, quiet_libraries

# Schedulers the pipeline's denoising loop supports as they are; anything else (SD1.5 ships PNDM) is converted
# to DDIM with the settings AnimateDiff recommends.
SUPPORTED_SCHEDULERS = ("DDIMScheduler", "EulerDiscreteScheduler")
ANIMATEDIFF_DDIM_OVERRIDES = {
    "beta_schedule": "linear",
    "clip_sample": False,
    "steps_offset": 1,
    "timestep_spacing": "linspace",
}
MOTION_ADAPTER_SUBFOLDERS = ("motion_adapter", "motion-adapter")


@dataclass
class AnimateDiffComponents(DiffusersComponents):
    tokenizer: Any  # transformers.CLIPTokenizer
    text_encoder: Any  # transformers.CLIPTextModel
    unet: Any  # diffusers.UNetMotionModel
    vae: Any  # diffusers.AutoencoderKL
    scheduler: Any  # diffusers.DDIMScheduler | diffusers.EulerDiscreteScheduler
    source_name: str  # the weights folder's name, for the model card
    ip_adapter: IPAdapter | None = None  # its image projection and attention already in ``unet``

    @property
    def text_hidden_size(self) -> int:
        return int(self.text_encoder.config.hidden_size)

    @property
    def text_max_length(self) -> int:
        return int(self.tokenizer.model_max_length)

    @property
    def max_frames(self) -> int:
        """Frames the motion modules' positional embeddings cover: the longest context window."""
        return int(self.unet.config.motion_max_seq_length)


def _load_motion_adapter(path: Path):
    from diffusers import MotionAdapter

    if path.is_file():
        return MotionAdapter.from_single_file(str(path))
    return MotionAdapter.from_pretrained(str(path))


def _load_unet(weights: Path, motion_adapter: Path | None):
    from diffusers import UNet2DConditionModel, UNetMotionModel

    unet_dir = weights / "unet"
    if class_name(unet_dir) == UNetMotionModel.__name__:
        return UNetMotionModel.from_pretrained(str(unet_dir))
    if motion_adapter is None:
        motion_adapter = next((weights / n for n in MOTION_ADAPTER_SUBFOLDERS if (weights / n).is_dir()), None)
    if motion_adapter is None:
        raise FileNotFoundError(
            f"{unet_dir} is a plain UNet2DConditionModel: pass a motion adapter (--motion-adapter PATH)"
        )
    unet = UNet2DConditionModel.from_pretrained(str(unet_dir))
    return UNetMotionModel.from_unet2d(unet, _load_motion_adapter(Path(motion_adapter)))


def load_scheduler(scheduler_dir: Path):
    import diffusers

    name = class_name(scheduler_dir)
    if name in SUPPORTED_SCHEDULERS:
        return getattr(diffusers, name).from_pretrained(str(scheduler_dir))
    config = diffusers.DDIMScheduler.load_config(str(scheduler_dir))
    return diffusers.DDIMScheduler.from_config({**config, **ANIMATEDIFF_DDIM_OVERRIDES})


def load_animatediff(
    weights: Path, motion_adapter: Path | None = None, ip_adapter: Path | None = None
) -> AnimateDiffComponents:
    """Load a local AnimateDiff (layouts: see the module docstring) in float32 and eval mode, with the IP-Adapter
    of the folder ``ip_adapter`` (``ip_adapter.py``) added to its UNet."""
    from diffusers import AutoencoderKL
    from transformers import CLIPTextModel, CLIPTokenizer

    quiet_libraries()
    weights = Path(weights).resolve()
    if not (weights / "unet").is_dir():
        raise FileNotFoundError(f"{weights} is not a diffusers folder (no unet/)")
    components = AnimateDiffComponents(
        tokenizer=CLIPTokenizer.from_pretrained(str(weights / "tokenizer")),
        text_encoder=CLIPTextModel.from_pretrained(str(weights / "text_encoder")),
        unet=_load_unet(weights, motion_adapter),
        vae=AutoencoderKL.from_pretrained(str(weights / "vae")),
        scheduler=load_scheduler(weights / "scheduler"),
        source_name=weights.name,
    )
    freeze(components.text_encoder, components.unet, components.vae)
    if ip_adapter is not None:
        components.ip_adapter = load_ip_adapter(ip_adapter)
        add_ip_adapter(components.unet, components.ip_adapter)
    return components
