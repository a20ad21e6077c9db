"""The job database of the store and queue contract tests: each engine (SQLite, and a real PostgreSQL started by
the ``postgres`` fixture), a store opened on it (or two: two "replicas" on one database), a job row."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from benchmarks.backing_services import PostgresServer
from visualizr.frontend.jobs.database import Database, PostgresDatabase, SqliteDatabase
from visualizr.frontend.jobs.record import GenerationParameters, JobRecord
from visualizr.frontend.jobs.store import JobStore

T = TypeVar("T")
PARAMS = GenerationParameters(64, 48, 4, 8, 2, 7.5, 1)
ENGINES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)]


def engine_database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    """A new, empty database of the engine ``request.param`` names."""
    if request.param == "sqlite":
        return SqliteDatabase(tmp_path / "jobs.sqlite3")
    server: PostgresServer = request.getfixturevalue("postgres")
    return PostgresDatabase(server.new_database())


def with_store(database: Database, scenario: Callable[[JobStore], Awaitable[T]]) -> T:
    async def run() -> T:
        store = JobStore(database)
        store.check()
        await store.open()
        try:
            return await scenario(store)
        finally:
            await store.close()

    return asyncio.run(run())


def job(
    request_id: str,
    status: str = "queued",
    created: float = 1.0,
    parameters: GenerationParameters = PARAMS,
    **fields: object,
) -> JobRecord:
    return JobRecord(request_id, "animatediff", f"prompt of {request_id}", "", None, parameters, status, 0, "queued",
                     created, **fields)  # type: ignore[arg-type]  # fmt: skip


def twin(database: Database) -> Database:
    """A second connection to the same database (another replica)."""
    if isinstance(database, SqliteDatabase):
        return SqliteDatabase(database.path)
    assert isinstance(database, PostgresDatabase)
    return PostgresDatabase(database.url)


def with_replicas(database: Database, scenario: Callable[[JobStore, JobStore], Awaitable[T]]) -> T:
    async def run() -> T:
        one, two = JobStore(database), JobStore(twin(database))
        one.check()
        await one.open()
        await two.open()
        try:
            return await scenario(one, two)
        finally:
            await two.close()
            await one.close()

    return asyncio.run(run())
