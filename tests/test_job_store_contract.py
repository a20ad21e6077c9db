"""One contract for the job store, the same tests on both engines: SQLite (the embedded default) and a real
PostgreSQL server (Debian's packages, started by the tests on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import msgspec
import pytest

from tests.support.job_database import ENGINES, PARAMS, engine_database, job, with_store
from visualizr.frontend.jobs import characters, listing, stats
from visualizr.frontend.jobs.characters import CharacterRow
from visualizr.frontend.jobs.database import Connection, Database
from visualizr.frontend.jobs.record import CostSample, JobRecord, VideoMetadata
from visualizr.frontend.jobs.schema import LATEST_VERSION, MIGRATIONS, SchemaTooNewError, migrate
from visualizr.frontend.jobs.store import JobStore
from visualizr.frontend.jobs.transitions import Completed, Retrying, advance
from visualizr.frontend.jobs.work_queue import reap
from visualizr.frontend.system.watermark import QueueWatermark


@pytest.fixture(params=ENGINES)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    yield engine_database(request, tmp_path)


def test_insert_get_update_and_list_in_order(database: Database) -> None:
    async def scenario(store: JobStore) -> None:
        metadata = VideoMetadata(0.5, 8, "64x48", 1234, "mp4", "h264", 4)
        first = msgspec.structs.replace(
            job("video_req_b", created=2.0, kind="image-to-video", source_image="inputs/b.png"), style="cinematic"
        )
        await store.insert(first)
        await store.insert(job("video_req_a", created=2.0))
        await store.insert(job("video_req_c", created=1.0))
        assert await store.get("video_req_b") == first
        assert await store.get("video_req_none") is None
        await store.run(lambda conn: conn.execute(
            "UPDATE jobs SET status = 'processing', owner = 'r1' WHERE request_id = 'video_req_b'"))  # fmt: skip
        completed = Completed(3.5, 1.5, "b.mp4", "b.jpg", "b.gif", None, metadata)
        done = await store.run(partial(advance, request_id="video_req_b", owner="r1", transition=completed))
        assert done == await store.get("video_req_b")
        assert done is not None and (done.status, done.metadata, done.completed_at) == ("completed", metadata, 3.5)
        queued = await store.list_by_status(["queued"])
        assert [r.request_id for r in queued] == ["video_req_c", "video_req_a"]  # created_at, then id

    with_store(database, scenario)


def test_interrupted_jobs_queue_again_and_cost_samples(database: Database) -> None:
    async def scenario(store: JobStore) -> None:
        await store.insert(job("video_req_run", "processing", started_at=2.0, attempts=1))
        await store.insert(job("video_req_wait", "queued"))
        for index, seconds in enumerate((3.0, 5.0)):
            await store.insert(
                job(f"video_req_done{index}", "completed", completed_at=10.0 + index, processing_time_seconds=seconds)
            )
        reaped = await store.run(reap(5.0, lambda r: Retrying("interrupted", 5.0), expired_before=math.inf))
        again = await store.get("video_req_run")
        assert again is not None and reaped == [again]
        assert (again.status, again.current_step, again.started_at, again.attempts, again.last_error) == (
            "queued", "retrying", None, 1, "interrupted",
        )  # fmt: skip
        assert await store.cost_samples() == []
        first = [CostSample("animatediff", "denoise", 4.0, 65536.0, 1.5, {"animatediff": 0.5, "m": 0.5}),
                 CostSample("m", "overhead", 1.0, 0.0, 0.2)]  # fmt: skip
        await store.add_cost_samples(first, recorded_at=1.0, keep=6)
        later = [CostSample("m", "decode", 1.0, 64.0 * i, 0.1 * i) for i in range(4)]
        await store.add_cost_samples(later, recorded_at=2.0, keep=6)
        def runs(stored: list[list[CostSample]]) -> list[list[str]]:  # a run's own samples in any order
            return [sorted(map(repr, run)) for run in stored]

        assert runs(await store.cost_samples()) == runs([first, later])  # by run, oldest first
        await store.add_cost_samples(later[:1], recorded_at=3.0, keep=6)
        assert runs(await store.cost_samples()) == runs([later, later[:1]])  # the latest ``keep``: whole runs
        await store.run(lambda conn: conn.execute(  # a row stored before the company by model was
            "INSERT INTO eta_samples (model, part, fixed, work, seconds, concurrency, recorded_at) "
            "VALUES ('m', 'decode', 1.0, 64.0, 0.1, 3.0, 4.0)"))  # fmt: skip
        older = [CostSample("m", "decode", 1.0, 64.0, 0.1, {"m": 2.0})]  # its company: jobs of its own model
        assert runs(await store.cost_samples())[-1] == runs([older])[0]

    with_store(database, scenario)


def test_idempotency_keys_expire(database: Database) -> None:
    async def scenario(store: JobStore) -> None:
        await store.insert(job("video_req_k", created=100.0), idempotency=("key-1", "fingerprint"))
        assert await store.idempotent_job("key-1", since=50.0) == ("fingerprint", "video_req_k")
        assert await store.idempotent_job("key-2", since=50.0) is None
        assert await store.idempotent_job("key-1", since=150.0) is None  # older than the window: forgotten

    with_store(database, scenario)


def test_aggregates(database: Database) -> None:
    async def scenario(store: JobStore) -> None:
        await store.insert(job("a", "completed", 10.0, started_at=11.0, completed_at=13.0, processing_time_seconds=2.0))
        await store.insert(job("b", "completed", 20.0, started_at=20.0, completed_at=26.0, processing_time_seconds=6.0))
        await store.insert(job("c", "failed", 30.0, started_at=33.0, failed_at=34.0, error_code="GENERATION_FAILED"))
        await store.insert(job("d", "cancelled", 40.0, cancelled_at=41.0))
        models = await store.run(stats.model_stats)
        assert models == {"animatediff": stats.ModelStats(3, 2, 4.0)}
        times = await store.run(stats.time_stats)
        assert (times.average, times.median, times.fastest, times.slowest) == (4.0, 4.0, 2.0, 6.0)
        counts = await store.run(lambda conn: stats.request_counts(conn, since=15.0))
        assert counts == stats.RequestCounts(4, 3, 1, 2, 1)
        assert await store.run(stats.average_wait_seconds) == pytest.approx((1.0 + 0.0 + 3.0) / 3, abs=1e-3)
        outcomes = {row.outcome: row for row in await store.run(stats.outcome_stats)}
        assert (outcomes["completed"].count, outcomes["completed"].timed, outcomes["completed"].duration_sum) == (
            2, 2, 8.0,
        )  # fmt: skip
        assert outcomes["completed"].buckets[:3] == [0, 0, 0] and outcomes["completed"].buckets[-1] == 2
        assert (outcomes["failed"].timed, outcomes["cancelled"].timed) == (1, 0)
        assert await store.run(stats.failure_stats) == [("animatediff", "GENERATION_FAILED", 1)]

    with_store(database, scenario)


def test_listing_and_delete(database: Database) -> None:
    async def scenario(store: JobStore) -> None:
        metadata = VideoMetadata(0.5, 8, "64x48", 10, "mp4", "h264", 4)
        for index in range(3):
            await store.insert(job(f"video_req_{index}", "completed", completed_at=10.0 + index, metadata=metadata))
        await store.insert(job("video_req_q", "queued"))
        everything = listing.ListQuery()
        assert await store.run(lambda conn: listing.completed_ids(conn, everything)) == [
            "video_req_2", "video_req_1", "video_req_0",
        ]  # fmt: skip
        recent = listing.ListQuery(created_from=11.0, created_before=12.0)
        assert await store.run(lambda conn: listing.completed_ids(conn, recent)) == ["video_req_1"]
        rows = await store.run(lambda conn: listing.listed_rows(conn, ["video_req_1", "video_req_2"]))
        assert rows["video_req_1"].metadata == metadata and rows["video_req_2"].completed_at == 12.0
        assert await store.run(lambda conn: listing.delete_completed(conn, "video_req_1"))
        assert not await store.run(lambda conn: listing.delete_completed(conn, "video_req_q"))  # not a video
        assert not await store.run(lambda conn: listing.delete_completed(conn, "video_req_1"))  # gone already

    with_store(database, scenario)


def test_pages_and_stored_videos_from_the_table(database: Database) -> None:
    """What the asset listing and the storage metrics read when the files live in S3 (the table is the truth)."""

    async def scenario(store: JobStore) -> None:
        for index, size in enumerate((1000, 2500, 40)):
            metadata = VideoMetadata(0.5, 8, "64x48", size, "mp4", "h264", 4)
            await store.insert(job(f"video_req_{index}", "completed", completed_at=10.0 + index, metadata=metadata,
                                   video_path=f"video_{index}.mp4"))  # fmt: skip
        await store.insert(job("video_req_q", "queued"))
        await store.insert(job("video_req_f", "failed"))
        page = listing.ListQuery(limit=2, offset=1)
        assert await store.run(lambda conn: listing.completed_page(conn, page)) == (["video_req_1", "video_req_0"], 3)
        past = listing.ListQuery(limit=2, offset=5, created_from=11.0)
        assert await store.run(lambda conn: listing.completed_page(conn, past)) == ([], 2)
        assert await store.run(listing.stored_videos) == (3, 3540)
        await store.run(lambda conn: listing.delete_completed(conn, "video_req_1"))
        assert await store.run(listing.stored_videos) == (2, 1040)

    with_store(database, scenario)


def test_queue_watermark_survives_a_restart(database: Database) -> None:
    async def scenario(store: JobStore) -> int:
        watermark = QueueWatermark(store.run, now=lambda: 86400.0 * 3)
        await watermark.restore()
        watermark.observe(4)
        watermark.observe(2)
        while watermark._pending:
            await asyncio.sleep(0.01)
        again = QueueWatermark(store.run, now=lambda: 86400.0 * 3 + 60)
        await again.restore()
        return again.today()

    assert with_store(database, scenario) == 4


def test_schema_is_versioned_and_a_newer_one_is_refused(database: Database) -> None:
    assert database.run_once(migrate) == 0  # a new database
    assert database.run_once(migrate) == LATEST_VERSION  # nothing left to do
    database.run_once(lambda conn: conn.execute("UPDATE schema_version SET version = ?", (LATEST_VERSION + 1,)))
    with pytest.raises(SchemaTooNewError, match=f"schema version {LATEST_VERSION + 1}"):
        database.run_once(migrate)


def test_a_version_1_database_gains_the_keyframe_column_and_keeps_its_rows(database: Database) -> None:
    def at_version_1(conn: Connection) -> None:  # what the first versioned Visualizr left behind
        conn.executescript(MIGRATIONS[0])
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version (version) VALUES (1)")
        conn.execute(
            "INSERT INTO jobs (request_id, model, prompt, parameters, status, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            ("video_req_v1", "animatediff", "p", msgspec.json.encode(PARAMS).decode(), "completed", 1.0),
        )

    database.run_once(at_version_1)
    assert database.run_once(migrate) == 1

    async def scenario(store: JobStore) -> None:
        old = await store.get("video_req_v1")
        assert old is not None and (old.status, old.parameters, old.keyframe_path) == ("completed", PARAMS, None)
        assert (old.owner, old.lease_expires_at, old.cancel_requested, old.not_before) == (None, None, False, 0.0)
        await store.run(lambda conn: conn.execute("UPDATE jobs SET keyframe_path = 'k.png'"))
        again = await store.get("video_req_v1")
        assert again is not None and again.keyframe_path == "k.png"

    with_store(database, scenario)


def test_json_columns_round_trip_exactly(database: Database) -> None:
    async def scenario(store: JobStore) -> JobRecord | None:
        image = msgspec.structs.replace(PARAMS, motion_bucket_id=127, noise_aug_strength=0.02)
        await store.insert(job("video_req_svd", parameters=image))
        return await store.get("video_req_svd")

    stored = with_store(database, scenario)
    assert stored is not None and stored.parameters.motion_bucket_id == 127


def test_the_character_registry_table(database: Database) -> None:
    """Characters (schema version 4): insert once per id, pages oldest first, videos counted per character (completed
    jobs only), user characters deleted, built-ins kept."""

    async def scenario(store: JobStore) -> None:
        builtin = CharacterRow("robot", "robot", "a robot", True, ("characters/robot/builtin_1.png",), 0.0)
        mine = CharacterRow("hero", "Hero", "", False, ("characters/hero/a_1.png", "characters/hero/a_2.png"), 5.0)
        assert await store.run(characters.insert_character(builtin))
        assert await store.run(characters.insert_character(mine))
        assert not await store.run(characters.insert_character(msgspec.structs.replace(mine, name="Other")))
        assert await store.run(characters.get_character("hero")) == mine
        assert await store.run(characters.get_character("nobody")) is None
        assert await store.run(characters.character_page(1, 0)) == ([builtin], 2)
        assert await store.run(characters.character_page(5, 1)) == ([mine], 2)
        await store.insert(job("anim_req_1", "completed", character_id="hero"))
        await store.insert(job("anim_req_2", "completed", character_id="hero"))
        await store.insert(job("anim_req_3", "queued", character_id="hero"))
        assert (await store.get("anim_req_3")).character_id == "hero"  # type: ignore[union-attr]
        assert await store.run(characters.videos_using(["hero", "robot"])) == {"hero": 2}
        assert await store.run(characters.delete_character("robot")) is None  # built in
        assert await store.run(characters.delete_character("hero")) == mine
        assert await store.run(characters.delete_character("hero")) is None
        assert await store.run(characters.character_page(5, 0)) == ([builtin], 1)

    with_store(database, scenario)
