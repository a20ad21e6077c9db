"""The job table: stdlib sqlite3 on one dedicated thread, so the event loop never blocks on disk.

All timestamps are epoch seconds (REAL); ``parameters`` and ``metadata`` are JSON documents. Columns added after
the first schema (``ADDED_COLUMNS``) are added to an older database by ``open``; a NULL kind reads as
text-to-video. Aggregates and listings over the table live beside this module (``stats``, ``listing``) and run
through ``JobStore.run``. A write that fails because the disk is full raises InsufficientStorageError.
"""

from __future__ import annotations

import asyncio
import errno
import sqlite3
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from visualizr.frontend.errors import InsufficientStorageError
from visualizr.frontend.jobs.record import (
    CANCELLED,
    COMPLETED,
    FAILED,
    KIND_TEXT,
    PROCESSING,
    QUEUED,
    STEP_RETRYING,
    GenerationParameters,
    JobRecord,
    VideoMetadata,
)

T = TypeVar("T")

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS jobs (
    request_id      TEXT PRIMARY KEY,
    model           TEXT NOT NULL,
    prompt          TEXT NOT NULL,
    negative_prompt TEXT NOT NULL DEFAULT '',
    style           TEXT,
    parameters      TEXT NOT NULL,
    status          TEXT NOT NULL
                    CHECK (status IN ('{QUEUED}', '{PROCESSING}', '{COMPLETED}', '{FAILED}', '{CANCELLED}')),
    progress        INTEGER NOT NULL DEFAULT 0,
    current_step    TEXT NOT NULL DEFAULT 'queued',
    error_code      TEXT,
    error_message   TEXT,
    error_details   TEXT,
    created_at      REAL NOT NULL,
    started_at      REAL,
    completed_at    REAL,
    failed_at       REAL,
    cancelled_at    REAL,
    video_path      TEXT,
    thumbnail_path  TEXT,
    preview_path    TEXT,
    keyframe_path   TEXT,
    metadata        TEXT,
    processing_time_seconds REAL,
    work_units      REAL NOT NULL DEFAULT 0,
    kind            TEXT,
    source_image    TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, created_at);
