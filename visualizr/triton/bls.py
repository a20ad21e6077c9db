"""Business-logic scripting: every call from the pipeline model to a component model goes through infer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import triton_python_backend_utils as pb_utils

from visualizr.names import COMPONENTS, UNET_TIMESTEP, component_model_name
from visualizr.pipeline.components import NetworkComponents


class BlsError(RuntimeError):
    """A component model answered a BLS request with an error (or without an expected output)."""

    def __init__(self, model_name: str, message: str) -> None:
        super().__init__(f"BLS call to model {model_name!r} failed: {message}")
        self.model_name = model_name


def _to_numpy(tensor: pb_utils.Tensor) -> np.ndarray:
    if tensor.is_cpu():
        return tensor.as_numpy()
    import torch  # GPU outputs (tensorrt_plan on GPU) come back through DLPack

    return torch.from_dlpack(tensor.to_dlpack()).cpu().numpy()


async def infer(
    model_name: str, inputs: Mapping[str, np.ndarray], output_names: Sequence[str]
) -> dict[str, np.ndarray]:
    """One BLS request to ``model_name``; raises BlsError naming the model when it fails."""
    request = pb_utils.InferenceRequest(
        model_name=model_name,
        inputs=[pb_utils.Tensor(name, np.ascontiguousarray(array)) for name, array in inputs.items()],
        requested_output_names=list(output_names),
        preferred_memory=pb_utils.PreferredMemory(pb_utils.TRITONSERVER_MEMORY_CPU, 0),
    )
    response = await request.async_exec()
    if response.has_error():
        raise BlsError(model_name, response.error().message())
    outputs: dict[str, np.ndarray] = {}
    for name in output_names:
        tensor = pb_utils.get_output_tensor_by_name(response, name)
        if tensor is None:
            raise BlsError(model_name, f"response has no output {name!r}")
        outputs[name] = _to_numpy(tensor)
    return outputs


class BlsComponents(NetworkComponents):
    """The pipeline's Components protocol over BLS calls to ``<family>_<component>`` models."""

    def __init__(self, family: str) -> None:
        self.model_names = {component: component_model_name(family, component) for component in COMPONENTS}

    async def run(self, component: str, inputs: dict[str, np.ndarray], output: str) -> np.ndarray:
        if component == "unet":
            # The unet is batched in Triton: its [B] timestep is configured as dims [1] reshaped to [].
            inputs = {**inputs, UNET_TIMESTEP: np.reshape(inputs[UNET_TIMESTEP], (-1, 1))}
        return (await infer(self.model_names[component], inputs, [output]))[output]
