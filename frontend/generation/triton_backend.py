"""GenerationBackend over Triton: the decoupled pipeline model streamed with tritonclient's gRPC aio client.

The stream itself is ``visualizr.triton.client.PipelineStream`` (``InferenceServerClient.stream_infer``); this
module adapts it to the workers' ``GenerationStream`` interface and maps Triton errors to ``BackendError``.
Cancelling the stream makes Triton mark the request cancelled; the pipeline loop checks
``request.is_cancelled()`` every step and stops within one step.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import grpc
from tritonclient.grpc.aio import InferenceServerClient
from tritonclient.utils import InferenceServerException

from frontend.generation.backend import BackendError, GenerationEvent, GenerationInput
from visualizr.pipeline import GenerationRequest
from visualizr.triton.client import PipelineStream

logger = logging.getLogger("frontend.triton")


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
    )


class TritonStream:
    """One job's stream. Iterate once; ``cancel()`` may be called from any task of the same loop."""

    def __init__(self, client: InferenceServerClient, job: GenerationInput, url: str) -> None:
        self._stream = PipelineStream(client, job.model, generation_request(job), job.request_id)
        self._url = url

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
    def __init__(self, url: str) -> None:
        self._url = url
        self._client: InferenceServerClient | None = None

    def _ensure(self) -> InferenceServerClient:
        if self._client is None:
            self._client = InferenceServerClient(url=self._url)
        return self._client

    def stream(self, request: GenerationInput) -> TritonStream:
        return TritonStream(self._ensure(), request, self._url)

    async def ready(self, model: str) -> bool:
        client = self._ensure()
        try:
            return bool(
                await client.is_server_ready(client_timeout=2.0)
                and await client.is_model_ready(model, client_timeout=2.0)
            )
        except (InferenceServerException, grpc.aio.AioRpcError, OSError) as exc:
            logger.debug("triton readiness check failed: %s", exc)
            return False

    async def aclose(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.close()
            self._client = None
