"""Signed webhooks, stored: a job's webhook and the outbox of its events (docs/ARCHITECTURE.md, "Webhooks").

A job's webhook (``job_webhooks``: url and events) is written in the job's admission; an event's delivery
(``webhook_deliveries``) in the same transaction as the job's transition that causes it (``record_event``, called
by ``transitions``): a terminal state once per job (its id ``msg_<request_id>_<event>``, so retries and a second
write never make a second event), progress at most once every ``PROGRESS_INTERVAL_S`` per job. Any replica
claims due deliveries under a lease (FOR UPDATE SKIP LOCKED on PostgreSQL, as the job queue), POSTs them and
records each attempt; a delivery survives any restart, being a row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

import msgspec

from visualizr.frontend.jobs.database import POSTGRESQL, Connection, Row
from visualizr.frontend.jobs.record import CANCELLED, COMPLETED, FAILED, JobRecord

PROGRESS: Final = "progress"
EVENTS: Final = (COMPLETED, FAILED, CANCELLED, PROGRESS)
DEFAULT_EVENTS: Final = (COMPLETED, FAILED, CANCELLED)
PROGRESS_INTERVAL_S: Final = 5.0  # at most one progress event per job this often

# A delivery's states: waiting for its (next) attempt, received (a 2xx), given up (retried for the bounded time),
# dropped (its job is gone, or a progress event its job's end overtook).
PENDING: Final = "pending"
DELIVERED: Final = "delivered"
GAVE_UP: Final = "failed"
DROPPED: Final = "dropped"


class WebhookTarget(msgspec.Struct, frozen=True):
    """Where a job's events go, validated (``webhooks.targets``)."""

    url: str
    events: tuple[str, ...] = DEFAULT_EVENTS


class WebhookAttempt(msgspec.Struct, frozen=True, omit_defaults=True):
    """One POST of a delivery: when (epoch seconds), its HTTP status or why none came, how long it took."""

    at: float
    duration_seconds: float
    status_code: int | None = None
    error: str | None = None


class Delivery(msgspec.Struct, frozen=True):
    """One event of a job, as stored."""

    event_id: str
    request_id: str
    event: str
    url: str
    status: str
    created_at: float
    next_attempt_at: float
    payload: bytes | None
    attempts: tuple[WebhookAttempt, ...]


_attempts = msgspec.json.Decoder(tuple[WebhookAttempt, ...])


def _delivery(row: Row) -> Delivery:
    payload = row["payload"]
    return Delivery(
        event_id=row["event_id"],
        request_id=row["request_id"],
        event=row["event"],
        url=row["url"],
        status=row["status"],
        created_at=float(row["created_at"]),
        next_attempt_at=float(row["next_attempt_at"]),
        payload=None if payload is None else str(payload).encode(),
        attempts=_attempts.decode(row["attempts"]),
    )


def subscribe(conn: Connection, request_id: str, target: WebhookTarget) -> None:
    """Store a new job's webhook (inside its admission)."""
    conn.execute(
        "INSERT INTO job_webhooks (request_id, url, events) VALUES (?, ?, ?)",
        (request_id, target.url, ",".join(target.events)),
    )


def record_event(conn: Connection, record: JobRecord, progressed: bool, now: float) -> None:
    """The delivery of the event ``record`` (a job's row just written) makes, if its webhook wants it: its terminal
    state, or (``progressed``) a progress event when the last one is ``PROGRESS_INTERVAL_S`` old."""
    event = record.status if record.terminal else PROGRESS if progressed else None
    if event is None:
        return
    hook = conn.execute(
        "SELECT url, events, last_progress_at FROM job_webhooks WHERE request_id = ?", (record.request_id,)
    ).fetchone()
    if hook is None or event not in str(hook["events"]).split(","):
        return
    event_id = f"msg_{record.request_id}_{event}"
    if event == PROGRESS:
        if now - float(hook["last_progress_at"]) < PROGRESS_INTERVAL_S:
            return
        conn.execute("UPDATE job_webhooks SET last_progress_at = ? WHERE request_id = ?", (now, record.request_id))
        event_id = f"{event_id}_{int(now * 1000)}"
    conn.execute(
        "INSERT INTO webhook_deliveries (event_id, request_id, event, url, status, created_at, next_attempt_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING",
        (event_id, record.request_id, event, hook["url"], PENDING, now, now),
    )


