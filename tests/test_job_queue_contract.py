"""The queue in the job table, one contract on both engines (SQLite and a real PostgreSQL): claims, leases, the
reaper, owner-fenced transitions, cancel from any replica, the global queue cap and idempotency keys. Two
"replicas" are two JobStores (two connection pools, or two SQLite connections) on one database."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable
from functools import partial
from pathlib import Path
from typing import TypeVar

import msgspec
import pytest

from tests.support.job_database import ENGINES, engine_database, job, with_replicas
from visualizr.frontend.jobs.database import Database
from visualizr.frontend.jobs.record import JobRecord
from visualizr.frontend.jobs.store import JobStore
from visualizr.frontend.jobs.transitions import Completed, Failed, Progressed, Released, Retrying, advance, cancel
from visualizr.frontend.jobs.work_queue import Admission, Lease, QueueIsFull, admit, claim, queue_counts, reap, renew

T = TypeVar("T")
FIRST_STEP = "text_encoding"


@pytest.fixture(params=ENGINES)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    return engine_database(request, tmp_path)


def lease(owner: str, now: float = 10.0, seconds: float = 5.0) -> Lease:
    return Lease(owner, now, seconds)


def test_claims_take_the_oldest_startable_job_and_two_replicas_never_share_one(database: Database) -> None:
    async def scenario(one: JobStore, two: JobStore) -> None:
        await one.insert(job("video_req_late", created=1.0, not_before=100.0))  # a retry not due yet
        await one.insert(msgspec.structs.replace(job("video_req_other", created=2.0), model="svd"))  # not servable
        for index in range(20):
            await one.insert(job(f"video_req_{index:02d}", created=3.0 + index))
        first = await one.run(claim(lease("r1"), ["svd"], FIRST_STEP))
        assert first is not None and first.request_id == "video_req_00"
        assert (first.status, first.owner, first.lease_expires_at, first.attempts, first.started_at) == (
            "processing", "r1", 15.0, 1, 10.0,
        )  # fmt: skip
        assert first.current_step == FIRST_STEP

        async def claim_all(store: JobStore, owner: str) -> list[str]:
            got = []
            while (record := await store.run(claim(lease(owner), ["svd"], FIRST_STEP))) is not None:
                got.append(record.request_id)
            return got

        by_one, by_two = await asyncio.gather(claim_all(one, "r1"), claim_all(two, "r2"))
        assert sorted(by_one + by_two) == [f"video_req_{i:02d}" for i in range(1, 20)]  # each exactly once
        assert await one.run(queue_counts) == (2, 20)
        due = await two.run(claim(Lease("r2", 100.0, 5.0), [], FIRST_STEP))
        assert due is not None and due.request_id == "video_req_late"

    with_replicas(database, scenario)


def test_an_expired_lease_is_reaped_once_and_its_owner_is_fenced_out(database: Database) -> None:
    async def scenario(one: JobStore, two: JobStore) -> None:
        await one.insert(job("video_req_a", created=1.0))
        await one.insert(job("video_req_b", created=2.0))
        assert await one.run(claim(lease("r1", now=10.0, seconds=5.0), [], FIRST_STEP)) is not None
        assert await one.run(claim(lease("r1", now=10.0, seconds=5.0), [], FIRST_STEP)) is not None
        assert await one.run(renew(lease("r1", now=12.0), ["video_req_a"])) == {"video_req_a"}  # a: until 17
        assert await two.run(reap(14.0, lambda r: Retrying("lost", 14.0))) == []  # nothing expired yet

        def decide(record: JobRecord) -> Retrying:
            return Retrying(f"replica {record.owner} died", 16.0)

        reaped = await asyncio.gather(one.run(reap(16.0, decide)), two.run(reap(16.0, decide)))
        assert sorted(len(r) for r in reaped) == [0, 1], "one reaper takes the expired job, once"
        (taken,) = reaped[0] or reaped[1]
        assert (taken.request_id, taken.status, taken.owner, taken.current_step) == (
            "video_req_b", "queued", None, "retrying",
        )  # fmt: skip
        assert (taken.attempts, taken.last_error, taken.started_at) == (1, "replica r1 died", None)

        again = await two.run(claim(lease("r2", now=16.0), [], FIRST_STEP))
        assert again is not None and (again.request_id, again.attempts) == ("video_req_b", 2)
        stale = partial(advance, request_id="video_req_b", owner="r1")
        assert await one.run(partial(stale, transition=Progressed(50, "frame_generation"))) is None
        assert await one.run(partial(stale, transition=Completed(17.0, 1.0, "b.mp4", "b.jpg", "b.gif", None, None)))\
            is None  # fmt: skip
        assert await one.get("video_req_b") == again, "the stale owner changed nothing"
        assert await one.run(renew(lease("r1", now=16.5), ["video_req_a", "video_req_b"])) == {"video_req_a"}
        progressed = await two.run(partial(advance, request_id="video_req_b", owner="r2",
                                           transition=Progressed(50, "frame_generation")))  # fmt: skip
        assert progressed is not None and (progressed.progress, progressed.owner) == (50, "r2")

    with_replicas(database, scenario)


def test_reaping_past_the_retry_policy_fails_the_job_and_a_release_does_not_count(database: Database) -> None:
    async def scenario(one: JobStore, two: JobStore) -> None:
        await one.insert(job("video_req_a", created=1.0))
        await one.insert(job("video_req_b", created=2.0))
        await one.run(claim(lease("r1"), [], FIRST_STEP))
        await one.run(claim(lease("r1"), [], FIRST_STEP))
        released = await one.run(partial(advance, request_id="video_req_b", owner="r1", transition=Released()))
        assert released is not None and (released.status, released.attempts, released.owner) == ("queued", 0, None)
        gave_up = Failed(20.0, "GENERATION_FAILED", "Video generation failed", "gave up")
        (failed,) = await two.run(reap(20.0, lambda r: gave_up, expired_before=math.inf))
        assert (failed.request_id, failed.status, failed.failed_at, failed.error_details) == (
            "video_req_a", "failed", 20.0, "gave up",
        )  # fmt: skip
        assert failed.owner == "r1", "a finished job keeps the replica that ran it"
        # a replica starting again under its old name takes its own running jobs back, leases or not
        assert (await two.run(claim(lease("r2", now=20.0), [], FIRST_STEP))) is not None  # b, until 25
        assert await one.run(reap(21.0, lambda r: Retrying("restarted", 21.0), owner="r1")) == []
        (restarted,) = await one.run(reap(21.0, lambda r: Retrying("restarted", 21.0), owner="r2"))
        assert (restarted.request_id, restarted.status, restarted.last_error) == ("video_req_b", "queued", "restarted")

    with_replicas(database, scenario)


def test_cancel_from_any_replica(database: Database) -> None:
    async def scenario(one: JobStore, two: JobStore) -> None:
        await one.insert(job("video_req_run", created=1.0))
        await one.insert(job("video_req_wait", created=2.0))
        await one.run(claim(lease("r1"), [], FIRST_STEP))
        waiting = await two.run(partial(cancel, request_id="video_req_wait", now=11.0))
        assert waiting is not None and (waiting.status, waiting.cancelled_at, waiting.cancel_requested) == (
            "cancelled", 11.0, False,
        )  # fmt: skip
        running = await two.run(partial(cancel, request_id="video_req_run", now=12.0))
        assert running is not None and (running.status, running.owner, running.cancel_requested) == (
            "cancelled", "r1", True,
        )  # fmt: skip
        assert await two.run(partial(cancel, request_id="video_req_run", now=13.0)) is None  # once
        # its runner finds out at its next write or heartbeat, and changes nothing
        write = partial(advance, request_id="video_req_run", owner="r1", transition=Progressed(40, "decoding"))
        assert await one.run(write) is None
        assert await one.run(renew(lease("r1"), ["video_req_run"])) == set()
        assert await one.get("video_req_run") == running
        assert await one.run(queue_counts) == (0, 0)

    with_replicas(database, scenario)


def test_admission_cap_and_idempotency_keys_are_global(database: Database) -> None:
    async def scenario(one: JobStore, two: JobStore) -> None:
        first = await one.run(admit(job("video_req_1", created=1.0), 2))
        assert first.record is not None and first.record.status == "queued" and not first.started
        await two.run(admit(job("video_req_2", created=2.0), 2))
        with pytest.raises(QueueIsFull):
            await one.run(admit(job("video_req_3", created=3.0), 2))
        # an idle worker does not take a new job past older startable ones: it queues (and the cap applies)
        with pytest.raises(QueueIsFull):
            await two.run(admit(job("video_req_3", created=3.0), 2, start=lease("r2"), first_step=FIRST_STEP))
        for request_id in ("video_req_1", "video_req_2"):
            await one.run(partial(cancel, request_id=request_id, now=4.0))
        started = await two.run(admit(job("video_req_4", created=4.0), 2, start=lease("r2"), first_step=FIRST_STEP))
        assert started.started and started.record is not None
        assert (started.record.status, started.record.owner, started.record.attempts) == ("processing", "r2", 1)

        # two replicas racing with one key: one job is stored, the other answer names it
        def keyed(request_id: str, store: JobStore) -> Awaitable[Admission]:
            return store.run(admit(job(request_id, created=5.0), 10, idempotency=("key-1", "fp"), keys_since=0.0))

        answers = await asyncio.gather(keyed("video_req_5", one), keyed("video_req_6", two))
        stored = [a.record.request_id for a in answers if a.record is not None]
        assert len(stored) == 1 and [(a.duplicate_of, a.fingerprint) for a in answers if a.record is None] == [
            (stored[0], "fp")
        ]
        assert await one.run(queue_counts) == (1, 1)

    with_replicas(database, scenario)
