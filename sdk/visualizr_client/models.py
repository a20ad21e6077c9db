"""Typed results of the Visualizr API, shaped like the API reference (``visualizr-api.md``).

Every Struct tolerates fields it does not know (servers may add fields) and every field the reference does not
promise in every state is optional, so one ``GenerationStatus`` covers the queued, processing, completed,
failed and cancelled shapes of the status endpoint.
"""

from __future__ import annotations

import base64
from typing import Any, Union

import msgspec

QUEUED = "queued"
PROCESSING = "processing"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"
TERMINAL_STATES = frozenset({COMPLETED, FAILED, CANCELLED})


class Model(msgspec.Struct, forbid_unknown_fields=False, omit_defaults=True):
    """Base of every result type: unknown fields are ignored, ``to_dict()`` gives plain JSON-able data."""

    def to_dict(self) -> dict[str, Any]:
        return msgspec.to_builtins(self)


# --- generation -------------------------------------------------------------------------------------------


class ErrorInfo(Model):
    code: str
    message: str = ""
    details: Any = None


class VideoMetadata(Model):
    duration_seconds: float | None = None
    fps: float | None = None
    resolution: str | None = None
    file_size_bytes: int | None = None
    format: str | None = None
    codec: str | None = None
    bitrate_kbps: float | None = None
    num_frames: int | None = None


class VideoResult(Model):
    video_url: str
    thumbnail_url: str | None = None
    preview_gif_url: str | None = None
    metadata: VideoMetadata | None = None
    keyframe_url: str | None = None  # server extension: the picture a keyframe stage made from the prompt


class GenerationAccepted(Model):
    """Answer of the three ``POST /api/v1/generate/...`` endpoints (``character_id`` for character animation)."""

    request_id: str
    status: str
    estimated_time_seconds: float | None = None
    queue_position: int | None = None
    created_at: str | None = None
    character_id: str | None = None


class WebhookAttempt(Model):
    """One POST of a webhook delivery: when (epoch seconds), the receiver's HTTP status or the error."""

    at: float
    duration_seconds: float = 0
    status_code: int | None = None
    error: str | None = None


class WebhookDelivery(Model):
    """One event of a job's webhook (``webhook_id`` is the same on every retry)."""

    webhook_id: str
    event: str
    status: str
    attempts: list[WebhookAttempt] = msgspec.field(default_factory=list)
    next_attempt_at: str | None = None
class QuoteLimit(Model):
    """The limit a quoted request is over: ``field`` (``gpu_memory`` for memory), the submission's error message
    and details (value, min, max; required_gb, available_gb)."""

    field: str | None = None
    message: str = ""
    details: dict[str, Any] | None = None


class Quote(Model):
    """Answer of ``POST /api/v1/generate/quote``: what a submission of the same body would get now (no job made);
    ``fits`` false names the ``limit`` (the figures are then None when the parameters are out of range)."""

    fits: bool
    model: str
    num_frames: int | None = None
    queue_position: int | None = None
    estimated_wait_seconds: float | None = None
    estimated_run_seconds: float | None = None
    estimated_time_seconds: float | None = None
    model_loaded: bool | None = None
    limit: QuoteLimit | None = None


class GenerationStatus(Model):
    """Answer of ``GET /api/v1/generate/status/{request_id}`` in any state."""

    request_id: str
    status: str
    progress: float = 0
    current_step: str | None = None
    queue_position: int | None = None
    estimated_remaining_seconds: float | None = None
    result: VideoResult | None = None
    error: ErrorInfo | None = None
    created_at: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    failed_at: str | None = None
    cancelled_at: str | None = None
    processing_time_seconds: float | None = None
    webhook_deliveries: list[WebhookDelivery] | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATES


class CancelResult(Model):
    """Answer of ``DELETE /api/v1/generate/{request_id}``."""

    request_id: str
    status: str
    cancelled_at: str | None = None
    message: str | None = None


# --- models -----------------------------------------------------------------------------------------------


class ModelSummary(Model):
    id: str
    name: str | None = None
    description: str | None = None
    type: str | None = None
    max_resolution: str | None = None
    max_duration_seconds: float | None = None
    supported_formats: list[str] = []
    gpu_memory_required_gb: float | None = None
    average_generation_time_seconds: float | None = None
    status: str | None = None  # server extension: loaded / loading / unloaded / failed
    loaded: bool | None = None  # server extension