def claim_due(owner: str, now: float, lease_s: float, limit: int) -> Callable[[Connection], list[Delivery]]:
    """Up to ``limit`` pending deliveries due by ``now`` that no live lease holds, now held by ``owner`` for
    ``lease_s`` (a replica that dies mid-POST leaves its lease to expire: another one sends it again)."""

    def work(conn: Connection) -> list[Delivery]:
        lock = " FOR UPDATE SKIP LOCKED" if conn.dialect == POSTGRESQL else ""
        due = (
            f"SELECT event_id FROM webhook_deliveries WHERE status = '{PENDING}' AND next_attempt_at <= :now "
            f"AND COALESCE(lease_expires_at, 0) < :now ORDER BY next_attempt_at, event_id LIMIT :limit{lock}"
        )
        rows = conn.execute(
            f"UPDATE webhook_deliveries SET owner = :owner, lease_expires_at = :until WHERE event_id IN ({due}) "
            "RETURNING *",
            {"owner": owner, "until": now + lease_s, "now": now, "limit": limit},
        )
        return sorted(map(_delivery, rows), key=lambda d: (d.next_attempt_at, d.event_id))

    return work


def record_attempt(
    delivery: Delivery, owner: str, attempt: WebhookAttempt | None, status: str, next_attempt_at: float, payload: bytes
) -> Callable[[Connection], bool]:
    """Write a claimed delivery's attempt (None: none was made, the delivery is dropped), its new ``status`` and due
    time, the body its retries resend, and release its lease; False when ``owner`` no longer held it."""
    attempts = (*delivery.attempts, attempt) if attempt is not None else delivery.attempts

    def work(conn: Connection) -> bool:
        changed = conn.execute(
            "UPDATE webhook_deliveries SET status = ?, next_attempt_at = ?, payload = ?, attempts = ?, owner = NULL, "
            "lease_expires_at = NULL WHERE event_id = ? AND owner = ?",
            (status, next_attempt_at, payload.decode(), msgspec.json.encode(attempts).decode(), delivery.event_id,
             owner),
        ).rowcount  # fmt: skip
        return changed == 1

    return work


def deliveries_of(request_ids: Sequence[str]) -> Callable[[Connection], list[Delivery]]:
    """The deliveries of these jobs, oldest first."""

    def work(conn: Connection) -> list[Delivery]:
        if not request_ids:
            return []
        marks = ", ".join("?" for _ in request_ids)
        rows = conn.execute(
            f"SELECT * FROM webhook_deliveries WHERE request_id IN ({marks}) ORDER BY created_at, event_id",
            tuple(request_ids),
        )
        return [_delivery(row) for row in rows]

    return work


def release_leases(owner: str, everyone: bool) -> Callable[[Connection], int]:
    """At start-up: free the leases of a previous process under ``owner``'s name (``everyone``: all of them, the
    embedded mode, where one process owns the file), so its deliveries go out now rather than when they expire."""

    def work(conn: Connection) -> int:
        who = "" if everyone else " AND owner = ?"
        return conn.execute(
            f"UPDATE webhook_deliveries SET owner = NULL, lease_expires_at = NULL WHERE status = '{PENDING}'"
            f" AND owner IS NOT NULL{who}",
            () if everyone else (owner,),
        ).rowcount

    return work


def forget(conn: Connection, request_id: str) -> None:
    """A deleted job's webhook and deliveries (one still pending goes with them)."""
    conn.execute("DELETE FROM webhook_deliveries WHERE request_id = ?", (request_id,))
    conn.execute("DELETE FROM job_webhooks WHERE request_id = ?", (request_id,))
