"""The job lifecycle as the database owns it: one state machine, every state change a typed transition mapped to
one UPDATE (docs/ARCHITECTURE.md, "The queue in the database").

    queued --claim (work_queue.claim)--> processing --Progressed--> processing
    processing --Completed | Failed--> completed | failed
    processing --Retrying--> queued   (an infrastructure failure, or its lease expired: runs again after a backoff)
    processing --Released--> queued   (a clean shutdown: the stopped run does not count)
    queued | processing --cancel--> cancelled   (any replica; a running job's runner finds out at its next write)

A transition of a running job is fenced on its owner: it changes the row only while that replica still runs it
(``WHERE request_id = ? AND owner = ? AND status = 'processing'``) and returns the row as it is then, or None: the
replica lost the job (cancelled, or its lease expired and the job was queued again) and must write nothing more.
A transition that ends a job (or reports its progress) stores its webhook's event in the same transaction
(``webhook_outbox.record_event``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

from visualizr.frontend import clock
from visualizr.frontend.jobs.database import Connection
from visualizr.frontend.jobs.record import (
    CANCELLED,
    COMPLETED,
    FAILED,
    PROCESSING,
    QUEUED,
    STEP_QUEUED,
    STEP_RETRYING,
    JobRecord,
    VideoMetadata,
)
from visualizr.frontend.jobs.store import decode_row
from visualizr.frontend.jobs.webhook_outbox import record_event
from visualizr.names import PHASE_DONE

_OWNED = "owner = :owner AND status = :processing"
_REQUEUED = f"owner = NULL, lease_expires_at = NULL, progress = 0, started_at = NULL, status = '{QUEUED}'"


class Transition(msgspec.Struct, frozen=True):
    """A state change of a running job: its fields are the columns it sets; ``FIXED`` sets the others."""

    FIXED: ClassVar[str] = ""

    def assignments(self) -> tuple[str, dict[str, Any]]:
        """The SET clause and its parameters."""
        params = {
            name: msgspec.json.encode(value).decode() if isinstance(value, msgspec.Struct) else value
            for name in self.__struct_fields__
            for value in [getattr(self, name)]
        }
        sets = [f"{name} = :{name}" for name in params]
        return ", ".join(filter(None, [*sets, self.FIXED])), params


class Progressed(Transition, frozen=True):
    progress: int
    current_step: str


class Completed(Transition, frozen=True):
    FIXED = f"status = '{COMPLETED}', progress = 100, current_step = '{PHASE_DONE}', lease_expires_at = NULL"
    completed_at: float
    processing_time_seconds: float
    video_path: str
    thumbnail_path: str
    preview_path: str
    keyframe_path: str | None
    metadata: VideoMetadata | None


class Failed(Transition, frozen=True):
    FIXED = f"status = '{FAILED}', lease_expires_at = NULL"
    failed_at: float
    error_code: str
    error_message: str
    error_details: str


class Retrying(Transition, frozen=True):
    """Back to the queue, to run again from the start (with its seed) once ``not_before`` has passed."""

    FIXED = f"{_REQUEUED}, current_step = '{STEP_RETRYING}'"
    last_error: str
    not_before: float


class Released(Transition, frozen=True):
    """Back to the queue at a clean shutdown; the run it stopped is not counted."""

    FIXED = (
        f"{_REQUEUED}, current_step = '{STEP_QUEUED}', attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END"
    )


def apply(
    conn: Connection, request_id: str, transition: Transition, fence: str, fence_params: dict[str, Any]
) -> JobRecord | None:
    """``transition`` on the row of ``request_id`` where ``fence`` holds; the row after it, or None."""
    sets, params = transition.assignments()
    row = conn.execute(
        f"UPDATE jobs SET {sets} WHERE request_id = :request_id AND {fence} RETURNING *",
        {**params, **fence_params, "request_id": request_id},
    ).fetchone()
    if row is None:
        return None
    record = decode_row(row)
    record_event(conn, record, isinstance(transition, Progressed), clock.now())
    return record


def advance(conn: Connection, request_id: str, owner: str, transition: Transition) -> JobRecord | None:
    """A running job's transition, by its owner only (None: the owner lost the job; nothing changed)."""
    return apply(conn, request_id, transition, _OWNED, {"owner": owner, "processing": PROCESSING})


def cancel(conn: Connection, request_id: str, now: float) -> JobRecord | None:
    """Cancel a queued or running job, from any replica: the row is ``cancelled`` at once; a running one keeps
    its owner and gets ``cancel_requested``: its runner, wherever it is, stops at its next write or heartbeat.
    None: it was neither queued nor running (the caller reads why)."""
    row = conn.execute(
        f"UPDATE jobs SET status = '{CANCELLED}', cancelled_at = ?, lease_expires_at = NULL, "
        f"cancel_requested = CASE WHEN status = '{PROCESSING}' THEN 1 ELSE 0 END "
        f"WHERE request_id = ? AND status IN ('{QUEUED}', '{PROCESSING}') RETURNING *",
        (now, request_id),
    ).fetchone()
    if row is None:
        return None
    record = decode_row(row)
    record_event(conn, record, False, now)
    return record
