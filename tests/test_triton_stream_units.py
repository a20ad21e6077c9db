"""How a pipeline stream ends, over a stand-in for tritonclient's aio client: our own cancel() ends it quietly, a
cancelled task stays cancelled, and a channel closed under it (its endpoint went down and was reset) is a failure
the job survives (UNREACHABLE: run again), never a CancelledError that would end the worker running the job."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from tritonclient.utils import InferenceServerException

from visualizr.frontend.generation.running.triton_backend import classify
from visualizr.frontend.infra.failures import UNREACHABLE
from visualizr.pipeline import GenerationRequest
from visualizr.triton.client import CLOSED_UNDER_THE_STREAM, PipelineStream

REQUEST = GenerationRequest("a lighthouse", 64, 64, 4, 2, 7.5, 7)


class Call:
    """A stream_infer call that waits for its cancel(), or is cancelled at once by a closing channel."""

    def __init__(self, closed: bool) -> None:
        self.closed = closed
        self.cancelled = asyncio.Event()

    def cancel(self) -> None:
        self.cancelled.set()

    def __aiter__(self) -> Call:
        return self

    async def __anext__(self) -> tuple[object, None]:
        if not self.closed:
            await self.cancelled.wait()
        raise asyncio.CancelledError  # what grpc.aio raises in the call's reader either way


class Client:
    def __init__(self, closed: bool = False) -> None:
        self.call = Call(closed)

    async def get_model_metadata(self, model: str) -> SimpleNamespace:
        return SimpleNamespace(inputs=[])

    def stream_infer(self, requests: object) -> Call:
        return self.call


async def drain(stream: PipelineStream) -> list[object]:
    return [event async for event in stream]


def test_a_channel_closed_under_the_stream_is_an_unreachable_failure() -> None:
    with pytest.raises(InferenceServerException) as raised:
        asyncio.run(drain(PipelineStream(Client(closed=True), "animatediff", REQUEST)))  # type: ignore[arg-type]
    error = classify(str(raised.value.status()), raised.value.message())
    assert error.kind == UNREACHABLE and error.retryable and CLOSED_UNDER_THE_STREAM in error.details


def test_our_own_cancel_ends_the_stream_quietly() -> None:
    async def scenario() -> list[object]:
        stream = PipelineStream(Client(), "animatediff", REQUEST)  # type: ignore[arg-type]
        running = asyncio.create_task(drain(stream))
        await asyncio.sleep(0.01)
        stream.cancel()
        return await running

    assert asyncio.run(scenario()) == []


def test_a_cancelled_task_stays_cancelled() -> None:
    async def scenario() -> None:
        running = asyncio.create_task(drain(PipelineStream(Client(), "animatediff", REQUEST)))  # type: ignore[arg-type]
        await asyncio.sleep(0.01)
        running.cancel()
        await running

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(scenario())
