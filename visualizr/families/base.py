"""What the rest of the system knows about a model family (stdlib only: no torch)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from visualizr import names


@dataclass(frozen=True)
class Network:
    """One component network: exported to ONNX, served as the Triton model ``<model id>_<component>``."""

    component: str
    # Triton batches it (max_batch_size + dynamic batcher): concurrent jobs' steps meet in one call. Its
    # per-sample scalar inputs (the timestep) are then [B] in ONNX and sent as [B, 1] (LTX-Video's timestep is one
    # per token, [B, S], like any other tensor input).
    batched: bool = False
    # Only some models of the family have it (Stable Video Diffusion's keyframe stage, exported with its own
    # weights); a model's card lists the Triton models it has (ModelCard.triton_models).
    optional: bool = False


@dataclass(frozen=True)
class Family:
    name: str  # registry key == ModelCard.family == PipelineConfig.family
    kind: str  # the model card's type: "text-to-video" or "image-to-video"
    networks: tuple[Network, ...]  # in the order their Triton models load
    required_inputs: tuple[str, ...]  # pipeline inputs (names of visualizr.names.PIPELINE_INPUTS)
    optional_inputs: tuple[str, ...]
    pipeline: str  # "module:Class" of its visualizr.pipeline.diffusion.DiffusionPipeline (imported on use)
    # The API's motion_strength (0, 1] of an image-to-video request -> the GenerationRequest fields it sets.
    motion: Callable[[float], dict[str, int | float]] = lambda strength: {names.IN_STRENGTH: strength}

    def __post_init__(self) -> None:
        unknown = [n for n in (*self.required_inputs, *self.optional_inputs) if n not in names.PIPELINE_INPUTS]
        if unknown:
            raise ValueError(f"family {self.name}: inputs {unknown} are not in visualizr.names.PIPELINE_INPUTS")

    @property
    def components(self) -> tuple[str, ...]:
        return tuple(network.component for network in self.networks)

    @property
    def inputs(self) -> tuple[str, ...]:
        return (*self.required_inputs, *self.optional_inputs)

    def network(self, component: str) -> Network:
        for network in self.networks:
            if network.component == component:
                return network
        raise ValueError(f"family {self.name} has no component {component!r}; it has {self.components}")

    def component_models(self, model_id: str) -> dict[str, str]:
        """Component -> Triton model name, for a model of this family."""
        return {c: names.component_model_name(model_id, c) for c in self.components}

    def pipeline_class(self) -> Any:
        module, _, attribute = self.pipeline.partition(":")
        return getattr(importlib.import_module(module), attribute)
