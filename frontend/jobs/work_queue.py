"""The job queue, kept in the job table and shared by every replica: admit a job (global queue cap, global
idempotency key), claim the next one, renew a replica's leases, reap the jobs of a replica that died, and where a
waiting job stands. Each function runs in one transaction (``await store.run(fn)``).

The claim takes the oldest startable queued job in one statement: ``UPDATE ... WHERE request_id = (SELECT ...
ORDER BY created_at, request_id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING *`` on PostgreSQL, so two replicas
never get the same job and neither waits for the other; SQLite runs the same SQL without the locking clause
(BEGIN IMMEDIATE serialises its writers). A retry keeps its place: the queue is in submission order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

import msgspec

from visualizr.frontend.jobs.database import POSTGRESQL, Connection
from visualizr.frontend.jobs.record import KIND_TEXT, PROCESSING, QUEUED, GenerationParameters, JobRecord
from visualizr.frontend.jobs.store import INSERT_JOB, decode_row, encode_row
from visualizr.frontend.jobs.transitions import Transition, apply
from visualizr.frontend.jobs.webhook_outbox import WebhookTarget, subscribe

# pg_advisory_xact_lock key that serialises admissions ("vsz" + 2), so the queue cap holds across replicas
ADMISSION_LOCK: Final = 0x76737A02
_QUEUE_ORDER = "ORDER BY created_at, request_id"
_AHEAD = f"status = '{QUEUED}' AND (created_at < ? OR (created_at = ? AND request_id < ?))"


class QueueIsFull(Exception):
    """``queue_size`` jobs wait already (raised inside the admission's transaction: nothing is written)."""


class Lease(msgspec.Struct, frozen=True):
    """A replica's hold on the jobs it runs, as of ``now``: until ``now + seconds`` unless renewed."""

    owner: str
    now: float
    seconds: float

    @property
    def expires_at(self) -> float:
        return self.now + self.seconds


class Admission(msgspec.Struct, frozen=True):
    """What admitting a job did: stored it (``record`` as stored; ``started``: claimed at once by the admitting
    replica), or found the job first stored under its idempotency key (``duplicate_of``, with the fingerprint of
    the request that stored it)."""

    record: JobRecord | None = None
    started: bool = False
    duplicate_of: str | None = None
    fingerprint: str | None = None


def admit(
    job: JobRecord,
    queue_size: int,
    *,
    start: Lease | None = None,
    first_step: str = "",
    idempotency: tuple[str, str] | None = None,
    keys_since: float = 0.0,
    webhook: WebhookTarget | None = None,
) -> Callable[[Connection], Admission]:
    """Store a new job: claimed at once by ``start``'s owner when it has an idle worker and no startable job waits,
    else queued unless ``queue_size`` jobs wait (QueueIsFull). Its ``(key, fingerprint)`` is inserted first, so a
    key already used returns the first job instead (keys older than ``keys_since`` are forgotten). Its ``webhook``
    is stored with it."""

    def work(conn: Connection) -> Admission:
        if conn.dialect == POSTGRESQL:
            conn.execute("SELECT pg_advisory_xact_lock(?)", (ADMISSION_LOCK,))
        if idempotency is not None:
            key, fingerprint = idempotency
            conn.execute("DELETE FROM idempotency_keys WHERE created_at < ?", (keys_since,))
            inserted = conn.execute(
                "INSERT INTO idempotency_keys (key, fingerprint, request_id, created_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (key) DO NOTHING",
                (key, fingerprint, job.request_id, job.created_at),
            ).rowcount
            if not inserted:
                row = conn.execute("SELECT fingerprint, request_id FROM idempotency_keys WHERE key = ?", (key,))
                first = row.fetchone()
                assert first is not None
                return Admission(duplicate_of=str(first["request_id"]), fingerprint=str(first["fingerprint"]))
        lease = start
        due = f"status = '{QUEUED}' AND not_before <= ?"
        if lease is not None and conn.execute(f"SELECT 1 FROM jobs WHERE {due} LIMIT 1", (lease.now,)).fetchone():
            lease = None  # an older job can start: it goes first
        if lease is None and waiting_count(conn) >= queue_size:
            raise QueueIsFull
        row = encode_row(job)
        if lease is not None:
            row.update(status=PROCESSING, owner=lease.owner, lease_expires_at=lease.expires_at, started_at=lease.now)
            row.update(attempts=job.attempts + 1, current_step=first_step)
        stored = conn.execute(f"{INSERT_JOB} RETURNING *", row).fetchone()
        assert stored is not None
        if webhook is not None:
            subscribe(conn, job.request_id, webhook)
        return Admission(record=decode_row(stored), started=lease is not None)

    return work


def claim(lease: Lease, blocked_models: Sequence[str], first_step: str) -> Callable[[Connection], JobRecord | None]:
    """Claim the oldest queued job that may start (its retry due, its model not in ``blocked_models``) for
    ``lease``'s owner: ``processing``, one more attempt, ``started_at`` now. None when there is none."""

    def work(conn: Connection) -> JobRecord | None:
        models = "".join(" AND model <> ?" for _ in blocked_models)
        lock = " FOR UPDATE SKIP LOCKED" if conn.dialect == POSTGRESQL else ""
        next_job = (
            f"SELECT request_id FROM jobs WHERE status = '{QUEUED}' AND not_before <= ?{models} "
            f"{_QUEUE_ORDER} LIMIT 1{lock}"
        )
        row = conn.execute(
            f"UPDATE jobs SET status = '{PROCESSING}', owner = ?, lease_expires_at = ?, started_at = ?, progress = 0, "
            f"current_step = ?, attempts = attempts + 1, cancel_requested = 0 "
            f"WHERE request_id = ({next_job}) AND status = '{QUEUED}' RETURNING *",
            (lease.owner, lease.expires_at, lease.now, first_step, lease.now, *blocked_models),
        ).fetchone()
        return None if row is None else decode_row(row)

    return work


def renew(lease: Lease, request_ids: Sequence[str]) -> Callable[[Connection], set[str]]:
    """The heartbeat: extend the lease of the owner's running jobs among ``request_ids``; returns the ones it
    still holds (the others were cancelled or taken back: their runs must stop)."""

    def work(conn: Connection) -> set[str]:
        if not request_ids:
            return set()
        marks = ", ".join("?" for _ in request_ids)
        rows = conn.execute(
            f"UPDATE jobs SET lease_expires_at = ? WHERE owner = ? AND status = '{PROCESSING}' "
            f"AND request_id IN ({marks}) RETURNING request_id",
            (lease.expires_at, lease.owner, *request_ids),
        )
        return {str(r[0]) for r in rows}

    return work


def reap(
    now: float, decide: Callable[[JobRecord], Transition], expired_before: float | None = None, owner: str = ""
) -> Callable[[Connection], list[JobRecord]]:
    """Take back the running jobs whose lease expired before ``expired_before`` (default ``now``; ``math.inf``:
    every running job, the embedded mode's start-up), and those of ``owner`` (a replica starting again under its
    old name), each by the transition ``decide`` picks (``Retrying``, or ``Failed`` when the retry policy gives
    up). Returns their rows as they are now."""
    limit = now if expired_before is None else expired_before

    def work(conn: Connection) -> list[JobRecord]:
        lock = " FOR UPDATE SKIP LOCKED" if conn.dialect == POSTGRESQL else ""
        expired = f"status = '{PROCESSING}' AND (COALESCE(lease_expires_at, 0) < :limit OR owner = :owner)"
        params = {"limit": limit, "owner": owner}
        rows = conn.execute(f"SELECT * FROM jobs WHERE {expired} {_QUEUE_ORDER}{lock}", params)
        reaped = (apply(conn, r.request_id, decide(r), expired, params) for r in map(decode_row, rows))
        return [record for record in reaped if record is not None]

    return work


def waiting_count(conn: Connection) -> int:
    return int(conn.execute(f"SELECT COUNT(*) FROM jobs WHERE status = '{QUEUED}'").fetchone()[0])  # type: ignore[index]


class QueueView(msgspec.Struct, frozen=True):
    """The queue around one job: the queued jobs ahead of it (model, kind, parameters) and the running ones."""

    ahead: list[tuple[str, str, GenerationParameters]]
    running: list[JobRecord]

    @property
    def position(self) -> int:
        return len(self.ahead) + 1


def queue_view(record: JobRecord | None) -> Callable[[Connection], QueueView]:
    """Where ``record`` (queued; None: a job at the end) stands: what waits ahead of it, what runs."""

    def work(conn: Connection) -> QueueView:
        if record is None:
            where, params = f"status = '{QUEUED}'", ()
        else:
            where, params = _AHEAD, (record.created_at, record.created_at, record.request_id)
        rows = conn.execute(f"SELECT model, kind, parameters FROM jobs WHERE {where} {_QUEUE_ORDER}", params)
        decode = msgspec.json.Decoder(GenerationParameters).decode
        ahead = [(str(r[0]), r[1] or KIND_TEXT, decode(r[2])) for r in rows]
        running = [decode_row(r) for r in conn.execute(f"SELECT * FROM jobs WHERE status = '{PROCESSING}'")]
        return QueueView(ahead, running)

    return work


def queue_counts(conn: Connection) -> tuple[int, int]:
    """(queued, processing) jobs of all replicas."""
    rows = conn.execute(
        f"SELECT status, COUNT(*) FROM jobs WHERE status IN ('{QUEUED}', '{PROCESSING}') GROUP BY status"
    )
    counts = {str(r[0]): int(r[1]) for r in rows}
    return counts.get(QUEUED, 0), counts.get(PROCESSING, 0)
