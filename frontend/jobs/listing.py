"""Generated videos in the job table: the ``completed`` rows (``completed_at`` is a video's creation time), listed,
read and deleted through the job store (``await store.run(fn)``)."""

from __future__ import annotations

from typing import Any

import msgspec

from visualizr.frontend.jobs.database import Connection
from visualizr.frontend.jobs.record import COMPLETED, VideoMetadata

DEFAULT_LIMIT = 50


class ListQuery(msgspec.Struct, frozen=True):
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    model: str | None = None
    created_from: float | None = None  # epoch seconds, inclusive
    created_before: float | None = None  # epoch seconds, exclusive


class ListedRow(msgspec.Struct, frozen=True):
    request_id: str
    model: str
    prompt: str
    completed_at: float
    metadata: VideoMetadata | None


def completed_ids(conn: Connection, query: ListQuery) -> list[str]:
    """Request ids of the completed jobs matching the filters, newest first (not paginated: the caller drops
    the ones whose files are gone before counting and slicing)."""
    where = ["status = ?", "completed_at IS NOT NULL"]
    params: list[Any] = [COMPLETED]
    if query.model is not None:
        where.append("model = ?")
        params.append(query.model)
    if query.created_from is not None:
        where.append("completed_at >= ?")
        params.append(query.created_from)
    if query.created_before is not None:
        where.append("completed_at < ?")
        params.append(query.created_before)
    sql = f"SELECT request_id FROM jobs WHERE {' AND '.join(where)} ORDER BY completed_at DESC, request_id DESC"
    return [row[0] for row in conn.execute(sql, params)]


def listed_rows(conn: Connection, request_ids: list[str]) -> dict[str, ListedRow]:
    """The listing columns of some jobs, by request id."""
    if not request_ids:
        return {}
    marks = ", ".join("?" for _ in request_ids)
    rows = conn.execute(
        f"SELECT request_id, model, prompt, completed_at, metadata FROM jobs WHERE request_id IN ({marks})",
        request_ids,
    ).fetchall()
    return {
        row[0]: ListedRow(
            request_id=row[0],
            model=row[1],
            prompt=row[2],
            completed_at=float(row[3]),
            metadata=msgspec.json.decode(row[4], type=VideoMetadata) if row[4] else None,
        )
        for row in rows
    }


def delete_completed(conn: Connection, request_id: str) -> bool:
    """Delete one completed job's row; False when there is none (unknown, or not completed)."""
    cursor = conn.execute("DELETE FROM jobs WHERE request_id = ? AND status = ?", (request_id, COMPLETED))
    return cursor.rowcount > 0
