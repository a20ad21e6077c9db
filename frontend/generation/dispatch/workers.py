"""The worker tasks and the maintenance loop that keeps them alive.

``count`` workers each take a job (``LocalQueue.next``: handed by a submission or claimed from the shared queue)
and run it (``run_one``). A worker survives any exception from one job (``run_one`` must settle the job itself);
if a worker task ends anyway, the maintenance loop restarts it and counts the restart. The same loop runs
``tick`` (parked writes, lease renewal, the reaper, waking the workers) every ``tick_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from visualizr.frontend.generation.dispatch.queue import LiveJob, LocalQueue

logger = logging.getLogger("visualizr.frontend.generation")



class WorkerPool:
    def __init__(
        self,
        queue: LocalQueue,
        count: int,
        claim: Callable[[], Awaitable[LiveJob | None]],
        run_one: Callable[[LiveJob], Awaitable[None]],
        on_shutdown: Callable[[LiveJob], Awaitable[None]],
        tick: Callable[[], Awaitable[None]],
        *,
        poll_s: float,
        tick_s: float,
    ) -> None:
        self.queue = queue
        self.count = count
        self._claim = claim
        self.poll_s, self.tick_s = poll_s, tick_s
        self._run_one = run_one
        self._on_shutdown = on_shutdown
        self._tick = tick
        self._tasks: list[asyncio.Task[None]] = []
        self._maintenance: asyncio.Task[None] | None = None
        self.restarts = 0

    @property
    def alive(self) -> int:
        return sum(1 for task in self._tasks if not task.done())

    def start(self) -> None:
        self._tasks = [self._spawn(i) for i in range(self.count)]
        self._maintenance = asyncio.create_task(self._maintain(), name="generation-maintenance")

    def _spawn(self, index: int) -> asyncio.Task[None]:
        return asyncio.create_task(self._work(index), name=f"generation-worker-{index}")

    async def _work(self, index: int) -> None:
        while True:
            job = await self.queue.next(self._claim, self.poll_s)
            try:
                await self._run_one(job)
            except asyncio.CancelledError:
                await self._on_shutdown(job)
                raise

    def revive(self) -> None:
        """Restart every worker task that ended (it should never: this is the safety net)."""
        for index, task in enumerate(self._tasks):
            if not task.done():
                continue
            error = None if task.cancelled() else task.exception()
            logger.error("generation worker %d ended (%r); restarting it", index, error)
            self.restarts += 1
            self._tasks[index] = self._spawn(index)

    async def _maintain(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            try:
                self.revive()
                await self._tick()
            except Exception:  # the loop that keeps the others alive must not die itself
                logger.exception("generation maintenance failed")

    async def stop(self) -> None:
        tasks = [t for t in (self._maintenance, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks, self._maintenance = [], None
