"""Business-logic scripting: every call from the pipeline model to a component model goes through infer."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils

from visualizr.families import Family


class BlsError(RuntimeError):
    """A component model answered a BLS request with an error (or without an expected output)."""

    def __init__(self, model_name: str, message: str) -> None:
        super().__init__(f"BLS call to model {model_name!r} failed: {message}")
        self.model_name = model_name


def _to_tensor(name: str, value: Any) -> pb_utils.Tensor:
    """numpy stays numpy; a torch tensor (on a GPU) goes by DLPack, without a copy."""
    if isinstance(value, np.ndarray):
        return pb_utils.Tensor(name, np.ascontiguousarray(value))
    from torch.utils.dlpack import to_dlpack

    return pb_utils.Tensor.from_dlpack(name, to_dlpack(value.contiguous()))


def _from_tensor(tensor: pb_utils.Tensor) -> Any:
    """numpy for a CPU output; a GPU output (tensorrt_plan) stays on its GPU as a torch tensor (DLPack)."""
    if tensor.is_cpu():
        return tensor.as_numpy()
    import torch

    return torch.from_dlpack(tensor.to_dlpack())


def preferred_memory(device_id: int | None) -> Any:
    """Where BLS outputs should land: the CPU, or GPU ``device_id`` (the pipeline instance's own GPU)."""
    if device_id is None:
        return pb_utils.PreferredMemory(pb_utils.TRITONSERVER_MEMORY_CPU, 0)
    return pb_utils.PreferredMemory(pb_utils.TRITONSERVER_MEMORY_GPU, device_id)


async def infer(
    model_name: str,
    inputs: Mapping[str, Any],
    output_names: Sequence[str],
    device_id: int | None = None,
    blocking: bool = False,
) -> dict[str, Any]:
    """One BLS request to ``model_name``; raises BlsError naming the model when it fails. Inputs and outputs are
    numpy arrays on the CPU, torch tensors on GPU ``device_id`` (visualizr.pipeline.tensors).

    ``blocking``: wait for the answer on the stub's event loop (``exec``) instead of awaiting it from a thread
    (``async_exec``, a thread hand-off and a loop wake-up more per call: 0.5 to 1 ms on a loaded 2-core machine); then
    let the loop run once, so requests that arrived meanwhile start."""
    request = pb_utils.InferenceRequest(
        model_name=model_name,
        inputs=[_to_tensor(name, value) for name, value in inputs.items()],
        requested_output_names=list(output_names),
        preferred_memory=preferred_memory(device_id),
    )
    if blocking:
        response = request.exec()
        await asyncio.sleep(0)
    else:
        response = await request.async_exec()
    if response.has_error():
        raise BlsError(model_name, response.error().message())
    outputs: dict[str, Any] = {}
    for name in output_names:
        tensor = pb_utils.get_output_tensor_by_name(response, name)
        if tensor is None:
            raise BlsError(model_name, f"response has no output {name!r}")
        outputs[name] = _from_tensor(tensor)
    return outputs


class RequestsInFlight:
    """How many requests a pipeline instance serves now (its ``execute`` counts them all in before any runs)."""

    def __init__(self) -> None:
        self.count = 0

    def started(self, requests: int) -> None:
        self.count += requests

    def finished(self) -> None:
        self.count -= 1

    @property
    def alone(self) -> bool:
        return self.count == 1


class BlsComponents:
    """The Components protocol over BLS calls to the component models ``<model_id>_<component>``. While
    ``in_flight`` says the pipeline instance serves one request, calls block its event loop (``infer``'s
    ``blocking``); with others in flight they are awaited, so the requests' unet calls can meet in the unet's dynamic
    batcher."""

    def __init__(
        self, model_id: str, family: Family, device_id: int | None = None, in_flight: RequestsInFlight | None = None
    ) -> None:
        self.model_names = family.component_models(model_id)
        self.batched = {network.component: network.batched for network in family.networks}
        self.device_id = device_id  # GPU outputs land on (None: the CPU)
        self.in_flight = in_flight

    async def run(self, component: str, inputs: dict[str, Any], output: str) -> Any:
        if self.batched[component]:
            # Triton needs a dim where ONNX has none beyond the batch: a batched network's [B] input (the
            # unet's timestep) is configured as dims [1] reshaped to [], so it is sent as [B, 1].
            inputs = {name: value[:, None] if value.ndim == 1 else value for name, value in inputs.items()}
        name = self.model_names[component]
        blocking = self.in_flight is not None and self.in_flight.alone
        return (await infer(name, inputs, [output], self.device_id, blocking=blocking))[output]
