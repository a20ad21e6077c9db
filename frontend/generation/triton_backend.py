"""GenerationBackend over Triton: the decoupled pipeline model streamed with tritonclient's gRPC aio client.

The stream itself is ``visualizr.triton.client.PipelineStream`` (``InferenceServerClient.stream_infer``); this
module adapts it to the workers' ``GenerationStream`` interface and maps Triton errors to ``BackendError``.
Cancelling the stream makes Triton mark the request cancelled; the pipeline loop checks
``request.is_cancelled()`` every step and stops within one step.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from tritonclient.utils import InferenceServerException

from visualizr.frontend.generation.backend import BackendError, GenerationEvent, GenerationInput
from visualizr.frontend.triton_connection import TritonConnection
from visualizr.pipeline import GenerationRequest
from visualizr.triton.client import PipelineStream


def generation_request(job: GenerationInput) -> GenerationRequest:
    return GenerationRequest(
        prompt=job.prompt,
        negative_prompt=job.negative_prompt,
        width=job.width,
        height=job.height,
        num_frames=job.num_frames,
        num_inference_steps=job.num_inference_steps,
        guidance_scale=job.guidance_scale,
        seed=job.seed,
        image=job.image,
        strength=job.strength,
    )


class TritonStream:
    """One job's stream. Iterate once; ``cancel()`` may be called from any task of the same loop."""

    def __init__(self, connection: TritonConnection, job: GenerationInput) -> None:
        self._stream = PipelineStream(connection.client, job.model, generation_request(job), job.request_id)
        self._url = connection.url

    def cancel(self) -> None:
        self._stream.cancel()

    def __aiter__(self) -> AsyncIterator[GenerationEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[GenerationEvent]:
        try:
            async for event in self._stream:
                yield event
        except InferenceServerException as exc:
            raise BackendError("Video generation failed", f"{self._url}: {exc.message()}") from None


class TritonBackend:
    def __init__(self, connection: TritonConnection) -> None:
        self._connection = connection

    def stream(self, request: GenerationInput) -> TritonStream:
        return TritonStream(self._connection, request)

    async def ready(self, model: str) -> bool:
        return await self._connection.server_ready() and await self._connection.model_ready(model)

    async def aclose(self) -> None:
        await self._connection.aclose()
