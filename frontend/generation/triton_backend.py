"""GenerationBackend over Triton's gRPC bi-directional stream (decoupled pipeline model).

Why not ``tritonclient.grpc.aio.InferenceServerClient.stream_infer`` for the stream itself: its request dicts
cannot ask for ``triton_enable_empty_final_response`` (every ``triton_*`` parameter is rejected as reserved),
and without it a decoupled stream has no end-of-request marker. So the request is built with the public
protobuf types (``tritonclient.grpc.service_pb2``) and sent on ``GRPCInferenceServiceStub.ModelStreamInfer`` —
the same RPC ``stream_infer`` uses; its ``_ResponseIterator.cancel()`` is just ``grpc_call.cancel()``, which
is what ``TritonStream.cancel()`` does here. The aio ``InferenceServerClient`` is used for readiness checks.

Cancelling the call makes Triton mark the request cancelled; the pipeline loop checks
``request.is_cancelled()`` every step and stops within one step.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import grpc
import numpy as np
from tritonclient.grpc import InferResult, service_pb2, service_pb2_grpc
from tritonclient.grpc.aio import InferenceServerClient
from tritonclient.utils import InferenceServerException, serialize_byte_tensor

from frontend.generation.backend import BackendError, GenerationEvent, GenerationInput
from visualizr import names

logger = logging.getLogger("frontend.triton")

MAX_GRPC_MESSAGE_SIZE = 2**31 - 1
FINAL_RESPONSE_PARAM = "triton_final_response"
ENABLE_EMPTY_FINAL_PARAM = "triton_enable_empty_final_response"


def _tensor(request: service_pb2.ModelInferRequest, name: str, datatype: str, raw: bytes) -> None:
    request.inputs.append(
        service_pb2.ModelInferRequest.InferInputTensor(name=name, datatype=datatype, shape=[1])
    )
    request.raw_input_contents.append(raw)


def build_request(job: GenerationInput) -> service_pb2.ModelInferRequest:
    """The pipeline model's request (visualizr.names inputs, each of shape [1]), asking for an empty final
    response."""
    request = service_pb2.ModelInferRequest(model_name=job.model, id=job.request_id)

    def text(value: str) -> bytes:
        return serialize_byte_tensor(np.array([value.encode("utf-8")], dtype=np.object_)).item()

    _tensor(request, names.IN_PROMPT, "BYTES", text(job.prompt))
    _tensor(request, names.IN_NEGATIVE_PROMPT, "BYTES", text(job.negative_prompt))
    for name, value in (
        (names.IN_WIDTH, job.width),
        (names.IN_HEIGHT, job.height),
        (names.IN_NUM_FRAMES, job.num_frames),
        (names.IN_NUM_INFERENCE_STEPS, job.num_inference_steps),
    ):
        _tensor(request, name, "INT32", np.array([value], dtype=np.int32).tobytes())
    _tensor(
        request, names.IN_GUIDANCE_SCALE, "FP32", np.array([job.guidance_scale], dtype=np.float32).tobytes()
    )
    _tensor(request, names.IN_SEED, "INT64", np.array([job.seed], dtype=np.int64).tobytes())
    request.parameters[ENABLE_EMPTY_FINAL_PARAM].bool_param = True
    return request


def parse_response(infer_response: service_pb2.ModelInferResponse) -> tuple[GenerationEvent | None, bool]:
    """(event or None for an empty response, is_final)."""
    params = infer_response.parameters
    final = FINAL_RESPONSE_PARAM in params and params[FINAL_RESPONSE_PARAM].bool_param
    if not infer_response.outputs:
        return None, final
    result = InferResult(infer_response)
    step = result.as_numpy(names.OUT_STEP)
    total = result.as_numpy(names.OUT_TOTAL_STEPS)
    phase = result.as_numpy(names.OUT_PHASE)
    if step is None or total is None or phase is None:
        raise BackendError("Malformed pipeline response", "a response lacks step, total_steps or phase")
    raw_phase = phase.reshape(-1)[0]
    phase_name = raw_phase.decode("utf-8") if isinstance(raw_phase, bytes) else str(raw_phase)
    frames = result.as_numpy(names.OUT_FRAMES)
    event = GenerationEvent(
        phase=phase_name,
        step=int(step.reshape(-1)[0]),
        total_steps=int(total.reshape(-1)[0]),
        frames=None if frames is None else np.ascontiguousarray(frames, dtype=np.uint8),
    )
    return event, final


class TritonStream:
    """One job's stream. Iterate once; ``cancel()`` may be called from any task of the same loop."""

    def __init__(
        self, stub: service_pb2_grpc.GRPCInferenceServiceStub, job: GenerationInput, url: str
    ) -> None:
        self._stub = stub
        self._job = job
        self._url = url
        self._call: grpc.aio.StreamStreamCall | None = None
        self._cancelled = False
        self._closed = asyncio.Event()

    def cancel(self) -> None:
        self._cancelled = True
        self._closed.set()
        if self._call is not None:
            self._call.cancel()

    async def _requests(self) -> AsyncIterator[service_pb2.ModelInferRequest]:
        yield build_request(self._job)
        # Keep the stream half-open until we are done reading, so Triton never sees an early WritesDone.
        await self._closed.wait()

    def __aiter__(self) -> AsyncIterator[GenerationEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[GenerationEvent]:
        if self._cancelled:
            return
        self._call = self._stub.ModelStreamInfer(self._requests())
        saw_frames = False
        try:
            while True:
                try:
                    message = await self._call.read()
                except asyncio.CancelledError:
                    task = asyncio.current_task()
                    if self._cancelled and not (task is not None and task.cancelling()):
                        return  # our own cancel(): a clean end
                    raise
                except grpc.aio.AioRpcError as exc:
                    if self._cancelled:
                        return
                    raise BackendError(
                        f"Triton stream failed ({exc.code().name})", f"{self._url}: {exc.details()}"
                    ) from None
                if message is grpc.aio.EOF:
                    if not saw_frames and not self._cancelled:
                        raise BackendError(
                            "Triton closed the stream early", "the stream ended before any frames"
                        )
                    return
                if message.error_message:
                    raise BackendError("Video generation failed", message.error_message)
                event, final = parse_response(message.infer_response)
                if event is not None:
                    saw_frames = saw_frames or event.frames is not None
                    yield event
                if final:
                    return
        finally:
            self._closed.set()
            call = self._call
            if call is not None and not call.done():
                call.cancel()


class TritonBackend:
    def __init__(self, url: str) -> None:
        self._url = url
        self._channel: grpc.aio.Channel | None = None
        self._stub: service_pb2_grpc.GRPCInferenceServiceStub | None = None
        self._client: InferenceServerClient | None = None

    def _ensure(self) -> service_pb2_grpc.GRPCInferenceServiceStub:
        if self._stub is None:
            self._channel = grpc.aio.insecure_channel(
                self._url,
                options=[
                    ("grpc.max_send_message_length", MAX_GRPC_MESSAGE_SIZE),
                    ("grpc.max_receive_message_length", MAX_GRPC_MESSAGE_SIZE),
                ],
            )
            self._stub = service_pb2_grpc.GRPCInferenceServiceStub(self._channel)
        return self._stub

    def stream(self, request: GenerationInput) -> TritonStream:
        return TritonStream(self._ensure(), request, self._url)

    async def ready(self, model: str) -> bool:
        if self._client is None:
            self._client = InferenceServerClient(url=self._url)
        try:
            return bool(
                await self._client.is_server_ready(client_timeout=2.0)
                and await self._client.is_model_ready(model, client_timeout=2.0)
            )
        except (InferenceServerException, grpc.aio.AioRpcError, OSError) as exc:
            logger.debug("triton readiness check failed: %s", exc)
            return False

    async def aclose(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.close()
            self._client = None
        if self._channel is not None:
            with contextlib.suppress(Exception):
                await self._channel.close()
            self._channel = None
            self._stub = None
