"""The webhooks' outbox in the job store, one contract on both engines (SQLite and a real PostgreSQL): a job's
webhook stored with its admission, each event's delivery written by the transition that causes it (once per
event id), progress throttled, deliveries claimed by one replica at a time under a lease, attempts recorded by
their holder only, a restarted process's leases freed (docs/ARCHITECTURE.md, "Webhooks")."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest

from tests.support.job_database import ENGINES, engine_database, job, with_replicas
from visualizr.frontend.jobs.database import Connection, Database
from visualizr.frontend.jobs.listing import delete_completed
from visualizr.frontend.jobs.schema import LATEST_VERSION, MIGRATIONS
from visualizr.frontend.jobs.store import JobStore
from visualizr.frontend.jobs.transitions import Completed, Failed, Progressed, advance, cancel
from visualizr.frontend.jobs.webhook_outbox import (
    DELIVERED,
    PENDING,
    PROGRESS_INTERVAL_S,
    WebhookAttempt,
    WebhookTarget,
    claim_due,
    deliveries_of,
    record_attempt,
    record_event,
    release_leases,
)
from visualizr.frontend.jobs.work_queue import Lease, admit, claim

HOOK = WebhookTarget("https://hooks.example/visualizr")
EVERYTHING = WebhookTarget("https://hooks.example/all", ("completed", "failed", "cancelled", "progress"))


@pytest.fixture(params=ENGINES)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    return engine_database(request, tmp_path)


async def started(store: JobStore, request_id: str, webhook: WebhookTarget | None, created: float = 1.0) -> None:
    """Admit a job with ``webhook`` and have replica r1 run it."""
    await store.run(admit(job(request_id, created=created), 10, webhook=webhook))
    await store.run(claim(Lease("r1", 5.0, 30.0), [], "text_encoding"))


def test_the_schema_has_the_outbox() -> None:
    assert len(MIGRATIONS) == LATEST_VERSION
    assert any("webhook_deliveries" in statement for migration in MIGRATIONS for statement in migration)


def test_terminal_events_are_stored_once_with_their_transition(database: Database) -> None:
    async def scenario(one: JobStore, two: JobStore) -> None:
        await started(one, "video_req_done", HOOK)
        await started(one, "video_req_plain", None, created=2.0)  # no webhook: no delivery
        await one.run(admit(job("video_req_wait", created=3.0), 10, webhook=HOOK))
        await one.run(admit(job("video_req_fail", created=4.0), 10, webhook=WebhookTarget(HOOK.url, ("completed",))))
        done = Completed(9.0, 4.0, "a.mp4", "a.jpg", "a.gif", None, None)
        for request_id in ("video_req_done", "video_req_plain"):
            assert await one.run(partial(advance, request_id=request_id, owner="r1", transition=done)) is not None
        assert await one.run(partial(advance, request_id="video_req_done", owner="r1", transition=done)) is None
        assert await two.run(partial(cancel, request_id="video_req_wait", now=10.0)) is not None
        await one.run(claim(Lease("r1", 11.0, 30.0), [], "text_encoding"))
        failed = Failed(12.0, "GENERATION_FAILED", "no", "")
        assert await one.run(partial(advance, request_id="video_req_fail", owner="r1", transition=failed)) is not None
        ids = ["video_req_done", "video_req_plain", "video_req_wait", "video_req_fail"]
        deliveries = await two.run(deliveries_of(ids))
        assert sorted((d.event_id, d.event, d.status, d.url) for d in deliveries) == [
            ("msg_video_req_done_completed", "completed", PENDING, HOOK.url),
            ("msg_video_req_wait_cancelled", "cancelled", PENDING, HOOK.url),
        ]  # the failure was not asked for; the plain job has no webhook
        assert await one.run(partial(delete_completed, request_id="video_req_done"))  # its video deleted: the job
        assert [d.request_id for d in await two.run(deliveries_of(ids))] == ["video_req_wait"]  # and its webhook go

    with_replicas(database, scenario)


def test_progress_events_are_throttled_per_job(database: Database) -> None:
    async def scenario(one: JobStore, two: JobStore) -> None:
        await started(one, "video_req_p", EVERYTHING)
        for progress in (10, 20):  # the first makes an event, the second comes within the interval
            await one.run(partial(advance, request_id="video_req_p", owner="r1", transition=Progressed(progress, "x")))
        record = await one.get("video_req_p")
        assert record is not None

        def later(conn: Connection) -> None:
            record_event(conn, record, True, 1e10)
            record_event(conn, record, True, 1e10 + PROGRESS_INTERVAL_S / 2)
            record_event(conn, record, True, 1e10 + PROGRESS_INTERVAL_S)

        await one.run(later)
        deliveries = await two.run(deliveries_of(["video_req_p"]))
        assert [d.event for d in deliveries] == ["progress"] * 3
        assert len({d.event_id for d in deliveries}) == 3

    with_replicas(database, scenario)


def test_deliveries_are_claimed_by_one_replica_and_recorded_by_their_holder(database: Database) -> None:
    async def scenario(one: JobStore, two: JobStore) -> None:
        for index in range(6):
            await started(one, f"video_req_{index}", HOOK, created=float(index))
            done = Completed(9.0, 4.0, "a.mp4", "a.jpg", "a.gif", None, None)
            await one.run(partial(advance, request_id=f"video_req_{index}", owner="r1", transition=done))
        now = 1e10  # every delivery is due
        first = await one.run(claim_due("r1", now, 40.0, 4))
        second = await two.run(claim_due("r2", now, 40.0, 4))
        assert len(first) == 4 and len(second) == 2
        assert not {d.event_id for d in first} & {d.event_id for d in second}
        assert await one.run(claim_due("r1", now + 39.0, 40.0, 10)) == []  # the leases hold
        delivery = first[0]
        attempt = WebhookAttempt(at=now, duration_seconds=0.1, status_code=500)
        assert not await two.run(record_attempt(delivery, "r2", attempt, PENDING, now + 1.0, b"{}"))  # not r2's
        assert await one.run(record_attempt(delivery, "r1", attempt, PENDING, now + 1.0, b'{"a":1}'))
        assert await two.run(claim_due("r2", now + 0.5, 40.0, 10)) == []  # not due yet
        (again,) = await two.run(claim_due("r2", now + 1.0, 40.0, 10))
        assert (again.event_id, again.attempts, again.payload) == (delivery.event_id, (attempt,), b'{"a":1}')
        ok = WebhookAttempt(at=now + 1.0, duration_seconds=0.1, status_code=204)
        assert await two.run(record_attempt(again, "r2", ok, DELIVERED, now + 1.0, again.payload or b""))
        assert len(await one.run(claim_due("r1", now + 100.0, 1000.0, 10))) == 5  # every expired lease, r2's too
        assert await one.run(claim_due("r1", now + 200.0, 40.0, 10)) == []  # r1's own leases hold again...
        assert await one.run(release_leases("r1", everyone=False)) == 5  # ...until a restart frees them
        (stored,) = [d for d in await one.run(deliveries_of([delivery.request_id]))]
        assert stored.status == DELIVERED and [a.status_code for a in stored.attempts] == [500, 204]

    with_replicas(database, scenario)
