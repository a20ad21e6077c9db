"""Wire types of the asset API (msgspec Structs), fields in the API reference's order."""

from __future__ import annotations

import msgspec

from visualizr.frontend.jobs.record import GenerationParameters

# The reference's `parameters` object is exactly a job's resolved GenerationParameters.
VideoParameters = GenerationParameters


class ListedVideoMetadata(msgspec.Struct):
    duration_seconds: float
    resolution: str
    fps: int | float
    file_size_bytes: int


class ListedVideo(msgspec.Struct):
    id: str
    url: str
    thumbnail_url: str
    prompt: str
    model: str
    metadata: ListedVideoMetadata
    created_at: str


class VideoList(msgspec.Struct):
    videos: list[ListedVideo]
    total_count: int
    has_more: bool


class VideoFileMetadata(msgspec.Struct):
    duration_seconds: float
    resolution: str
    fps: int | float
    file_size_bytes: int
    format: str
    codec: str
    bitrate_kbps: int


class GenerationInfo(msgspec.Struct):
    request_id: str
    processing_time_seconds: float
    gpu_memory_used_gb: float | None  # null: the service does not measure per-job GPU memory yet


class VideoDetails(msgspec.Struct, omit_defaults=True):
    id: str
    url: str
    thumbnail_url: str
    preview_gif_url: str
    prompt: str
    negative_prompt: str
    style: str | None  # beyond the reference: the style applied to the prompt (frontend.styles), null for none
    model: str
    parameters: VideoParameters
    metadata: VideoFileMetadata
    generation_info: GenerationInfo
    created_at: str
    keyframe_url: str | None = None  # the keyframe (PNG) of a video whose model made one from the prompt
    character_id: str | None = None  # a character animation's character (``/api/v1/characters``)


class DeleteVideoResponse(msgspec.Struct):
    video_id: str
    status: str
    freed_space_bytes: int
    deleted_at: str
