"""Generated videos in the job table: the ``completed`` rows (``completed_at`` is a video's creation time), listed,
read and deleted through the job store (``await store.run(fn)``)."""

from __future__ import annotations

from typing import Any

import msgspec

from visualizr.frontend.jobs.database import POSTGRESQL, Connection
from visualizr.frontend.jobs.record import COMPLETED, VideoMetadata
from visualizr.frontend.jobs.webhook_outbox import forget as forget_webhook

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


def _filters(query: ListQuery) -> tuple[str, list[Any]]:
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
    return " AND ".join(where), params


_NEWEST_FIRST = "ORDER BY completed_at DESC, request_id DESC"


def completed_ids(conn: Connection, query: ListQuery) -> list[str]:
    """Request ids of the completed jobs matching the filters, newest first (not paginated: the caller drops
    the ones whose files are gone before counting and slicing)."""
    where, params = _filters(query)
    return [row[0] for row in conn.execute(f"SELECT request_id FROM jobs WHERE {where} {_NEWEST_FIRST}", params)]


def completed_page(conn: Connection, query: ListQuery) -> tuple[list[str], int]:
    """One page of those ids and how many match, paginated by the database (when the table is the truth)."""
    where, params = _filters(query)
    total = conn.execute(f"SELECT COUNT(*) FROM jobs WHERE {where}", params).fetchone()
    sql = f"SELECT request_id FROM jobs WHERE {where} {_NEWEST_FIRST} LIMIT ? OFFSET ?"
    page = conn.execute(sql, [*params, query.limit, query.offset])
    return [row[0] for row in page], int(total[0]) if total else 0


def stored_videos(conn: Connection) -> tuple[int, int]:
    """(videos, their MP4s' bytes) of the completed jobs, from the metadata read back when each was made."""
    size = "file_size_bytes"
    if conn.dialect == POSTGRESQL:
        size_of = f"(metadata::json ->> '{size}')::bigint"
    else:
        size_of = f"json_extract(metadata, '$.{size}')"
    sql = f"SELECT COUNT(*), COALESCE(SUM({size_of}), 0) FROM jobs WHERE status = ? AND video_path IS NOT NULL"
    row = conn.execute(sql, (COMPLETED,)).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


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
    """Delete one completed job's row (and its webhook's); False when there is none (unknown, or not completed)."""
    cursor = conn.execute("DELETE FROM jobs WHERE request_id = ? AND status = ?", (request_id, COMPLETED))
    if cursor.rowcount > 0:
        forget_webhook(conn, request_id)
    return cursor.rowcount > 0
