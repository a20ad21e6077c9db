"""The API's views of a job: status bodies, WebSocket messages, result and error objects, from a job record.

Pure functions: the service computes what depends on live state (remaining time, queue position, what a waiting
job waits for) and passes it.
"""

from __future__ import annotations

from dataclasses import dataclass

from visualizr.frontend import clock
from visualizr.frontend.errors import GENERATION_FAILED, ErrorInfo
from visualizr.frontend.generation.schemas import (
    CancelledStatus,
    CompletedStatus,
    FailedStatus,
    JobStatus,
    ProcessingStatus,
    QueuedStatus,
    VideoResult,
    WsCancelled,
    WsCompleted,
    WsFailed,
    WsProgress,
)
from visualizr.frontend.jobs.naming import asset_names, asset_url, video_id_of
from visualizr.frontend.jobs.record import (
    CANCELLED,
    COMPLETED,
    FAILED,
    PROCESSING,
    QUEUED,
    STEP_QUEUED,
    JobRecord,
    VideoMetadata,
)

FAILED_MESSAGE = "Video generation failed"


def whole_seconds(seconds: float) -> int:
    """An estimate as the contract gives it, whole seconds: the nearest (rounding up would add up to a second to
    every estimate), at least 1 for a job not done."""
    return max(1, round(seconds))


@dataclass(frozen=True)
class Waiting:
    """Where a queued job stands: its place, the seconds until it is done, and what it waits for."""

    position: int = 0
    remaining_seconds: float = 0.0
    step: str = STEP_QUEUED
    reason: str | None = None


def result_of(rec: JobRecord) -> VideoResult:
    video, thumb, preview = asset_names(video_id_of(rec.request_id))
    metadata = rec.metadata or VideoMetadata(0.0, 0, "0x0", 0, "mp4", "h264")
    return VideoResult(
        video_url=asset_url(rec.video_path or video),
        thumbnail_url=asset_url(rec.thumbnail_path or thumb),
        preview_gif_url=asset_url(rec.preview_path or preview),
        metadata=metadata,
        keyframe_url=asset_url(rec.keyframe_path) if rec.keyframe_path else None,
    )


def error_of(rec: JobRecord) -> ErrorInfo:
    return ErrorInfo(
        code=rec.error_code or GENERATION_FAILED,
        message=rec.error_message or FAILED_MESSAGE,
        details=rec.error_details or "",
    )


def job_status(rec: JobRecord, remaining_seconds: float, waiting: Waiting | None = None) -> JobStatus:
    """The status body of the reference (plus ``queued`` and ``cancelled``) for a job in any state."""
    created = clock.iso(rec.created_at) or ""
    if rec.status == QUEUED:
        waiting = waiting or Waiting(remaining_seconds=remaining_seconds)
        return QueuedStatus(
            request_id=rec.request_id,
            status=QUEUED,
            progress=0,
            current_step=waiting.step,
            queue_position=waiting.position,
            estimated_remaining_seconds=whole_seconds(waiting.remaining_seconds),
            created_at=created,
            waiting_reason=waiting.reason,
            attempts=rec.attempts or None,
            last_error=rec.last_error if rec.attempts else None,
        )
    if rec.status == PROCESSING:
        return ProcessingStatus(
            request_id=rec.request_id,
            status=PROCESSING,
            progress=rec.progress,
            current_step=rec.current_step,
            estimated_remaining_seconds=whole_seconds(remaining_seconds),
            created_at=created,
            started_at=clock.iso(rec.started_at or rec.created_at) or "",
        )
    if rec.status == COMPLETED:
        return CompletedStatus(
            request_id=rec.request_id,
            status=COMPLETED,
            progress=100,
            result=result_of(rec),
            created_at=created,
            completed_at=clock.iso(rec.completed_at) or "",
            processing_time_seconds=round(rec.processing_time_seconds or 0.0, 3),
        )
    if rec.status == FAILED:
        return FailedStatus(
            request_id=rec.request_id,
            status=FAILED,
            error=error_of(rec),
            created_at=created,
            failed_at=clock.iso(rec.failed_at) or "",
        )
    return CancelledStatus(
        request_id=rec.request_id,
        status=CANCELLED,
        progress=rec.progress,
        created_at=created,
        cancelled_at=clock.iso(rec.cancelled_at) or "",
        started_at=clock.iso(rec.started_at),
    )


def progress_message(rec: JobRecord, remaining_seconds: float, waiting: Waiting | None = None) -> WsProgress:
    if rec.status == QUEUED:
        waiting = waiting or Waiting(remaining_seconds=remaining_seconds)
        return WsProgress(
            type="progress",
            request_id=rec.request_id,
            status=QUEUED,
            progress=0,
            current_step=waiting.step,
            estimated_remaining_seconds=whole_seconds(waiting.remaining_seconds),
            queue_position=waiting.position,
            waiting_reason=waiting.reason,
        )
    return WsProgress(
        type="progress",
        request_id=rec.request_id,
        status=rec.status,
        progress=rec.progress,
        current_step=rec.current_step,
        estimated_remaining_seconds=whole_seconds(remaining_seconds),
    )


def terminal_message(rec: JobRecord) -> WsCompleted | WsFailed | WsCancelled:
    if rec.status == COMPLETED:
        return WsCompleted(type="completed", request_id=rec.request_id, result=result_of(rec))
    if rec.status == FAILED:
        return WsFailed(type="failed", request_id=rec.request_id, error=error_of(rec))
    return WsCancelled(
        type="cancelled",
        request_id=rec.request_id,
        status=CANCELLED,
        cancelled_at=clock.iso(rec.cancelled_at) or "",
    )
