"""Renders every ``config.pbtxt`` of the model repository from one place: the spec classes' tensors for the
component networks, and the pipeline I/O contract of ``visualizr.names`` for the pipeline model."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from visualizr import names
from visualizr.export.specs import BATCH, NetworkSpec

BACKEND_ONNXRUNTIME: Final = "onnxruntime"  # Python backend running onnxruntime on CPU
BACKEND_TENSORRT: Final = "tensorrt"  # tensorrt_plan on the GPU
BACKENDS: Final = (BACKEND_ONNXRUNTIME, BACKEND_TENSORRT)

UNET_BATCH_DELAY_MICROSECONDS: Final = 2000
INTRA_OP_THREADS_PARAMETER: Final = "intra_op_num_threads"
DEFAULT_INTRA_OP_THREADS: Final = 2

_TRITON_DTYPES: Final = {
    "float32": "TYPE_FP32",
    "int64": "TYPE_INT64",
    "int32": "TYPE_INT32",
    "uint8": "TYPE_UINT8",
    "bytes": "TYPE_STRING",
}


@dataclass(frozen=True)
class TritonTensor:
    name: str
    dtype: str  # a key of _TRITON_DTYPES
    dims: tuple[int, ...]
    optional: bool = False
    # Shape the model sees when it differs from ``dims``: a batched [B] tensor is dims [1] reshaped to [].
    reshape: tuple[int, ...] | None = None

    def render(self) -> str:
        fields = [
            f'name: "{self.name}"',
            f"data_type: {_TRITON_DTYPES[self.dtype]}",
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
        # Triton needs a dim: a batched [B] tensor (the UNet timestep) is sent as [B, 1] and reshaped to [B].
        result.append(TritonTensor(tensor.name, tensor.dtype, dims or (1,), reshape=None if dims else ()))
    return tuple(result)


def component_config(
    model_name: str,
    spec: NetworkSpec,
    backend: str,
    unet_max_batch: int,
    intra_op_threads: int = DEFAULT_INTRA_OP_THREADS,
    instances_per_gpu: int = 1,
) -> TritonModelConfig:
    """Config of one component network (text encoder, UNet or VAE decoder); with TensorRT, ``instances_per_gpu``
    instances on every GPU Triton sees (a KIND_GPU group without a ``gpus`` list)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    batched = spec.triton_batching
    common = {
        "name": model_name,
        "inputs": _triton_tensors(spec, spec.inputs, batched),
        "outputs": _triton_tensors(spec, spec.outputs, batched),
        "max_batch_size": unet_max_batch if batched else 0,
        "dynamic_batching_delay_us": UNET_BATCH_DELAY_MICROSECONDS if batched else None,
    }
    if backend == BACKEND_TENSORRT:
        return TritonModelConfig(
            platform="tensorrt_plan", instance_kind="KIND_GPU", instance_count=instances_per_gpu, **common
        )
    return TritonModelConfig(backend="python", parameters={INTRA_OP_THREADS_PARAMETER: str(intra_op_threads)}, **common)


PIPELINE_INPUTS: Final = (
    TritonTensor(names.IN_PROMPT, "bytes", (1,)),
    TritonTensor(names.IN_NEGATIVE_PROMPT, "bytes", (1,), optional=True),
    TritonTensor(names.IN_WIDTH, "int32", (1,)),
    TritonTensor(names.IN_HEIGHT, "int32", (1,)),
    TritonTensor(names.IN_NUM_FRAMES, "int32", (1,)),
    TritonTensor(names.IN_NUM_INFERENCE_STEPS, "int32", (1,)),
    TritonTensor(names.IN_GUIDANCE_SCALE, "float32", (1,)),
    TritonTensor(names.IN_SEED, "int64", (1,), optional=True),
    # Image-to-video: the source image, already resized to [height, width, 3], and the strength (0, 1].
    TritonTensor(names.IN_IMAGE, "uint8", (-1, -1, 3), optional=True),
    TritonTensor(names.IN_STRENGTH, "float32", (1,), optional=True),
)
PIPELINE_OUTPUTS: Final = (
    TritonTensor(names.OUT_STEP, "int32", (1,)),
    TritonTensor(names.OUT_TOTAL_STEPS, "int32", (1,)),
    TritonTensor(names.OUT_PHASE, "bytes", (1,)),
    TritonTensor(names.OUT_FRAMES, "uint8", (-1, -1, -1, 3)),
)


def pipeline_config(model_name: str, backend: str = BACKEND_ONNXRUNTIME) -> TritonModelConfig:
    """Config of the pipeline model: decoupled Python backend driving the components through BLS. With
    TensorRT it is a KIND_GPU instance per GPU, so its loop keeps the tensors on that GPU (DLPack)."""
    kind = "KIND_GPU" if backend == BACKEND_TENSORRT else "KIND_CPU"
    return TritonModelConfig(
        name=model_name,
        backend="python",
        decoupled=True,
        inputs=PIPELINE_INPUTS,
        outputs=PIPELINE_OUTPUTS,
        instance_kind=kind,
    )
