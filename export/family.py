"""What the export needs of a model family, and the registry lookup of a family's export module.

Each family's ``export/families/<module>/__init__.py`` defines ``EXPORT``, a ``FamilyExport``: it loads the
tiny demo or local weights (through the same loader) into a ``LoadedModel``, and the family-agnostic
``repository.build_repository`` exports, verifies, configures and stamps it. Importing this module is cheap.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from visualizr.families import Family, get_family, module_name

if TYPE_CHECKING:
    from visualizr.export.build_stamp import ExportOptions
    from visualizr.export.specs import NetworkSpec, ShapeLimits
    from visualizr.model_card import ModelCard
    from visualizr.pipeline_config import PipelineConfig


@dataclass(frozen=True)
class LoadedModel:
    """One model, loaded and described, ready to export."""

    networks: Mapping[str, Any]  # component -> the torch module its spec wraps
    specs: tuple[NetworkSpec, ...]  # one per network of the family, in its order
    config: PipelineConfig  # the family's subclass, written as the pipeline's pipeline.json
    card: ModelCard
    limits: ShapeLimits
    assets: Mapping[str, Any]  # assets dirname -> an object with save_pretrained (tokenizer, scheduler, ...)
    unet_downsample_factor: int  # 2 ** (UNet blocks - 1): shapes the UNets' trace and verification cases


class DiffusersComponents:
    """The sizes every family reads off its loaded VAE and UNet (a mixin of each loader's components)."""

    vae: Any
    unet: Any
    source_name: str  # the weights folder's name, for the model card

    @property
    def latent_channels(self) -> int:
        return int(self.vae.config.latent_channels)

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def vae_scaling_factor(self) -> float:
        return float(self.vae.config.scaling_factor)

    @property
    def unet_downsample_factor(self) -> int:
        """2 ** (UNet blocks - 1): the UNet halves the latent once per block but the last."""
        return 2 ** (len(self.unet.config.block_out_channels) - 1)


class FamilyExport(ABC):
    """A family's export: its loader and model-card defaults behind one call."""

    @property
    @abstractmethod
    def family(self) -> Family: ...

    def check_weights(self, weights: Path) -> str | None:
        """Why ``weights`` is not a folder this family loads, or None."""
        return None if (Path(weights) / "unet").is_dir() else "not a local diffusers folder (no unet/ inside)"

    @abstractmethod
    def load_components(self, options: ExportOptions) -> Any:
        """The tiny demo (``options.is_tiny``) or the local weights folder, loaded through the same loader."""

    @abstractmethod
    def describe(self, options: ExportOptions, components: Any) -> LoadedModel:
        """The loaded networks with their specs, pipeline config, model card and assets."""

    def load(self, options: ExportOptions) -> LoadedModel:
        return self.describe(options, self.load_components(options))

    def triton_models(self, model_id: str, components: Iterable[str] | None = None) -> list[str]:
        """Every Triton model of a model of this family: components first (``components``: the ones it has, default
        all of the family's), the pipeline model last."""
        models = self.family.component_models(model_id)
        return [*(models[c] for c in (models if components is None else components)), model_id]


def family_export(name: str) -> FamilyExport:
    """The ``EXPORT`` of the registered family ``name`` (ValueError for an unknown one)."""
    get_family(name)
    return importlib.import_module(f"{__package__}.families.{module_name(name)}").EXPORT


def quiet_libraries() -> None:
    """Silence progress bars, load-time advice and tracer warnings of the libraries during an export."""
    import warnings

    import torch
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    for logging in (diffusers_logging, transformers_logging):
        logging.set_verbosity_error()
        logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)


def class_name(config_dir: Path) -> str | None:
    """The ``_class_name`` a diffusers/transformers folder declares (config or scheduler config)."""
    for filename in ("config.json", "scheduler_config.json"):
        if (config_dir / filename).is_file():
            return json.loads((config_dir / filename).read_text()).get("_class_name")
    return None


TINY_STAMP_FILENAME = ".tiny-stamp.json"


def ensure_cached_build(build_dir: Path, key: str, save: Callable[[Path], object], force: bool = False) -> Path:
    """``build_dir``, (re)built by ``save(folder)`` unless its stamp holds ``key``. The build happens next to the
    cache and is swapped in, so that an interrupted build never leaves a half-written cache."""
    stamp = build_dir / TINY_STAMP_FILENAME
    if not force and stamp.is_file() and json.loads(stamp.read_text()).get("key") == key:
        return build_dir
    staging = build_dir.with_name(f".{build_dir.name}-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    save(staging)
    (staging / TINY_STAMP_FILENAME).write_text(json.dumps({"key": key}) + "\n")
    shutil.rmtree(build_dir, ignore_errors=True)
    staging.rename(build_dir)
    return build_dir


def randomise_zero_weights(module: Any, std: float = 0.02) -> None:
    """Diffusers zero-initialises some output projections (e.g. of motion modules) so that an untrained block is
    an identity; a random demo would then never exercise them. Give such weights small random values instead."""
    import torch

    with torch.no_grad():
        for parameter in module.parameters():
            if parameter.dim() >= 2 and not parameter.any():
                parameter.normal_(0.0, std)


def freeze(*networks: Any) -> None:
    """float32, eval mode, no gradients: how every exported network is traced."""
    for network in networks:
        network.float().eval().requires_grad_(False)
