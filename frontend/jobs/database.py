"""The job database behind one interface: SQLite in the data folder (the embedded default) or PostgreSQL
(``VISUALIZR_DATABASE_URL=postgresql://...``, psycopg 3 with its connection pool), so that any number of API
replicas can share one.

Queries are plain functions of a ``Connection`` run by ``Database.run`` in one transaction each, off the event
loop (SQLite: its one dedicated thread; PostgreSQL: a pooled connection in a worker thread). They are written once,
in the SQL both engines speak, with ``?`` or ``:name`` placeholders; the few places the engines differ ask
``Connection.dialect``. A write that fails because the disk is full raises InsufficientStorageError; a PostgreSQL
server that cannot be reached raises DatabaseUnavailableError.
"""

from __future__ import annotations

import asyncio
import errno
import re
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from visualizr.frontend.errors import DatabaseUnavailableError, InsufficientStorageError

T = TypeVar("T")

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
UNAVAILABLE = "The job database cannot be reached; retry shortly"
RECONNECT_S = 5.0  # how long the pool retries one connection (its delays double from 1 s) before it gives up
OUTAGE_WAIT_S = 1.0  # how long a request waits for a connection while the server is down: its 503 comes fast
_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")  # :name, never the :: of a cast


class Row:
    """One result row: by position (``row[0]``) or by column name (``row["model"]``), like sqlite3.Row."""

    __slots__ = ("_index", "_values")

    def __init__(self, index: dict[str, int], values: Sequence[Any]) -> None:
        self._index, self._values = index, values

    def __getitem__(self, key: int | slice | str) -> Any:
        return self._values[self._index[key] if isinstance(key, str) else key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def keys(self) -> list[str]:
        return list(self._index)


class Result:
    """What ``Connection.execute`` returns: its rows and how many rows it changed."""

    def __init__(self, rows: list[Row], rowcount: int) -> None:
        self.rows, self.rowcount = rows, rowcount

    def fetchone(self) -> Row | None:
        return self.rows[0] if self.rows else None

    def fetchall(self) -> list[Row]:
        return self.rows

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows)


class Connection:
    """One engine's connection, inside the transaction of one ``Database.run``."""

    def __init__(self, raw: Any, dialect: str) -> None:
        self.raw, self.dialect = raw, dialect

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Result:
        if self.dialect == POSTGRESQL:
            sql = _NAMED.sub(r"%(\1)s", sql.replace("%", "%%").replace("?", "%s"))
        cursor = self.raw.execute(sql, params)
        description = cursor.description
        if not description:
            return Result([], cursor.rowcount)
        index = {column[0]: position for position, column in enumerate(description)}
        return Result([Row(index, values) for values in cursor.fetchall()], cursor.rowcount)

    def executescript(self, statements: Sequence[str]) -> None:
        for statement in statements:
            self.raw.execute(statement)


class Database(ABC):
    """Where the jobs live. ``run(fn)`` runs ``fn(connection)`` in one transaction, off the event loop."""

    dialect: str

    @abstractmethod
    def describe(self) -> str:
        """Where it is, for messages (never a password)."""

    @abstractmethod
    def run_once(self, fn: Callable[[Connection], T]) -> T:
        """``fn`` in one transaction on a connection of its own, blocking (start-up, before the event loop runs):
        raises when the database is not usable."""

    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    def _submit(self, fn: Callable[[Connection], T], timeout_s: float | None = None) -> Future[T]: ...

    async def run(self, fn: Callable[[Connection], T]) -> T:
        return await asyncio.wrap_future(self._submit(fn))

    def run_blocking(self, fn: Callable[[Connection], T]) -> T:
        """``run`` from a thread other than the event loop's (the Prometheus collector's): waits there."""
        return self._submit(fn).result()

    async def ping(self, timeout_s: float) -> None:
        """A cheap ``SELECT 1`` (health): DatabaseUnavailableError when it fails or takes over ``timeout_s``."""
        select = self._submit(lambda conn: conn.execute("SELECT 1"), timeout_s)
        try:
            await asyncio.wait_for(asyncio.wrap_future(select), timeout_s)
        except TimeoutError as exc:
            raise DatabaseUnavailableError(UNAVAILABLE, {"database": self.describe(), "reason": "timed out"}) from exc


