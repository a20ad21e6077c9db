"""Loads what the loop needs from an exported model directory: pipeline.json, tokenizer, scheduler."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import diffusers
from diffusers import SchedulerMixin
from transformers import CLIPTokenizer

from visualizr.pipeline_config import (
    PIPELINE_ASSETS_DIRNAME,
    PIPELINE_CONFIG_FILENAME,
    SCHEDULER_DIRNAME,
    TOKENIZER_DIRNAME,
    PipelineConfig,
    read_pipeline_config,
)

SCHEDULER_CONFIG_FILENAME = "scheduler_config.json"


def assets_dir(model_dir: Path, version: int | str = 1) -> Path:
    """``<model_repository>/<model_id>/<version>/assets``."""
    return Path(model_dir) / str(version) / PIPELINE_ASSETS_DIRNAME


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

    def __call__(self) -> SchedulerMixin:
        return self.scheduler_class.from_config(self.config)


@dataclass(frozen=True)
class PipelineAssets:
    config: PipelineConfig
    tokenizer: CLIPTokenizer
    scheduler_factory: SchedulerFactory

    @classmethod
    def load(cls, directory: Path) -> PipelineAssets:
        """Read ``<directory>/pipeline.json``, ``tokenizer/`` and ``scheduler/`` (see assets_dir)."""
        directory = Path(directory)
        if not directory.is_dir():
            raise FileNotFoundError(f"pipeline assets not found: {directory}")
        return cls(
            config=read_pipeline_config(directory / PIPELINE_CONFIG_FILENAME),
            tokenizer=CLIPTokenizer.from_pretrained(str(directory / TOKENIZER_DIRNAME)),
            scheduler_factory=SchedulerFactory.from_dir(directory / SCHEDULER_DIRNAME),
        )
