"""What the export needs of a model family, and the registry lookup of a family's export module.

Each family's ``export/families/<module>/__init__.py`` defines ``EXPORT``, a ``FamilyExport``: it loads the
tiny demo or local weights (through the same loader) into a ``LoadedModel``, and the family-agnostic
``repository.build_repository`` exports, verifies, configures and stamps it. Importing this module is cheap.
"""

from __future__ import annotations

import importlib
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
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
    unet_downsample_factor: int  # 2 ** (UNet blocks - 1): shapes the trace and verification cases


class FamilyExport(ABC):
    """A family's export: its loader and model-card defaults behind one call."""

    @property
    @abstractmethod
    def family(self) -> Family: ...

    def check_weights(self, weights: Path) -> str | None:
        """Why ``weights`` is not a folder this family loads, or None."""
        return None if (Path(weights) / "unet").is_dir() else "not a local diffusers folder (no unet/ inside)"

    @abstractmethod
    def load(self, options: ExportOptions) -> LoadedModel:
        """The tiny demo (``options.is_tiny``) or the local weights folder, loaded through the same loader."""


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
    for filename in ("config.json", "scheduler_config.json", "preprocessor_config.json"):
        if (config_dir / filename).is_file():
            config = json.loads((config_dir / filename).read_text())
            return config.get("_class_name") or config.get("image_processor_type")
    return None


def freeze(*networks: Any) -> None:
    """float32, eval mode, no gradients: how every exported network is traced."""
    for network in networks:
        network.float().eval().requires_grad_(False)
