"""Each component model's CPU engine as the details show it: the override, else the calibration's choice."""

from __future__ import annotations

from pathlib import Path

from visualizr.frontend.models.schemas import ComponentEngine
from visualizr.model_card import ModelCard
from visualizr.pipeline.engine_calibration import served_engine


def component_engines(repository: Path, card: ModelCard, requested: str) -> list[ComponentEngine]:
    """The card's component models (its Triton models but the pipeline model, named like the card)."""
    engines = []
    for model in card.triton_models:
        if model != card.id:
            engine, ms = served_engine(repository, model, requested)
            engines.append(ComponentEngine(model=model, engine=engine, ms=ms))
    return engines
