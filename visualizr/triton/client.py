"""Client side of the pipeline model over tritonclient.grpc.aio: inputs, responses, cancellation.

Each response carries ``step`` INT32[1], ``total_steps`` INT32[1], ``phase`` BYTES[1]; the last one (phase
``done``) also carries ``frames`` UINT8[F,H,W,3] and has the ``triton_final_response`` parameter set to
true (Triton adds it to every streamed response of a decoupled model; false on the others). Errors arrive as
the iterator's ``error`` item (for example ``invalid request: width must be ...``).

Cancelling: call ``cancel()`` on the iterator ``InferenceServerClient.stream_infer`` returned, then stop
iterating it (a further ``__anext__`` raises ``asyncio.CancelledError``). Triton marks the request
cancelled; the pipeline notices before its next component call and stops within one denoising step.
``stream_generation`` does exactly this when its consumer leaves early (``break``, ``aclose()`` or task
cancellation).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import tritonclient.grpc.aio as grpcclient
from tritonclient.grpc import InferInput, InferResult
from tritonclient.utils import InferenceServerException, np_to_triton_dtype

from visualizr import names
from visualizr.pipeline.progress import ProgressEvent
from visualizr.pipeline.request import GenerationRequest
from visualizr.triton.pipeline_io import request_arrays

FINAL_RESPONSE_PARAMETER = "triton_final_response"


def infer_inputs(request: GenerationRequest) -> list[InferInput]:
    inputs = []
    for name, array in request_arrays(request).items():
        tensor = InferInput(name, list(array.shape), np_to_triton_dtype(array.dtype))
        tensor.set_data_from_numpy(array)
        inputs.append(tensor)
    return inputs


def progress_event(result: InferResult) -> ProgressEvent:
    """One streamed response as a ProgressEvent (frames set on the last one only)."""
    phase = result.as_numpy(names.OUT_PHASE)[0]
    return ProgressEvent(
        phase=phase.decode("utf-8") if isinstance(phase, bytes) else str(phase),
        step=int(result.as_numpy(names.OUT_STEP)[0]),
        total_steps=int(result.as_numpy(names.OUT_TOTAL_STEPS)[0]),
        frames=result.as_numpy(names.OUT_FRAMES),
    )


def is_final_response(result: InferResult) -> bool:
    parameter = result.get_response().parameters.get(FINAL_RESPONSE_PARAMETER)
    return parameter is not None and parameter.bool_param


async def stream_generation(
    client: grpcclient.InferenceServerClient, model_id: str, request: GenerationRequest, request_id: str = ""
) -> AsyncIterator[ProgressEvent]:
    """Stream one generation; raises InferenceServerException on an error response. Leaving the loop early
    cancels the request on the server."""

    async def one_request() -> AsyncIterator[dict]:
        yield {"model_name": model_id, "inputs": infer_inputs(request), "request_id": request_id}

    responses = client.stream_infer(one_request())
    finished = False
    try:
        async for result, error in responses:
            if error is not None:
                finished = True
                raise error
            event = progress_event(result)
            finished = is_final_response(result) or event.is_final
            yield event
            if finished:
                return
        if not finished:
            raise InferenceServerException(msg=f"stream of {model_id!r} ended without a final response")
    finally:
        if not finished:
            responses.cancel()


__all__ = ["infer_inputs", "is_final_response", "progress_event", "stream_generation"]
