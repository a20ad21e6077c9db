"""The job table over the job database (``database.Database``: SQLite by default, PostgreSQL for replicas).

All timestamps are epoch seconds; ``parameters`` and ``metadata`` are JSON documents; a NULL kind reads as
text-to-video. The schema is versioned (``schema``): ``open`` migrates it. Aggregates and listings over the table
live beside this module (``stats``, ``listing``) and run through ``JobStore.run``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import msgspec

from visualizr.frontend.jobs.database import Connection, Database, Row
from visualizr.frontend.jobs.record import (
    KIND_TEXT,
    CostSample,
    GenerationParameters,
    JobRecord,
    VideoMetadata,
)
from visualizr.frontend.jobs.schema import migrate

T = TypeVar("T")

_COLUMNS = tuple(JobRecord.__struct_fields__)
_JSON_COLUMNS = {"parameters": GenerationParameters, "metadata": VideoMetadata}
INSERT_JOB = f"INSERT INTO jobs ({', '.join(_COLUMNS)}) VALUES ({', '.join(':' + c for c in _COLUMNS)})"


def encode_row(job: JobRecord) -> dict[str, Any]:
    """A JobRecord as the parameters of an INSERT (JSON columns encoded)."""
    row: dict[str, Any] = {name: getattr(job, name) for name in JobRecord.__struct_fields__}
    for name in _JSON_COLUMNS:
        if row[name] is not None:
            row[name] = msgspec.json.encode(row[name]).decode()
    row["cancel_requested"] = int(job.cancel_requested)  # INTEGER on both engines
    return row


def decode_row(row: Row) -> JobRecord:
    """A ``jobs`` row (``SELECT *`` or ``RETURNING *``) as a JobRecord."""
    data = {name: row[name] for name in JobRecord.__struct_fields__}
    for name, typ in _JSON_COLUMNS.items():
        if data[name] is not None:
            data[name] = msgspec.json.decode(data[name], type=typ)
    data["kind"] = data["kind"] or KIND_TEXT
    data["cancel_requested"] = bool(data["cancel_requested"])
    return JobRecord(**data)


class JobStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    def describe(self) -> str:
        return self.database.describe()

    async def run(self, fn: Callable[[Connection], T]) -> T:
        """Run fn(connection) in one transaction of the job database (the queries of ``visualizr.frontend.jobs``)."""
        return await self.database.run(fn)

    def run_blocking(self, fn: Callable[[Connection], T]) -> T:
        """``run`` for a thread other than the event loop's (the Prometheus collector, scraped in a worker thread)."""
        return self.database.run_blocking(fn)

    def check(self) -> None:
        """Migrate the schema once, blocking, before serving: start-up stops with one line when the database is
        unusable, unreachable or newer than this code (``schema.SchemaTooNewError``)."""
        self.database.run_once(migrate)

    async def open(self) -> None:
        await self.database.open()
        await self.database.run(migrate)

    async def close(self) -> None:
        await self.database.close()

    async def insert(self, job: JobRecord, idempotency: tuple[str, str] | None = None) -> None:
        """Insert a new job and, given ``(key, fingerprint)``, its idempotency key, in one transaction."""
        row = encode_row(job)

        def work(conn: Connection) -> None:
            conn.execute(INSERT_JOB, row)
            if idempotency is not None:
                key, fingerprint = idempotency
                conn.execute(
                    "INSERT INTO idempotency_keys (key, fingerprint, request_id, created_at) VALUES (?, ?, ?, ?)",
                    (key, fingerprint, job.request_id, job.created_at),
                )

        await self.run(work)

    async def idempotent_job(self, key: str, since: float) -> tuple[str, str] | None:
        """(fingerprint, request_id) stored for an idempotency key no older than ``since``; older keys are
        forgotten on the way."""

        def work(conn: Connection) -> tuple[str, str] | None:
            conn.execute("DELETE FROM idempotency_keys WHERE created_at < ?", (since,))
            row = conn.execute("SELECT fingerprint, request_id FROM idempotency_keys WHERE key = ?", (key,)).fetchone()
            return None if row is None else (str(row[0]), str(row[1]))

        return await self.run(work)

    async def get(self, request_id: str) -> JobRecord | None:
        def query(conn: Connection) -> JobRecord | None:
            row = conn.execute("SELECT * FROM jobs WHERE request_id = ?", (request_id,)).fetchone()
            return None if row is None else decode_row(row)

        return await self.run(query)

    async def list_by_status(self, statuses: Iterable[str]) -> list[JobRecord]:
        wanted = tuple(statuses)
        marks = ", ".join("?" for _ in wanted)

        def query(conn: Connection) -> list[JobRecord]:
            rows = conn.execute(
                f"SELECT * FROM jobs WHERE status IN ({marks}) ORDER BY created_at, request_id", wanted
            ).fetchall()
            return [decode_row(r) for r in rows]

        return await self.run(query)

    async def add_cost_samples(self, samples: Iterable[CostSample], recorded_at: float, keep: int) -> None:
        """Store a run's cost samples (``generation.reporting.cost_model``); only the latest ``keep`` stay."""
        rows = [
            (s.model, s.part, s.fixed, s.work, s.seconds, s.concurrency, json.dumps(s.company), recorded_at)
            for s in samples
        ]

        def work(conn: Connection) -> None:
            for row in rows:
                conn.execute(
                    "INSERT INTO eta_samples (model, part, fixed, work, seconds, concurrency, company, recorded_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    row,
                )
            oldest = conn.execute(
                "SELECT recorded_at FROM eta_samples ORDER BY recorded_at DESC LIMIT 1 OFFSET ?", (keep,)
            ).fetchone()
            if oldest is not None:
                conn.execute("DELETE FROM eta_samples WHERE recorded_at <= ?", (oldest[0],))

        await self.run(work)

    async def cost_samples(self) -> list[list[CostSample]]:
        """The stored cost samples by run (those stored together), oldest first: the order they are replayed in."""

        def query(conn: Connection) -> list[list[CostSample]]:
            rows = conn.execute(
                "SELECT model, part, fixed, work, seconds, concurrency, company, recorded_at FROM eta_samples "
                "ORDER BY recorded_at"
            ).fetchall()
            runs: dict[float, list[CostSample]] = {}
            for model, part, fixed, work, seconds, concurrency, company, recorded_at in rows:
                beside = json.loads(company) if company else {str(model): float(concurrency) - 1.0}  # older rows
                beside = {str(m): float(n) for m, n in beside.items() if float(n) > 0}
                sample = CostSample(str(model), str(part), float(fixed), float(work), float(seconds), beside)
                runs.setdefault(float(recorded_at), []).append(sample)
            return list(runs.values())

        return await self.run(query)
