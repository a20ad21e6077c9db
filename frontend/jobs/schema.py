"""The job database's schema, versioned: ``MIGRATIONS[n]`` takes a database from version n to n + 1.

``migrate`` runs at start-up in one transaction, by one process at a time (PostgreSQL: a transaction-scoped
advisory lock, so replicas starting together wait for each other; SQLite: the write lock of BEGIN IMMEDIATE). A
database whose version is newer than this code's is refused (``SchemaTooNewError``): a replica never runs against a
schema it does not know. The DDL is the SQL both engines accept (DOUBLE PRECISION is REAL to SQLite).
"""

from __future__ import annotations

from typing import Final

from visualizr.frontend.jobs.database import POSTGRESQL, Connection
from visualizr.frontend.jobs.record import CANCELLED, COMPLETED, FAILED, PROCESSING, QUEUED

# pg_advisory_xact_lock key of the migration ("vsz" + 1): any constant the deployment uses for nothing else
MIGRATION_LOCK: Final = 0x76737A01

_JOBS = f"""
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
    created_at      DOUBLE PRECISION NOT NULL,
    started_at      DOUBLE PRECISION,
    completed_at    DOUBLE PRECISION,
    failed_at       DOUBLE PRECISION,
    cancelled_at    DOUBLE PRECISION,
    video_path      TEXT,
    thumbnail_path  TEXT,
    preview_path    TEXT,
    metadata        TEXT,
    processing_time_seconds DOUBLE PRECISION,
    work_units      DOUBLE PRECISION NOT NULL DEFAULT 0,
    kind            TEXT,
    source_image    TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT
)"""

MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    # 1: jobs, their idempotency keys, the largest queue length of each day
    (
        _JOBS,
        "CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, created_at)",
        "CREATE INDEX IF NOT EXISTS jobs_model_history ON jobs (model, status, completed_at)",
        "CREATE TABLE IF NOT EXISTS idempotency_keys (key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, "
        "request_id TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL)",
        "CREATE TABLE IF NOT EXISTS queue_daily_max (day TEXT PRIMARY KEY, max_length INTEGER NOT NULL)",
    ),
    # 2: the keyframe a text-to-video job on an image-to-video model keeps
    ("ALTER TABLE jobs ADD COLUMN keyframe_path TEXT",),
    # 3: the queue in the database: which replica runs a job and until when its lease holds, a cancel its runner
    # has still to act on, a retry's due time; the claim's and the reaper's indexes
    (
        "ALTER TABLE jobs ADD COLUMN owner TEXT",
        "ALTER TABLE jobs ADD COLUMN lease_expires_at DOUBLE PRECISION",
        "ALTER TABLE jobs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE jobs ADD COLUMN not_before DOUBLE PRECISION NOT NULL DEFAULT 0",
        "CREATE INDEX IF NOT EXISTS jobs_claim ON jobs (status, created_at, request_id)",
        "CREATE INDEX IF NOT EXISTS jobs_lease ON jobs (status, lease_expires_at)",
    ),
    # 4: the character registry (built-in and users' characters, their reference pictures' object keys as a JSON
    # list) and the character a job animated
    (
        "CREATE TABLE IF NOT EXISTS characters (character_id TEXT PRIMARY KEY, name TEXT NOT NULL, "
        "description TEXT NOT NULL DEFAULT '', builtin INTEGER NOT NULL DEFAULT 0, reference_images TEXT NOT NULL, "
        "created_at DOUBLE PRECISION NOT NULL)",
        "CREATE INDEX IF NOT EXISTS characters_listing ON characters (created_at, character_id)",
        "ALTER TABLE jobs ADD COLUMN character_id TEXT",
        "CREATE INDEX IF NOT EXISTS jobs_character ON jobs (character_id, status)",
    ),
    # 5: signed webhooks, stored: a job's webhook (url, the
    # events it wants, when its last progress event was made) and the outbox of its events, each delivery claimed
    # under a lease by any replica, its attempts kept (jobs.webhook_outbox)
    (
        "CREATE TABLE IF NOT EXISTS job_webhooks (request_id TEXT PRIMARY KEY, url TEXT NOT NULL, "
        "events TEXT NOT NULL, last_progress_at DOUBLE PRECISION NOT NULL DEFAULT 0)",
        "CREATE TABLE IF NOT EXISTS webhook_deliveries (event_id TEXT PRIMARY KEY, request_id TEXT NOT NULL, "
        "event TEXT NOT NULL, url TEXT NOT NULL, status TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL, "
        "next_attempt_at DOUBLE PRECISION NOT NULL, owner TEXT, lease_expires_at DOUBLE PRECISION, "
        "payload TEXT, attempts TEXT NOT NULL DEFAULT '[]')",
        "CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at)",
        "CREATE INDEX IF NOT EXISTS webhook_deliveries_job ON webhook_deliveries (request_id, created_at)",
    ),
    # 6: ETA cost history: the measured parts of completed runs, which
    # the ETA's cost model (generation.reporting.cost_model) replays at start-up
    (
        "CREATE TABLE IF NOT EXISTS eta_samples (model TEXT NOT NULL, part TEXT NOT NULL, "
        "fixed DOUBLE PRECISION NOT NULL, work DOUBLE PRECISION NOT NULL, seconds DOUBLE PRECISION NOT NULL, "
        "concurrency DOUBLE PRECISION NOT NULL, recorded_at DOUBLE PRECISION NOT NULL)",
        "CREATE INDEX IF NOT EXISTS eta_samples_recorded ON eta_samples (recorded_at)",
    ),
    # 7: the company of each ETA sample by model (a JSON object: time-weighted jobs beside the run, by model);
    # empty in older rows, whose concurrency is taken as jobs of the run's own model
    ("ALTER TABLE eta_samples ADD COLUMN company TEXT NOT NULL DEFAULT ''",),
)
LATEST_VERSION: Final = len(MIGRATIONS)

