"""Wire types of the generation API (msgspec Structs), shaped exactly as the API reference shows them."""

from __future__ import annotations

import msgspec
from litestar.datastructures import UploadFile

from visualizr.frontend.errors import ErrorInfo
from visualizr.frontend.jobs.record import VideoMetadata
from visualizr.frontend.webhooks.schemas import WebhookDelivery

DEFAULT_MODEL = "animatediff"
MAX_PROMPT_CHARS = 2000


class GenerateVideoRequest(msgspec.Struct, forbid_unknown_fields=True):
    """POST /api/v1/generate/video body. Absent (or null) fields take the model card's defaults; ``style`` is
    one of ``frontend.styles.STYLES`` (absent: none)."""

    prompt: str | None = None
    negative_prompt: str | None = None
    width: int | None = None
    height: int | None = None
    num_frames: int | None = None
    fps: int | None = None
    num_inference_steps: int | None = None
    guidance_scale: float | None = None
    seed: int | None = None
    model: str | None = None
    style: str | None = None
    webhook_url: str | None = None  # where the job's events are POSTed, signed (README: "Webhooks")
    webhook_events: list[str] | None = None  # of completed, failed, cancelled, progress (absent: the first three)


# Request examples for the OpenAPI document: the reference's, cut to what the tiny demo model accepts (sizes and
# model left to the card's defaults).
GENERATE_VIDEO_EXAMPLE = {
    "prompt": "A serene mountain landscape at sunset with golden light",
    "negative_prompt": "blurry, low quality, distorted",
    "num_frames": 8,
    "fps": 8,
    "num_inference_steps": 4,
    "guidance_scale": 7.5,
    "seed": 42,
    "style": "cinematic",
}
IMAGE_TO_VIDEO_EXAMPLE = {
    "motion_prompt": "gentle swaying in the wind",
    "duration_seconds": 1,
    "fps": 8,
    "motion_strength": 0.7,
}
CHARACTER_ANIMATION_EXAMPLE = {
    "character_id": "assistant",
    "action": "greeting",
    "emotion": "happy",
    "background": "office",
    "duration_seconds": 1,
    "animation_style": "natural",
}


class GenerateVideoResponse(msgspec.Struct):
    request_id: str
    status: str
    estimated_time_seconds: int
    queue_position: int
    created_at: str


