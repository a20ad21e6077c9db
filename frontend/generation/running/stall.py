"""A watchdog for pipeline streams: a job whose stream goes silent (Triton hung, a stub deadlocked, the network
half-open) must still end, so that no job stays ``processing`` forever."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator
from typing import TypeVar

T = TypeVar("T")


class StreamStalled(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"no progress from the pipeline for {seconds:g} s")
        self.seconds = seconds


async def within_stall_timeout(events: AsyncIterable[T], seconds: float) -> AsyncIterator[T]:
    """Yield ``events``; raise StreamStalled when the next one takes longer than ``seconds``. The pending read is
    cancelled first, which cancels a Triton stream's gRPC call (visualizr.triton.client.PipelineStream)."""
    iterator = aiter(events)
    while True:
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation of the calling task
        # that races with the read finishing, and then a worker never stops (seen as a hung shutdown).
        try:
            async with asyncio.timeout(seconds):
                event = await anext(iterator)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise StreamStalled(seconds) from None
        yield event