class ModelList(Model):
    models: list[ModelSummary] = []


class ModelCapabilities(Model):
    max_resolution: str | None = None
    min_resolution: str | None = None
    max_duration_seconds: float | None = None
    min_duration_seconds: float | None = None
    max_fps: float | None = None
    min_fps: float | None = None
    supported_formats: list[str] = []
    supports_negative_prompt: bool | None = None
    supports_style_transfer: bool | None = None
    styles: list[str] = []  # server extension: what ``style`` / ``animation_style`` take on this model


class ModelRequirements(Model):
    gpu_memory_gb: float | None = None
    vram_usage_gb: float | None = None
    estimated_load_time_seconds: float | None = None


class ParameterRange(Model):
    min: float | None = None
    max: float | None = None
    default: Any = None
    description: str | None = None
    multiple_of: int | None = None  # server extension: the value must be a multiple of this


class ModelPerformance(Model):
    average_generation_time_seconds: float | None = None
    success_rate_percent: float | None = None
    total_generations: int | None = None


class ModelDetail(Model):
    """Answer of ``GET /api/v1/models/{model_id}``."""

    id: str
    name: str | None = None
    description: str | None = None
    version: str | None = None
    type: str | None = None
    capabilities: ModelCapabilities | None = None
    requirements: ModelRequirements | None = None
    parameters: dict[str, ParameterRange] = {}
    performance: ModelPerformance | None = None
    status: str | None = None  # server extensions from here on
    loaded: bool | None = None
    loaded_at: str | None = None
    load_error: ErrorInfo | None = None


class ModelLoadResult(Model):
    """Answer of ``POST /api/v1/models/{model_id}/load``."""

    model_id: str
    status: str
    estimated_load_time_seconds: float | None = None
    started_at: str | None = None


class ModelUnloadResult(Model):
    """Answer of ``POST /api/v1/models/{model_id}/unload``."""

    model_id: str
    status: str
    freed_memory_gb: float | None = None
    unloaded_at: str | None = None


# --- assets -----------------------------------------------------------------------------------------------


class VideoSummary(Model):
    id: str
    url: str
    thumbnail_url: str | None = None
    prompt: str | None = None
    model: str | None = None
    metadata: VideoMetadata | None = None
    created_at: str | None = None


class VideoList(Model):
    """Answer of ``GET /api/v1/assets/videos``."""

    videos: list[VideoSummary] = []
    total_count: int = 0
    has_more: bool = False


class CharacterInfo(Model):
    """A character of the registry: ``GET /api/v1/characters/{character_id}`` (and each of the list)."""

    character_id: str
    name: str = ""
    description: str = ""
    builtin: bool = False
    reference_image_urls: list[str] = []
    video_count: int = 0
    created_at: str | None = None


class CharacterList(Model):
    """Answer of ``GET /api/v1/characters``."""

    characters: list[CharacterInfo] = []
    total_count: int = 0
    has_more: bool = False


class CharacterDeleteResult(Model):
    """Answer of ``DELETE /api/v1/characters/{character_id}``."""

    character_id: str
    status: str
    deleted_at: str | None = None


class VideoParameters(Model):
    width: int | None = None
    height: int | None = None
    num_frames: int | None = None
    fps: int | None = None
    guidance_scale: float | None = None
    num_inference_steps: int | None = None
    seed: int | None = None
    # image-to-video: the request's motion_strength as the model took it (AnimateDiff: strength; Stable Video
    # Diffusion: motion_bucket_id and noise_aug_strength)
    strength: float | None = None
    motion_bucket_id: int | None = None
    noise_aug_strength: float | None = None


class GenerationInfo(Model):
    request_id: str | None = None
    processing_time_seconds: float | None = None
    gpu_memory_used_gb: float | None = None