class ImageToVideoForm(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """POST /api/v1/generate/video/from-image body (multipart/form-data): the ``image`` file and text fields, whose
    numbers arrive as text (``frontend.bodies.convert_form``)."""

    image: UploadFile
    end_image: UploadFile | None = None  # keyframes, where the card has supports_end_image
    motion_prompt: str | None = None
    duration_seconds: float | None = None
    fps: int | None = None
    motion_strength: float | None = None
    model: str | None = None
    width: int | None = None
    height: int | None = None
    negative_prompt: str | None = None
    seed: int | None = None
    num_inference_steps: int | None = None
    guidance_scale: float | None = None
    webhook_url: str | None = None
    webhook_events: str | None = None  # comma-separated, e.g. "completed,failed"


class CharacterAnimationRequest(msgspec.Struct, forbid_unknown_fields=True):
    """POST /api/v1/generate/character-animation body. Only ``character_id`` is required; ``model``, ``seed``
    and ``num_inference_steps`` extend the reference (as in the text-to-video body), ``character_strength`` too."""

    character_id: str | None = None
    action: str | None = None
    emotion: str | None = None
    background: str | None = None
    duration_seconds: float | None = None
    resolution: str | None = None
    animation_style: str | None = None
    model: str | None = None
    seed: int | None = None
    num_inference_steps: int | None = None
    character_strength: float | None = None  # 0-1: how strongly the reference picture conditions (IP-Adapter)
    webhook_url: str | None = None
    webhook_events: list[str] | None = None


class CharacterAnimationResponse(msgspec.Struct):
    request_id: str
    status: str
    character_id: str
    estimated_time_seconds: int
    created_at: str


class VideoResult(msgspec.Struct, omit_defaults=True):
    video_url: str
    thumbnail_url: str
    preview_gif_url: str
    metadata: VideoMetadata
    keyframe_url: str | None = None  # the first frame a keyframe stage made from the prompt (PNG), when one did


class QueuedStatus(msgspec.Struct, omit_defaults=True):
    """A waiting job. ``current_step`` says what it waits for (``queued``: a worker; ``retrying``,
    ``waiting_for_inference_server``, ``waiting_for_disk_space``, ``waiting_for_object_store``), ``waiting_reason``
    why in words; ``attempts`` and ``last_error`` are there once a run of it failed on the infrastructure."""

    request_id: str
    status: str
    progress: int
    current_step: str
    queue_position: int
    estimated_remaining_seconds: int
    created_at: str
    waiting_reason: str | None = None
    attempts: int | None = None
    last_error: str | None = None
    webhook_deliveries: list[WebhookDelivery] | None = None


class ProcessingStatus(msgspec.Struct, omit_defaults=True):
    request_id: str
    status: str
    progress: int
    current_step: str
    estimated_remaining_seconds: int
    created_at: str
    started_at: str
    webhook_deliveries: list[WebhookDelivery] | None = None


class CompletedStatus(msgspec.Struct, omit_defaults=True):
    request_id: str
    status: str
    progress: int
    result: VideoResult
    created_at: str
    completed_at: str
    processing_time_seconds: float
    webhook_deliveries: list[WebhookDelivery] | None = None


class FailedStatus(msgspec.Struct, omit_defaults=True):
    request_id: str
    status: str
    error: ErrorInfo
    created_at: str
    failed_at: str
    webhook_deliveries: list[WebhookDelivery] | None = None


class CancelledStatus(msgspec.Struct, omit_defaults=True):
    request_id: str
    status: str
    progress: int
    created_at: str
    cancelled_at: str
    started_at: str | None = None
    webhook_deliveries: list[WebhookDelivery] | None = None


JobStatus = QueuedStatus | ProcessingStatus | CompletedStatus | FailedStatus | CancelledStatus


class CancelResponse(msgspec.Struct):
    request_id: str
    status: str
    cancelled_at: str
    message: str


# --- WebSocket messages (server -> client) ---------------------------------------------------------------


class WsProgress(msgspec.Struct, omit_defaults=True):
    type: str
    request_id: str
    status: str
    progress: int
    current_step: str
    estimated_remaining_seconds: int
    queue_position: int | None = None  # only while queued
    waiting_reason: str | None = None  # only while queued and held back (see QueuedStatus)


class WsCompleted(msgspec.Struct):
    type: str
    request_id: str
    result: VideoResult


class WsFailed(msgspec.Struct):
    type: str
    request_id: str
    error: ErrorInfo


class WsCancelled(msgspec.Struct):
    type: str
    request_id: str
    status: str
    cancelled_at: str


class WsPreview(msgspec.Struct):
    """A live preview (subscribers that asked for previews): the frames side by side as a small JPEG data URL."""

    type: str
    request_id: str
    step: int
    total_steps: int
    image: str  # data:image/jpeg;base64,...
    width: int
    height: int
    frames: int  # frames side by side in the picture


class WsError(msgspec.Struct, omit_defaults=True):
    type: str
    error: ErrorInfo
    request_id: str | None = None


class WsClientMessage(msgspec.Struct):
    """What a client sends: {"type": "subscribe" | "unsubscribe", "request_id": "...", "previews": bool}, or
    {"type": "previews"} (this socket will want previews)."""

    type: str
    request_id: str | None = None
    previews: bool = False  # subscribe: send this job's live previews too


class QuoteLimit(msgspec.Struct):
    """The limit a quoted request is over: the field (``gpu_memory`` for the memory it needs), the message its
    submission's error would carry and that error's details (value, min, max; required_gb, available_gb)."""

    field: str | None
    message: str
    details: dict[str, object]


class QuoteResponse(msgspec.Struct):
    """POST /api/v1/generate/quote answer: what a POST /api/v1/generate/video of the same body would get now,
    without creating a job. Seconds are floats; ``fits`` false names the ``limit`` (the figures are then null when
    the request cannot be resolved to parameters)."""

    fits: bool
    model: str
    num_frames: int | None
    queue_position: int | None
    estimated_wait_seconds: float | None
    estimated_run_seconds: float | None
    estimated_time_seconds: float | None
    model_loaded: bool | None
    limit: QuoteLimit | None = None
