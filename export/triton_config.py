"""Renders every ``config.pbtxt`` of the model repository from one place: the spec classes' tensors for the
component networks, and the pipeline I/O table of ``visualizr.names`` (the family's inputs) for pipeline models."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from visualizr import names
from visualizr.export.specs import BATCH, NetworkSpec
from visualizr.families import Family
from visualizr.triton.model_config import triton_dtype

BACKEND_ONNXRUNTIME: Final = "onnxruntime"  # Python backend running onnxruntime on CPU
BACKEND_TENSORRT: Final = "tensorrt"  # tensorrt_plan on the GPU
BACKENDS: Final = (BACKEND_ONNXRUNTIME, BACKEND_TENSORRT)

# How long the batched network's dynamic batcher holds a request for others to join it, per backend. On the CPU
# none: a lone job's every step waited the whole delay (Triton statistics: 2.1 ms queue per unet call, 42 ms of a
# 0.51 s demo job). Two concurrent demo jobs then take turns on the unet instead of sharing batches (2.0 samples per
# call against 2.5) and finished no later (0.66-0.76 s the pair, against 0.71-0.79 s): CPU time grows with the batch.
UNET_BATCH_DELAY_MICROSECONDS: Final = {BACKEND_ONNXRUNTIME: 0, BACKEND_TENSORRT: 2000}
DEFAULT_INTRA_OP_THREADS: Final = 2

@dataclass(frozen=True)
class TritonTensor:
    name: str
    dtype: str  # a numpy dtype name, or "bytes"
    dims: tuple[int, ...]
    optional: bool = False
    # Shape the model sees when it differs from ``dims``: a batched [B] tensor is dims [1] reshaped to [].
    reshape: tuple[int, ...] | None = None

    def render(self) -> str:
        fields = [
            f'name: "{self.name}"',
            f"data_type: {triton_dtype(self.dtype)}",
            f"dims: {_dims(self.dims)}",
        ]
        if self.reshape is not None:
            fields.append(f"reshape: {{ shape: {_dims(self.reshape)} }}")
        if self.optional:
            fields.append("optional: true")
        return "  {\n" + "".join(f"    {f}\n" for f in fields) + "  }"


@dataclass(frozen=True)
class TritonModelConfig:
    name: str
    inputs: tuple[TritonTensor, ...]
    outputs: tuple[TritonTensor, ...]
    backend: str | None = None
    platform: str | None = None
    max_batch_size: int = 0
    instance_kind: str = "KIND_CPU"
    instance_count: int = 1
    dynamic_batching_delay_us: int | None = None
    decoupled: bool = False
    parameters: dict[str, str] = field(default_factory=dict)

    def render(self) -> str:
        lines = [f'name: "{self.name}"']
        lines += [f'backend: "{self.backend}"'] if self.backend else []
        lines += [f'platform: "{self.platform}"'] if self.platform else []
        lines.append(f"max_batch_size: {self.max_batch_size}")
        if self.decoupled:
            lines.append("model_transaction_policy {\n  decoupled: true\n}")
        lines.append(_render_list("input", (t.render() for t in self.inputs)))
        lines.append(_render_list("output", (t.render() for t in self.outputs)))
        if self.dynamic_batching_delay_us is not None:
            lines.append(f"dynamic_batching {{\n  max_queue_delay_microseconds: {self.dynamic_batching_delay_us}\n}}")
        instance = f"kind: {self.instance_kind}\n    count: {self.instance_count}"
        lines.append(f"instance_group [\n  {{\n    {instance}\n  }}\n]")
        lines += [
            f'parameters {{\n  key: "{key}"\n  value {{\n    string_value: "{value}"\n  }}\n}}'
            for key, value in sorted(self.parameters.items())
        ]
        return "\n".join(lines) + "\n"


def _dims(dims: tuple[int, ...]) -> str:
    return f"[ {', '.join(str(d) for d in dims)} ]" if dims else "[ ]"


def _render_list(key: str, items: Iterable[str]) -> str:
    return f"{key} [\n" + ",\n".join(items) + "\n]"


def _triton_tensors(spec: NetworkSpec, tensors: Iterable, batched: bool) -> tuple[TritonTensor, ...]:
    result = []
    for tensor in tensors:
        axes = tensor.axes[1:] if batched else tensor.axes
        if batched and tensor.axes[0] != BATCH:
            raise ValueError(f"{spec.component}.{tensor.name}: the first axis must be the batch to batch it")
        dims = tuple(-1 if isinstance(a, str) else a for a in axes)
        if not dims and not batched:
            raise ValueError(f"{spec.component}.{tensor.name}: Triton has no scalar inputs without batching: use [1]")
        # Triton needs a dim: a batched [B] tensor (the UNet timestep) is sent as [B, 1] and reshaped to [B].
        result.append(TritonTensor(tensor.name, tensor.dtype, dims or (1,), reshape=None if dims else ()))
    return tuple(result)


def component_model_config(
    model_name: str,
    spec: NetworkSpec,
    backend: str,
    batched: bool,
    max_batch_size: int,
    intra_op_threads: int = DEFAULT_INTRA_OP_THREADS,
    instances_per_gpu: int = 1,
) -> TritonModelConfig:
    """Config of one component network; a ``batched`` one (the family says which) gets ``max_batch_size``
    and the dynamic batcher. With TensorRT, ``instances_per_gpu`` instances on every GPU Triton sees (a KIND_GPU
    group without a ``gpus`` list)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    common = {
        "name": model_name,
        "inputs": _triton_tensors(spec, spec.inputs, batched),
        "outputs": _triton_tensors(spec, spec.outputs, batched),
        "max_batch_size": max_batch_size if batched else 0,
        "dynamic_batching_delay_us": UNET_BATCH_DELAY_MICROSECONDS[backend] if batched else None,
    }
    if backend == BACKEND_TENSORRT:
        return TritonModelConfig(
            platform="tensorrt_plan", instance_kind="KIND_GPU", instance_count=instances_per_gpu, **common
        )
    threads = {names.INTRA_OP_THREADS_PARAMETER: str(intra_op_threads)}
    return TritonModelConfig(backend="python", parameters=threads, **common)


def pipeline_model_config(model_name: str, family: Family, backend: str = BACKEND_ONNXRUNTIME) -> TritonModelConfig:
    """Config of a pipeline model: decoupled Python backend driving the components through BLS; its inputs are
    the family's, its outputs every pipeline's (both from the one table in visualizr.names). With TensorRT it
    is a KIND_GPU instance per GPU, so its loop keeps the tensors on that GPU (DLPack)."""
    optional = set(family.optional_inputs)
    inputs = tuple(
        TritonTensor(t.name, t.dtype, t.dims, optional=t.name in optional)
        for t in names.PIPELINE_INPUTS.values()
        if t.name in family.inputs
    )
    outputs = tuple(TritonTensor(t.name, t.dtype, t.dims) for t in names.PIPELINE_OUTPUTS.values())
    kind = "KIND_GPU" if backend == BACKEND_TENSORRT else "KIND_CPU"
    return TritonModelConfig(
        name=model_name, backend="python", decoupled=True, inputs=inputs, outputs=outputs, instance_kind=kind
    )
