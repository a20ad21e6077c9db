"""The decoupled pipeline model of every family (``model_repository/<model_id>/1/model.py``): a thin adapter
that runs the family's loop (``visualizr.pipeline.diffusion.DiffusionPipeline``, chosen by the family named in
the model's pipeline.json) over BLS components and streams its progress.

Responses per request: one after the conditioning (text or image encoding), one after every denoising step,
one after decoding, then the last one (phase ``done``) with ``frames``, sent with
TRITONSERVER_RESPONSE_COMPLETE_FINAL. A failed request gets one error response with the final flag instead.
``execute`` is async: requests run concurrently in one instance, so their unet calls can meet in the unet's
dynamic batcher; while it serves one request, its component calls block the loop instead (``BlsComponents``'s
``in_flight``): a request arriving meanwhile starts when the call in flight returns.

Cancellation: when the client cancels the gRPC stream (tritonclient.grpc.aio: ``responses.cancel()`` on the
iterator ``stream_infer`` returned), ``request.is_cancelled()`` turns True; the loop checks it before every
component call and stops within one denoising step, answering an error ``cancelled`` with the final flag.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import torch
import triton_python_backend_utils as pb_utils

from visualizr.engines.check import check_engines_here
from visualizr.model_card import MODEL_CARD_FILENAME, read_model_card
from visualizr.pipeline.assets import load_pipeline
from visualizr.pipeline.errors import Cancelled, InvalidRequest
from visualizr.pipeline.progress import ProgressEvent
from visualizr.pipeline.tensors import CPU_LOOP_THREADS, TensorPlacement, instance_gpu
from visualizr.pipeline_config import assets_dir
from visualizr.triton.bls import BlsComponents, RequestsInFlight
from visualizr.triton.metrics import PipelineMetrics
from visualizr.triton.model_config import ModelConfig, ModelConfigError
from visualizr.triton.pipeline_io import parse_generation_request, progress_arrays

FINAL = pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL


def log() -> Any:
    """The stub's logger; the stub adds it to pb_utils after model.py is imported, so look it up late."""
    return pb_utils.Logger


def _input(request: Any, name: str) -> Any:
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    return None if tensor is None else tensor.as_numpy()


def _progress_response(event: ProgressEvent) -> Any:
    tensors = [pb_utils.Tensor(name, array) for name, array in progress_arrays(event).items()]
    return pb_utils.InferenceResponse(output_tensors=tensors)


def _error_response(message: str, code: Any = None) -> Any:
    error = pb_utils.TritonError(message) if code is None else pb_utils.TritonError(message, code)
    return pb_utils.InferenceResponse(error=error)


class TritonPythonModel:
    def initialize(self, args: dict[str, Any]) -> None:
        config = ModelConfig.parse(args["model_config"])
        if not config.decoupled:
            raise ModelConfigError(
                f"{config.name}: the pipeline model must be decoupled (model_transaction_policy)"
            )
        model_dir = Path(args["model_repository"])
        # A stale TensorRT engine fails this load with a reason naming what differs (visualizr.engines.check).
        check_engines_here(model_dir.parent, read_model_card(model_dir / MODEL_CARD_FILENAME))
        device_id = instance_gpu(args.get("model_instance_kind"), args.get("model_instance_device_id"))
        placement = TensorPlacement("cpu" if device_id is None else f"cuda:{device_id}")
        if device_id is None:
            torch.set_num_threads(CPU_LOOP_THREADS)
        self.pipeline = load_pipeline(assets_dir(model_dir, args["model_version"]), placement)
        model_id = self.pipeline.config.model_id
        self.in_flight = RequestsInFlight()
        self.components = BlsComponents(model_id, self.pipeline.family, device_id, self.in_flight)
        self.name = config.name
        self.metrics = PipelineMetrics(pb_utils, config.name, self.pipeline.config.family)

    async def execute(self, requests: list[Any]) -> None:
        self.in_flight.started(len(requests))  # before any runs: none of them blocks the loop while others wait
        await asyncio.gather(*(self._serve_counted(request) for request in requests))
        return None

    async def _serve_counted(self, request: Any) -> None:
        try:
            await self._serve(request)
        finally:
            self.in_flight.finished()

    async def _serve(self, request: Any) -> None:
        sender = request.get_response_sender()
        request_id = request.request_id() or "-"
        timer = self.metrics.track()
        try:
            family = self.pipeline.family
            generation = parse_generation_request(
                lambda name: _input(request, name), family.required_inputs, family.optional_inputs
            )
            log().log_info(f"{self.name} request {request_id}: {generation}")
            async for event in self.pipeline.generate(generation, self.components, request.is_cancelled):
                timer.on_event(event)
                log().log_verbose(
                    f"{self.name} request {request_id}: {event.phase} {event.step}/{event.total_steps}"
                )
                sender.send(_progress_response(event), flags=FINAL if event.is_final else 0)
            timer.finish("success")
            log().log_info(f"{self.name} request {request_id}: done")
        except Cancelled as exc:
            timer.finish("cancelled")
            log().log_info(f"{self.name} request {request_id}: {exc}")
            _send_final_error(sender, "cancelled", pb_utils.TritonError.CANCELLED)
        except InvalidRequest as exc:
            timer.finish("invalid")
            _send_final_error(sender, f"invalid request: {exc}", pb_utils.TritonError.INVALID_ARG)
        except Exception as exc:  # never let one request take down the stub
            timer.finish("failed")
            log().log_error(f"{self.name} request {request_id} failed: {type(exc).__name__}: {exc}")
            _send_final_error(sender, f"{type(exc).__name__}: {exc}")

    def finalize(self) -> None:
        self.pipeline = None


def _send_final_error(sender: Any, message: str, code: Any = None) -> None:
    try:
        sender.send(_error_response(message, code), flags=FINAL)
    except Exception as exc:  # the client may be gone (cancelled stream): nothing left to tell it
        log().log_warn(f"could not send the final response ({message}): {exc}")
