"""This replica's side of the queue (generation/queue.py), pure logic: a worker takes a job handed by a submission
before it claims one, a submission can reserve only a worker that is looking, a wake ends the poll's sleep."""

from __future__ import annotations

import asyncio
import time

from visualizr.frontend.generation.dispatch.queue import LiveJob, LocalQueue
from visualizr.frontend.generation.reporting.eta import Workload
from visualizr.frontend.jobs.record import GenerationParameters, JobRecord

PARAMS = GenerationParameters(64, 48, 4, 8, 2, 7.5, 1)


def live(request_id: str) -> LiveJob:
    record = JobRecord(request_id, "animatediff", "p", "", None, PARAMS, "processing", 0, "queued", 1.0)
    return LiveJob(record, Workload(0.0, 1.0, 0.0, 0.0), 1.0)


def test_a_handed_job_goes_first_and_a_reservation_needs_a_looking_worker() -> None:
    async def scenario() -> None:
        queue = LocalQueue()
        claims: list[str] = []

        async def claim() -> LiveJob | None:
            claims.append("claim")
            return None

        assert not queue.reserve(), "no worker is looking"
        worker = asyncio.create_task(queue.next(claim, poll_s=60))
        await asyncio.sleep(0.01)
        assert queue.idle_count == 1 and claims == ["claim"]
        assert queue.reserve() and queue.idle_count == 0 and not queue.reserve()
        handed = live("video_req_handed")
        queue.hand(handed)
        assert await asyncio.wait_for(worker, 1) is handed
        assert queue.live == {"video_req_handed": handed} and queue.idle_count == 0
        queue.retire(handed)
        assert queue.live == {}

    asyncio.run(scenario())


def test_a_wake_ends_the_sleep_and_a_claimed_job_is_live() -> None:
    async def scenario() -> None:
        queue = LocalQueue()
        ready: list[LiveJob] = []

        async def claim() -> LiveJob | None:
            return ready.pop() if ready else None

        started = time.monotonic()
        worker = asyncio.create_task(queue.next(claim, poll_s=60))
        await asyncio.sleep(0.01)
        ready.append(live("video_req_claimed"))
        queue.wake()
        job = await asyncio.wait_for(worker, 1)
        assert job.request_id == "video_req_claimed" and "video_req_claimed" in queue.live
        assert time.monotonic() - started < 1, "woken, not polled"

        unreserved = asyncio.create_task(queue.next(claim, poll_s=60))
        await asyncio.sleep(0.01)
        assert queue.reserve()
        queue.unreserve()  # the submission was queued after all: the worker looks again
        ready.append(live("video_req_next"))
        queue.wake()
        assert (await asyncio.wait_for(unreserved, 1)).request_id == "video_req_next"

        cancelled = asyncio.create_task(queue.next(claim, poll_s=60))
        await asyncio.sleep(0.01)
        cancelled.cancel()
        await asyncio.gather(cancelled, return_exceptions=True)
        assert queue.idle_count == 0

    asyncio.run(scenario())