class SqliteDatabase(Database):
    """The embedded default: one file in the data folder, one dedicated thread, WAL."""

    dialect = SQLITE

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    def describe(self) -> str:
        return str(self.path)

    def connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        except BaseException:
            conn.close()
            raise
        return conn

    def run_once(self, fn: Callable[[Connection], T]) -> T:
        conn = self.connect()
        try:
            return self._transaction(fn, conn)
        finally:
            conn.close()

    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jobstore")
        self._conn = await asyncio.get_running_loop().run_in_executor(self._executor, self.connect)

    async def close(self) -> None:
        if self._executor is None:
            return
        conn, self._conn = self._conn, None
        if conn is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, conn.close)
        self._executor.shutdown(wait=True)
        self._executor = None

    def _submit(self, fn: Callable[[Connection], T], timeout_s: float | None = None) -> Future[T]:
        if self._executor is None or self._conn is None:
            raise RuntimeError("the job database is not open")
        return self._executor.submit(self._transaction, fn, self._conn)

    def _transaction(self, fn: Callable[[Connection], T], conn: sqlite3.Connection) -> T:
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(Connection(conn, SQLITE))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:  # a failed COMMIT (disk full) may have rolled back already
                    conn.execute("ROLLBACK")
                raise
            return result
        except (sqlite3.Error, OSError) as exc:
            if is_disk_full(exc):
                raise InsufficientStorageError(
                    "The data folder's disk is full: the job store cannot be written",
                    {"path": str(self.path.parent), "reason": str(exc)},
                ) from exc
            raise


class PostgresDatabase(Database):
    """A PostgreSQL server shared by every API replica (psycopg 3, a connection pool, one transaction per run)."""

    dialect = POSTGRESQL

    def __init__(self, url: str, max_connections: int = 8, timeout_s: float = 10.0) -> None:
        self.url, self.max_connections, self.timeout_s = url, max_connections, timeout_s
        self._reachable = True  # the last transaction found the server (else requests wait OUTAGE_WAIT_S at most)
        self._pool: Any = None
        self._executor: ThreadPoolExecutor | None = None

    def describe(self) -> str:
        return redact_url(self.url)

    def run_once(self, fn: Callable[[Connection], T]) -> T:
        import psycopg

        try:
            connection = psycopg.connect(self.url, autocommit=True, connect_timeout=int(self.timeout_s))
            with connection as conn, conn.transaction():
                return fn(Connection(conn, POSTGRESQL))
        except psycopg.OperationalError as exc:
            raise self._unavailable(exc) from exc

    async def open(self) -> None:
        from psycopg_pool import ConnectionPool

        self._executor = ThreadPoolExecutor(max_workers=self.max_connections, thread_name_prefix="jobstore")
        self._pool = ConnectionPool(
            self.url,
            min_size=1,
            max_size=self.max_connections,
            timeout=self.timeout_s,
            reconnect_timeout=RECONNECT_S,  # then a request starts a fresh attempt, not the nth of a long backoff
            check=ConnectionPool.check_connection,  # tried before lent: none a database restart closed fails a request
            kwargs={"autocommit": True, "connect_timeout": int(self.timeout_s)},
            open=False,
        )
        await asyncio.get_running_loop().run_in_executor(self._executor, self._pool.open)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        executor, self._executor = self._executor, None
        if pool is not None and executor is not None:
            await asyncio.get_running_loop().run_in_executor(executor, pool.close)
        if executor is not None:
            executor.shutdown(wait=True)

    def _submit(self, fn: Callable[[Connection], T], timeout_s: float | None = None) -> Future[T]:
        if self._executor is None or self._pool is None:
            raise RuntimeError("the job database is not open")
        return self._executor.submit(self._transaction, fn, timeout_s)

    def _transaction(self, fn: Callable[[Connection], T], timeout_s: float | None = None) -> T:
        import psycopg
        from psycopg_pool import PoolTimeout

        wait = timeout_s or (self.timeout_s if self._reachable else OUTAGE_WAIT_S)
        try:
            with self._pool.connection(timeout=wait) as conn, conn.transaction():
                self._reachable = True  # a connection that passed its check
                return fn(Connection(conn, POSTGRESQL))
        except psycopg.errors.DiskFull as exc:
            raise InsufficientStorageError(
                "The database server's disk is full: the job store cannot be written", {"reason": str(exc)}
            ) from exc
        except (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout) as exc:
            self._reachable = False
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: BaseException) -> DatabaseUnavailableError:
        return DatabaseUnavailableError(
            UNAVAILABLE,
            {"database": self.describe(), "reason": str(exc).strip().splitlines()[0] if str(exc) else repr(exc)},
        )


def open_database(url: str | None, sqlite_path: Path) -> Database:
    """PostgreSQL when ``url`` is a postgresql:// URL, else SQLite at ``sqlite_path``."""
    if url:
        if not url.startswith(("postgresql://", "postgres://")):
            raise ValueError(f"VISUALIZR_DATABASE_URL must be a postgresql:// URL, got {redact_url(url)!r}")
        return PostgresDatabase(url)
    return SqliteDatabase(sqlite_path)


def redact_url(url: str) -> str:
    """``postgresql://user:secret@host/db`` -> ``postgresql://user:***@host/db``."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url)


def is_disk_full(exc: BaseException) -> bool:
    """Whether a storage error means the disk (or quota) is full."""
    if isinstance(exc, OSError):
        return exc.errno in _FULL_ERRNOS
    if not isinstance(exc, sqlite3.Error):
        return False
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in str(exc)