# Columns that SQLite databases made before the schema was versioned may lack (added by ALTER TABLE).
_LEGACY_COLUMNS = (
    ("kind", "TEXT"),
    ("source_image", "TEXT"),
    ("attempts", "INTEGER NOT NULL DEFAULT 0"),
    ("last_error", "TEXT"),
)


class SchemaTooNewError(RuntimeError):
    """The database was migrated by a newer Visualizr than this one."""


def migrate(conn: Connection) -> int:
    """Bring the database to ``LATEST_VERSION`` (inside ``Database.run``'s transaction); returns the version it
    found."""
    if conn.dialect == POSTGRESQL:
        conn.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    found = int(row[0]) if row is not None and row[0] is not None else _unversioned(conn)
    if found > LATEST_VERSION:
        raise SchemaTooNewError(
            f"the job database is at schema version {found}, newer than this Visualizr's {LATEST_VERSION}: "
            "run the newer version (or restore a backup)"
        )
    for version in range(found, LATEST_VERSION):
        conn.executescript(MIGRATIONS[version])
    if found != LATEST_VERSION:
        conn.execute("DELETE FROM schema_version")
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (LATEST_VERSION,))
    return found


def _unversioned(conn: Connection) -> int:
    """0 for an empty database; 1 for a SQLite database of a Visualizr that kept no version (brought up to the
    first versioned schema here: its missing columns added)."""
    if conn.dialect == POSTGRESQL:
        return 0
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "jobs" not in tables:
        return 0
    present = {r[1] for r in conn.execute("PRAGMA table_info(jobs)")}
    for name, declaration in _LEGACY_COLUMNS:
        if name not in present:
            conn.execute(f"ALTER TABLE jobs ADD COLUMN {name} {declaration}")
    conn.executescript(MIGRATIONS[0][1:])  # its indexes and the other tables, where missing
    return 1
