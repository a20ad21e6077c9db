"""The largest queue length seen per UTC day (``max_length_today`` of the metrics): in memory, written through to
its own small table when it grows, so a restart keeps it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from visualizr.frontend import clock
from visualizr.frontend.jobs.database import Connection
from visualizr.frontend.system.sources import utc_day

logger = logging.getLogger("visualizr.frontend.metrics")

class QueueWatermark:
    """The largest queue length seen per UTC day: in memory, written through to the job database when it grows."""

    def __init__(self, store_run: Callable[..., object], now: Callable[[], float] = clock.now) -> None:
        self._run = store_run
        self._now = now
        self._day = ""
        self._max = 0
        self._pending: set[asyncio.Task[object]] = set()

    async def restore(self) -> None:
        day = utc_day(self._now())

        def read(conn: Connection) -> int:
            row = conn.execute("SELECT max_length FROM queue_daily_max WHERE day = ?", (day,)).fetchone()
            return int(row[0]) if row else 0

        self._max = max(self._max if self._day == day else 0, await self._run(read))  # type: ignore[misc]
        self._day = day

    def observe(self, length: int) -> None:
        day = utc_day(self._now())
        if day != self._day:
            self._day, self._max = day, 0
        if length <= self._max:
            return
        self._max = length

        def write(conn: Connection) -> None:
            conn.execute(
                "INSERT INTO queue_daily_max (day, max_length) VALUES (?, ?) ON CONFLICT (day) DO UPDATE SET "
                "max_length = CASE WHEN excluded.max_length > queue_daily_max.max_length THEN excluded.max_length "
                "ELSE queue_daily_max.max_length END",
                (day, length),
            )

        try:
            task = asyncio.ensure_future(self._run(write))  # type: ignore[arg-type]
        except RuntimeError:  # no running loop (called outside the app): memory only
            return
        self._pending.add(task)
        task.add_done_callback(self._written)

    def _written(self, task: asyncio.Task[object]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("could not persist the queue watermark: %s", task.exception())

    def today(self) -> int:
        return self._max if self._day == utc_day(self._now()) else 0
