"""Client side of the pipeline model over tritonclient.grpc.aio: inputs, responses, cancellation.

Each response carries ``step`` INT32[1], ``total_steps`` INT32[1], ``phase`` BYTES[1]; the last one (phase
``done``) also carries ``frames`` UINT8[F,H,W,3] (and ``keyframe`` UINT8[H,W,3] when a keyframe stage made the
first frame) and has the ``triton_final_response`` parameter set to
true (Triton adds it to every streamed response of a decoupled model; false on the others). Errors arrive as
the iterator's ``error`` item (for example ``invalid request: width must be ...``).

Inputs: the request's set fields that the model declares (one ``get_model_metadata`` call per stream), so a
GenerationRequest carries the union of every family's fields and each pipeline model gets the ones it takes.

Cancelling: call ``cancel()`` on the iterator ``InferenceServerClient.stream_infer`` returned, then stop
iterating it (a further ``__anext__`` raises ``asyncio.CancelledError``). Triton marks the request
cancelled; the pipeline notices before its next component call and stops within one denoising step.
``stream_generation`` does exactly this when its consumer leaves early (``break``, ``aclose()`` or task
cancellation).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection
from typing import Any

import grpc
import tritonclient.grpc.aio as grpcclient
from tritonclient.grpc import InferInput, InferResult
from tritonclient.utils import InferenceServerException, np_to_triton_dtype

from visualizr import names
from visualizr.pipeline.progress import ProgressEvent
from visualizr.pipeline.request import GenerationRequest
from visualizr.triton.pipeline_io import request_arrays

FINAL_RESPONSE_PARAMETER = "triton_final_response"
CLOSED_UNDER_THE_STREAM = "the connection to Triton was closed during the stream"


def infer_inputs(request: GenerationRequest, accepted: Collection[str] | None = None) -> list[InferInput]:
    """The request's set fields as InferInputs, restricted to the input names ``accepted`` when given."""
    inputs = []
    for name, array in request_arrays(request, accepted).items():
        tensor = InferInput(name, list(array.shape), np_to_triton_dtype(array.dtype))
        tensor.set_data_from_numpy(array)
        inputs.append(tensor)
    return inputs


def progress_event(result: InferResult) -> ProgressEvent:
    """One streamed response as a ProgressEvent (frames, and a keyframe, set on the last one only)."""
    phase = result.as_numpy(names.OUT_PHASE)[0]
    return ProgressEvent(
        phase=phase.decode("utf-8") if isinstance(phase, bytes) else str(phase),
        step=int(result.as_numpy(names.OUT_STEP)[0]),
        total_steps=int(result.as_numpy(names.OUT_TOTAL_STEPS)[0]),
        frames=result.as_numpy(names.OUT_FRAMES),
        keyframe=result.as_numpy(names.OUT_KEYFRAME),
        preview=result.as_numpy(names.OUT_PREVIEW),
    )


def is_final_response(result: InferResult) -> bool:
    parameter = result.get_response().parameters.get(FINAL_RESPONSE_PARAMETER)
    return parameter is not None and parameter.bool_param


async def declared_inputs(client: grpcclient.InferenceServerClient, model_id: str) -> set[str]:
    """The input names the pipeline model declares (its model metadata): a request sends the fields of its
    GenerationRequest that the model's family takes, so one request type serves every family."""
    metadata = await client.get_model_metadata(model_id)
    return {tensor.name for tensor in metadata.inputs}


class PipelineStream:
    """One generation streamed from the pipeline model. Iterate it once; ``cancel()`` may be called from any
    task of the same event loop (the API's DELETE handler while a worker iterates): the request is cancelled
    on the server and the iteration ends quietly. Errors raise InferenceServerException, a channel closed under
    the stream too (status UNAVAILABLE)."""

    def __init__(
        self,
        client: grpcclient.InferenceServerClient,
        model_id: str,
        request: GenerationRequest,
        request_id: str = "",
    ) -> None:
        self._client = client
        self._model_id = model_id
        self._request = request
        self._request_id = request_id
        self._responses: Any = None
        self._cancelled = False

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> None:
        self._cancelled = True
        if self._responses is not None:
            self._responses.cancel()

    def __aiter__(self) -> AsyncIterator[ProgressEvent]:
        return self._events()

    async def _one_request(self, accepted: Collection[str]) -> AsyncIterator[dict[str, Any]]:
        inputs = infer_inputs(self._request, accepted)
        yield {"model_name": self._model_id, "inputs": inputs, "request_id": self._request_id}

    async def _events(self) -> AsyncIterator[ProgressEvent]:
        if self._cancelled:
            return
        accepted = await declared_inputs(self._client, self._model_id)
        if self._cancelled:
            return
        self._responses = self._client.stream_infer(self._one_request(accepted))
        finished = False
        try:
            async for result, error in self._responses:
                if error is not None:
                    finished = True
                    if self._cancelled:
                        return
                    raise error
                event = progress_event(result)
                finished = is_final_response(result) or event.is_final
                yield event
                if finished:
                    return
            if not finished and not self._cancelled:
                raise InferenceServerException(msg=f"stream of {self._model_id!r} ended without a final response")
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the task running this loop is being cancelled
            if self._cancelled:
                return  # our own cancel() surfaces as a CancelledError from the gRPC call: a clean end
            # Nobody cancelled: the channel was closed under the call (its endpoint went down and was reset).
            raise InferenceServerException(msg=CLOSED_UNDER_THE_STREAM, status="UNAVAILABLE") from None
        except grpc.aio.AioRpcError as exc:
            if self._cancelled:
                return
            raise InferenceServerException(msg=exc.details() or str(exc), status=exc.code().name) from None
        finally:
            if not finished:
                self._responses.cancel()


def stream_generation(
    client: grpcclient.InferenceServerClient, model_id: str, request: GenerationRequest, request_id: str = ""
) -> AsyncIterator[ProgressEvent]:
    """Stream one generation; leaving the loop early (break, aclose(), task cancellation) cancels the request
    on the server. Raises InferenceServerException on an error response."""
    return aiter(PipelineStream(client, model_id, request, request_id))


__all__ = [
    "PipelineStream",
    "declared_inputs",
    "infer_inputs",
    "is_final_response",
    "progress_event",
    "stream_generation",
]