class VideoDetail(Model):
    """Answer of ``GET /api/v1/assets/videos/{video_id}``."""

    id: str
    url: str
    thumbnail_url: str | None = None
    preview_gif_url: str | None = None
    prompt: str | None = None
    negative_prompt: str | None = None
    style: str | None = None  # server extension: the style applied to the prompt
    model: str | None = None
    parameters: VideoParameters | None = None
    metadata: VideoMetadata | None = None
    generation_info: GenerationInfo | None = None
    created_at: str | None = None
    keyframe_url: str | None = None  # server extension (see VideoResult)


class VideoDeleteResult(Model):
    """Answer of ``DELETE /api/v1/assets/videos/{video_id}``."""

    video_id: str
    status: str
    freed_space_bytes: int | None = None
    deleted_at: str | None = None


# --- health and metrics -----------------------------------------------------------------------------------


class GpuDevice(Model):
    id: int | None = None
    name: str | None = None
    memory_total_gb: float | None = None
    memory_used_gb: float | None = None
    memory_free_gb: float | None = None
    utilization_percent: float | None = None
    temperature_celsius: float | None = None


class GpuInfo(Model):
    available: bool = False
    count: int = 0
    devices: list[GpuDevice] = []


class LoadedModel(Model):
    id: str
    memory_usage_gb: float | None = None
    loaded_at: str | None = None


class QueueStatus(Model):
    pending_requests: int | None = None
    processing_requests: int | None = None
    completed_today: int | None = None


class HealthStatus(Model):
    """Answer of ``GET /api/v1/health``."""

    status: str
    timestamp: str | None = None
    version: str | None = None
    uptime_seconds: float | None = None
    gpu_info: GpuInfo | None = None
    loaded_models: list[LoadedModel] = []
    queue_status: QueueStatus | None = None


class RequestMetrics(Model):
    total: int | None = None
    today: int | None = None
    per_hour: float | None = None
    success_rate_percent: float | None = None


class GenerationTimeMetrics(Model):
    average_time_seconds: float | None = None
    median_time_seconds: float | None = None
    fastest_time_seconds: float | None = None
    slowest_time_seconds: float | None = None


class QueueMetrics(Model):
    current_length: int | None = None
    max_length_today: int | None = None
    average_wait_time_seconds: float | None = None


class StorageMetrics(Model):
    total_videos: int | None = None
    total_size_gb: float | None = None
    available_space_gb: float | None = None


class ModelMetrics(Model):
    generations: int | None = None
    success_rate: float | None = None
    average_time_seconds: float | None = None


class Metrics(Model):
    """Answer of ``GET /api/v1/metrics``."""

    requests: RequestMetrics | None = None
    generation: GenerationTimeMetrics | None = None
    queue: QueueMetrics | None = None
    storage: StorageMetrics | None = None
    models: dict[str, ModelMetrics] = {}


# --- WebSocket messages (server -> client) ----------------------------------------------------------------


class ProgressMessage(Model, tag="progress", tag_field="type"):
    request_id: str
    status: str = PROCESSING
    progress: float = 0
    current_step: str | None = None
    estimated_remaining_seconds: float | None = None
    queue_position: int | None = None


class CompletedMessage(Model, tag="completed", tag_field="type"):
    request_id: str
    result: VideoResult | None = None


class FailedMessage(Model, tag="failed", tag_field="type"):
    request_id: str
    error: ErrorInfo | None = None


class CancelledMessage(Model, tag="cancelled", tag_field="type"):
    request_id: str
    status: str = CANCELLED
    cancelled_at: str | None = None


class PreviewMessage(Model, tag="preview", tag_field="type"):
    """A live preview (``stream_progress(..., previews=True)``): a few frames side by side, a small JPEG."""

    request_id: str
    step: int
    total_steps: int
    image: str  # a data URL: data:image/jpeg;base64,...
    width: int
    height: int
    frames: int = 1

    @property
    def image_bytes(self) -> bytes:
        """The picture's bytes (JPEG), decoded from the data URL."""
        return base64.b64decode(self.image.partition(",")[2])


class ErrorMessage(Model, tag="error", tag_field="type"):
    error: ErrorInfo
    request_id: str | None = None


StreamMessage = Union[ProgressMessage, PreviewMessage, CompletedMessage, FailedMessage, CancelledMessage]  # noqa: UP007
TERMINAL_MESSAGES = (CompletedMessage, FailedMessage, CancelledMessage)