CREATE INDEX IF NOT EXISTS jobs_model_history ON jobs (model, status, completed_at);
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key         TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    request_id  TEXT NOT NULL,
    created_at  REAL NOT NULL
);
"""
# Columns added after the first schema: (name, declaration), added by ALTER TABLE when a database lacks them.
ADDED_COLUMNS = (
    ("kind", "TEXT"),
    ("source_image", "TEXT"),
    ("attempts", "INTEGER NOT NULL DEFAULT 0"),
    ("last_error", "TEXT"),
    ("keyframe_path", "TEXT"),
)
_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}


def migrate(conn: sqlite3.Connection) -> None:
    """Bring a database made by an older version up to SCHEMA (new columns only; existing rows keep NULL)."""
    present = {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}
    for name, declaration in ADDED_COLUMNS:
        if name not in present:
            conn.execute(f"ALTER TABLE jobs ADD COLUMN {name} {declaration}")


_COLUMNS = tuple(JobRecord.__struct_fields__) + ("work_units",)
_JSON_COLUMNS = {"parameters": GenerationParameters, "metadata": VideoMetadata}


def _to_row(job: JobRecord) -> dict[str, Any]:
    row: dict[str, Any] = {name: getattr(job, name) for name in JobRecord.__struct_fields__}
    for name in _JSON_COLUMNS:
        if row[name] is not None:
            row[name] = msgspec.json.encode(row[name]).decode()
    row["work_units"] = job.parameters.work_units
    return row


def _from_row(row: sqlite3.Row) -> JobRecord:
    data = {name: row[name] for name in JobRecord.__struct_fields__}
    for name, typ in _JSON_COLUMNS.items():
        if data[name] is not None:
            data[name] = msgspec.json.decode(data[name], type=typ)
    data["kind"] = data["kind"] or KIND_TEXT
    return JobRecord(**data)


class JobStore:
    def __init__(self, path: Path) -> None:
        self._path = Path(path)
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    @property
    def path(self) -> Path:
        return self._path

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run fn(connection) on the store's single database thread (the queries of ``visualizr.frontend.jobs``)."""
        return await asyncio.wrap_future(self._submit(fn))

    def run_blocking(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``run`` for a thread other than the event loop's (the Prometheus collector, which is scraped in a worker
        thread): waits there for fn(connection) on the database thread."""
        return self._submit(fn).result()

    def _submit(self, fn: Callable[[sqlite3.Connection], T]) -> Future[T]:
        if self._executor is None or self._conn is None:
            raise RuntimeError("JobStore is not open")
        return self._executor.submit(self._guarded, fn, self._conn)

    def _guarded(self, fn: Callable[[sqlite3.Connection], T], conn: sqlite3.Connection) -> T:
        try:
            return fn(conn)
        except (sqlite3.Error, OSError) as exc:
            if is_disk_full(exc):
                raise InsufficientStorageError(
                    "The data folder's disk is full: the job store cannot be written",
                    {"path": str(self._path.parent), "reason": str(exc)},
                ) from exc
            raise

    def _connect(self) -> sqlite3.Connection:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(SCHEMA)
            migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def check(self) -> None:
        """Open the database once, blocking, before serving: sqlite3.Error or OSError when it is not usable (not
        a database, read-only ...), so start-up can stop with one line instead of failing in the lifespan."""
        self._connect().close()

    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jobstore")
        self._conn = await asyncio.get_running_loop().run_in_executor(self._executor, self._connect)

    async def close(self) -> None:
        if self._executor is None:
            return
        conn, self._conn = self._conn, None
        if conn is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, conn.close)
        self._executor.shutdown(wait=True)
        self._executor = None

    async def insert(self, job: JobRecord, idempotency: tuple[str, str] | None = None) -> None:
        """Insert a new job and, given ``(key, fingerprint)``, its idempotency key, in one transaction."""
        row = _to_row(job)
        sql = f"INSERT INTO jobs ({', '.join(_COLUMNS)}) VALUES ({', '.join(':' + c for c in _COLUMNS)})"

        def work(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(sql, row)
                if idempotency is not None:
                    key, fingerprint = idempotency
                    conn.execute(
                        "INSERT INTO idempotency_keys (key, fingerprint, request_id, created_at) VALUES (?, ?, ?, ?)",
                        (key, fingerprint, job.request_id, job.created_at),
                    )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:  # a failed COMMIT (disk full) may have rolled back already
                    conn.execute("ROLLBACK")
                raise

        await self.run(work)

    async def idempotent_job(self, key: str, since: float) -> tuple[str, str] | None:
        """(fingerprint, request_id) stored for an idempotency key no older than ``since``; older keys are
        forgotten on the way."""

        def work(conn: sqlite3.Connection) -> tuple[str, str] | None:
            conn.execute("DELETE FROM idempotency_keys WHERE created_at < ?", (since,))
            row = conn.execute("SELECT fingerprint, request_id FROM idempotency_keys WHERE key = ?", (key,)).fetchone()
            return None if row is None else (str(row[0]), str(row[1]))

        return await self.run(work)

    async def update(self, request_id: str, **fields: Any) -> None:
        """Set some columns of one job. JSON columns take their Struct."""
        if not fields:
            return
        for name, value in list(fields.items()):
            if name not in _COLUMNS or name == "request_id":
                raise ValueError(f"unknown job column {name!r}")
            if name in _JSON_COLUMNS and value is not None:
                fields[name] = msgspec.json.encode(value).decode()
        sql = f"UPDATE jobs SET {', '.join(f'{n} = :{n}' for n in fields)} WHERE request_id = :request_id"
        params = {**fields, "request_id": request_id}
        await self.run(lambda conn: conn.execute(sql, params))

    async def get(self, request_id: str) -> JobRecord | None:
        def query(conn: sqlite3.Connection) -> JobRecord | None:
            row = conn.execute("SELECT * FROM jobs WHERE request_id = ?", (request_id,)).fetchone()
            return None if row is None else _from_row(row)

        return await self.run(query)

    async def list_by_status(self, statuses: Iterable[str]) -> list[JobRecord]:
        wanted = tuple(statuses)
        marks = ", ".join("?" for _ in wanted)

        def query(conn: sqlite3.Connection) -> list[JobRecord]:
            rows = conn.execute(
                f"SELECT * FROM jobs WHERE status IN ({marks}) ORDER BY created_at, rowid", wanted
            ).fetchall()
            return [_from_row(r) for r in rows]

        return await self.run(query)

    async def requeue_interrupted(self, reason: str) -> list[str]:
        """Put every `processing` job (the server stopped under it) back in the queue to run again, in its
        original place, with ``reason`` as its last error; returns their ids."""

        def work(conn: sqlite3.Connection) -> list[str]:
            ids = [r[0] for r in conn.execute("SELECT request_id FROM jobs WHERE status = ?", (PROCESSING,))]
            conn.execute(
                "UPDATE jobs SET status = ?, progress = 0, current_step = ?, started_at = NULL, last_error = ? "
                "WHERE status = ?",
                (QUEUED, STEP_RETRYING, reason, PROCESSING),
            )
            return ids

        return await self.run(work)

    async def history(self, model: str, limit: int = 50) -> list[tuple[float, float]]:
        """(processing_time_seconds, work_units) of the model's latest completed jobs, newest first."""

        def query(conn: sqlite3.Connection) -> list[tuple[float, float]]:
            rows = conn.execute(
                "SELECT processing_time_seconds, work_units FROM jobs WHERE model = ? AND status = ? "
                "AND processing_time_seconds IS NOT NULL AND work_units > 0 "
                "ORDER BY completed_at DESC LIMIT ?",
                (model, COMPLETED, limit),
            ).fetchall()
            return [(float(r[0]), float(r[1])) for r in rows]

        return await self.run(query)


def is_disk_full(exc: BaseException) -> bool:
    """Whether a storage error means the disk (or quota) is full."""
    if isinstance(exc, OSError):
        return exc.errno in _FULL_ERRNOS
    if not isinstance(exc, sqlite3.Error):
        return False
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in str(exc)
