"""Loads what a loop needs from an exported model directory: pipeline.json, the scheduler, the family's loop."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import diffusers
from diffusers import SchedulerMixin

from visualizr.families import get_family
from visualizr.pipeline_config import PIPELINE_CONFIG_FILENAME, SCHEDULER_DIRNAME, read_pipeline_config

if TYPE_CHECKING:
    from visualizr.pipeline.tensors import TensorPlacement

SCHEDULER_CONFIG_FILENAME = "scheduler_config.json"


@dataclass(frozen=True)
class SchedulerFactory:
    """Builds a fresh scheduler per request: schedulers are stateful (set_timesteps, step index)."""

    scheduler_class: type[SchedulerMixin]
    config: dict[str, Any]

    @classmethod
    def from_dir(cls, path: Path) -> SchedulerFactory:
        config = json.loads((Path(path) / SCHEDULER_CONFIG_FILENAME).read_text())
        name = config.get("_class_name")
        scheduler_class = getattr(diffusers, name, None) if isinstance(name, str) else None
        if not (isinstance(scheduler_class, type) and issubclass(scheduler_class, SchedulerMixin)):
            raise ValueError(f"{path}: _class_name {name!r} is not a diffusers scheduler")
        return cls(scheduler_class, config)

    @classmethod
    def from_assets(cls, directory: Path) -> SchedulerFactory:
        return cls.from_dir(Path(directory) / SCHEDULER_DIRNAME)

    def __call__(self) -> SchedulerMixin:
        return self.scheduler_class.from_config(self.config)


def check_assets_dir(directory: Path) -> Path:
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"pipeline assets not found: {directory}")
    return directory


def load_pipeline(directory: Path, placement: TensorPlacement | None = None) -> Any:
    """The loop of an exported model, from its assets directory (``visualizr.pipeline_config.assets_dir``): the
    family named in ``pipeline.json`` says which loop class reads the rest; ``placement``: where its tensors live."""
    directory = check_assets_dir(directory)
    config = read_pipeline_config(directory / PIPELINE_CONFIG_FILENAME)
    return get_family(config.family).pipeline_class().from_assets(directory, placement)
