"""GenerationBackend over Triton: the decoupled pipeline model streamed with tritonclient's gRPC aio client
(``visualizr.triton.client.PipelineStream``) on one endpoint's connection, its errors classified.

Cancelling the stream makes Triton mark the request cancelled; the pipeline loop checks ``request.is_cancelled()``
every step and stops within one step.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from tritonclient.utils import InferenceServerException

from visualizr.frontend.generation.running.backend import GenerationInput
from visualizr.frontend.infra.endpoints import Endpoint
from visualizr.frontend.infra.failures import (
    INPUT,
    INTERNAL,
    MODEL_UNAVAILABLE,
    OUT_OF_MEMORY,
    UNHEALTHY_MODEL,
    UNREACHABLE,
    BackendError,
)
from visualizr.frontend.infra.gpu import is_out_of_memory
from visualizr.pipeline.progress import ProgressEvent
from visualizr.triton.client import PipelineStream

FAILED_MESSAGE = "Video generation failed"
# "Stub process 'animatediff_unet_0_0' is not healthy." -> the instance of model animatediff_unet
_DEAD_STUB_RE = re.compile(r"Stub process '(?P<instance>[^']+?)(?:_\d+)+' is not healthy")
_UNREACHABLE_STATUSES = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED")
_UNREACHABLE_TEXT = re.compile(
    r"failed to connect|connection refused|socket closed|broken pipe|connection reset|ended without a final",
    re.IGNORECASE,
)
_MODEL_UNAVAILABLE_TEXT = re.compile(r"unknown model|is not found|is not ready|not loaded", re.IGNORECASE)


def classify(status: str, message: str) -> BackendError:
    """A Triton error (gRPC status name, message) as a BackendError of the right kind."""
    dead = _DEAD_STUB_RE.search(message)
    if dead:
        return BackendError(FAILED_MESSAGE, message, UNHEALTHY_MODEL, dead.group("instance"))
    if is_out_of_memory(message):
        return BackendError(FAILED_MESSAGE, message, OUT_OF_MEMORY)
    if message.startswith("invalid request:") or status == "INVALID_ARGUMENT":
        return BackendError(FAILED_MESSAGE, message, INPUT)
    if status in _UNREACHABLE_STATUSES or _UNREACHABLE_TEXT.search(message):
        return BackendError(FAILED_MESSAGE, message, UNREACHABLE)
    if _MODEL_UNAVAILABLE_TEXT.search(message):
        return BackendError(FAILED_MESSAGE, message, MODEL_UNAVAILABLE)
    return BackendError(FAILED_MESSAGE, message, INTERNAL)


class TritonStream:
    """One job's stream. Iterate once; ``cancel()`` may be called from any task of the same loop."""

    def __init__(self, endpoint: Endpoint, job: GenerationInput) -> None:
        self._stream = PipelineStream(endpoint.connection.client, job.model, job.request, job.request_id)
        self._url = endpoint.url

    def cancel(self) -> None:
        self._stream.cancel()

    def __aiter__(self) -> AsyncIterator[ProgressEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[ProgressEvent]:
        try:
            async for event in self._stream:
                yield event
        except InferenceServerException as exc:
            error = classify(str(exc.status() or ""), exc.message() or str(exc))
            error.details = f"{self._url}: {error.details}"
            raise error from None


class TritonBackend:
    def stream(self, endpoint: Endpoint, job: GenerationInput) -> TritonStream:
        return TritonStream(endpoint, job)

    async def aclose(self) -> None:
        return None
