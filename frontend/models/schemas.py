"""Wire types of /api/v1/models (msgspec Structs): the API reference's fields plus the live Triton state.

Added to the reference: ``status`` (loaded | loading | unloading | unloaded | failed | unknown) and ``loaded``
on list items and details; ``capabilities.styles`` (the styles the model takes, ``frontend.styles``; then
``supports_style_transfer`` is true), ``loaded_at``, ``load_error`` (the last failed load: MODEL_LOAD_FAILED with
Triton's reason), ``inference_servers`` (the model on each Triton endpoint: its status there, ``down`` for an
endpoint that cannot be reached, and the problem that keeps it from serving, if any) and ``cpu_engines`` (each
component model's CPU engine and the calibration's timings) on details. Times and rates not
measured yet are null.
"""

from __future__ import annotations

import msgspec

from visualizr.frontend.errors import ErrorInfo
from visualizr.frontend.styles import styles_for
from visualizr.model_card import Capabilities, ModelCard, ParameterRange, Requirements

LOADED = "loaded"
LOADING = "loading"
UNLOADING = "unloading"
UNLOADED = "unloaded"
LOAD_FAILED = "failed"
UNKNOWN = "unknown"  # Triton unreachable
DOWN = "down"  # on one endpoint: that endpoint cannot be reached


class ServerStatus(msgspec.Struct):
    url: str
    status: str
    problem: str | None = None  # a dead stub healing, a model given up on, why the endpoint is down


class ModelSummary(msgspec.Struct):
    id: str
    name: str
    description: str
    type: str
    max_resolution: str
    max_duration_seconds: float
    supported_formats: list[str]
    gpu_memory_required_gb: float
    average_generation_time_seconds: float | None
    status: str
    loaded: bool


class ModelList(msgspec.Struct):
    models: list[ModelSummary]


class Performance(msgspec.Struct):
    average_generation_time_seconds: float | None
    success_rate_percent: float | None
    total_generations: int


class ServedCapabilities(Capabilities, frozen=True):
    """A card's capabilities as the API serves them: the ``styles`` the API applies for this model, and
    ``supports_style_transfer`` true where there are any."""

    styles: list[str] = []

    @classmethod
    def of(cls, card: ModelCard) -> ServedCapabilities:
        styles = styles_for(card)
        fields = {**msgspec.structs.asdict(card.capabilities), "supports_style_transfer": bool(styles)}
        return cls(**fields, styles=styles)


class ComponentEngine(msgspec.Struct):
    """A component model's CPU engine (null: chosen by measurement when it loads) and each engine's measured ms
    per call at the card's default shapes (empty: not measured on this machine yet)."""

    model: str
    engine: str | None
    ms: dict[str, float]


class ModelDetail(msgspec.Struct):
    id: str
    name: str
    description: str
    version: str
    type: str
    capabilities: ServedCapabilities
    requirements: Requirements
    parameters: dict[str, ParameterRange]
    performance: Performance
    status: str
    loaded: bool
    loaded_at: str | None
    load_error: ErrorInfo | None
    inference_servers: list[ServerStatus]
    cpu_engines: list[ComponentEngine] = []


class LoadResponse(msgspec.Struct):
    model_id: str
    status: str  # loading | loaded
    estimated_load_time_seconds: float
    started_at: str


class UnloadResponse(msgspec.Struct):
    model_id: str
    status: str  # unloaded, or unloading while Triton still holds a model
    freed_memory_gb: float
    unloaded_at: str


class LoadedModel(msgspec.Struct):
    id: str
    memory_usage_gb: float | None
    loaded_at: str | None


class ModelHealth(msgspec.Struct):
    """A model as the health endpoint shows it: ``serving`` when a job for it would run now."""

    id: str
    status: str
    serving: bool
    problems: list[str]
