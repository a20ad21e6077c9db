"""The pipeline models' tensors, read from the one table ``visualizr.names.PIPELINE_INPUTS`` / ``PIPELINE_OUTPUTS``:
request inputs -> GenerationRequest, GenerationRequest -> input arrays, ProgressEvent -> response outputs.

Every pipeline input is the GenerationRequest field of the same name. Pure numpy, so the API side (and tests)
can build and read the same tensors.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import fields

import numpy as np

from visualizr import names
from visualizr.families import Family
from visualizr.names import PipelineTensor
from visualizr.pipeline.errors import InvalidRequest
from visualizr.pipeline.progress import ProgressEvent
from visualizr.pipeline.request import MAX_SEED, GenerationRequest
from visualizr.triton.model_config import triton_dtype

GetInput = Callable[[str], "np.ndarray | None"]

_NUMPY_DTYPES = {"bytes": np.object_}
_KINDS = {"bytes": "BYTES", "int32": "an integer", "int64": "an integer", "float32": "a number"}


def numpy_dtype(tensor: PipelineTensor) -> np.dtype:
    return np.dtype(_NUMPY_DTYPES.get(tensor.dtype, tensor.dtype))


def _scalar(tensor: PipelineTensor, array: np.ndarray) -> object:
    if array.size != 1:
        raise InvalidRequest(f"input {tensor.name!r} must hold exactly one element, got shape {list(array.shape)}")
    value = array.reshape(-1)[0]
    if tensor.dtype == "bytes":
        if isinstance(value, bytes):
            try:
                return value.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidRequest(f"input {tensor.name!r} is not valid UTF-8") from exc
        if isinstance(value, str):
            return value
    elif isinstance(value, bool | np.bool_):
        pass
    elif tensor.dtype.startswith("int") and isinstance(value, np.integer | int):
        return int(value)
    elif tensor.dtype.startswith("float") and isinstance(value, np.floating | np.integer | float | int):
        return float(value)
    raise InvalidRequest(f"input {tensor.name!r} must be {_KINDS[tensor.dtype]}")


def _image(tensor: PipelineTensor, array: np.ndarray) -> np.ndarray:
    """An image: UINT8 [H, W, 3] (its size is checked against width/height by the loop)."""
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise InvalidRequest(f"input {tensor.name!r} must be UINT8 [H, W, 3], got {array.dtype} {list(array.shape)}")
    return np.ascontiguousarray(array)


def parse_generation_request(get: GetInput, required: Iterable[str], optional: Iterable[str] = ()) -> GenerationRequest:
    """Read the inputs a family takes (``Family.required_inputs`` / ``optional_inputs``); ``get(name)`` returns
    None for an absent input. An absent optional input keeps the GenerationRequest default; an absent seed is
    a fresh random one (it is in the logged request)."""
    values: dict[str, object] = {}
    for name, is_required in [(n, True) for n in required] + [(n, False) for n in optional]:
        tensor = names.PIPELINE_INPUTS[name]
        array = get(name)
        if array is None:
            if is_required:
                raise InvalidRequest(f"missing input {name!r}")
            continue
        array = np.asarray(array)
        values[name] = _image(tensor, array) if tensor.dtype == "uint8" else _scalar(tensor, array)
    if values.get(names.IN_SEED) is None:
        values[names.IN_SEED] = secrets.randbelow(MAX_SEED + 1)
    values.setdefault(names.IN_PROMPT, "")  # a family without a prompt (image-only) runs with an empty one
    return GenerationRequest(**values)


def request_arrays(request: GenerationRequest, accepted: Collection[str] | None = None) -> dict[str, np.ndarray]:
    """The inverse of parse_generation_request: an array for every set field of ``request`` (not None, not an
    empty text; with the input it ``requires``), restricted to the input names ``accepted`` (a pipeline model's
    declared inputs) when given."""

    def is_set(name: str) -> bool:
        value = getattr(request, name)
        return not (value is None or (isinstance(value, str) and not value))

    arrays: dict[str, np.ndarray] = {}
    for field in fields(request):
        tensor = names.PIPELINE_INPUTS.get(field.name)
        if tensor is None or not is_set(tensor.name) or (tensor.requires and not is_set(tensor.requires)):
            continue
        if accepted is not None and tensor.name not in accepted:
            continue
        value = getattr(request, tensor.name)
        if tensor.dtype == "uint8":
            arrays[tensor.name] = np.ascontiguousarray(value, dtype=np.uint8)
        elif tensor.dtype == "bytes":
            arrays[tensor.name] = np.array([value.encode("utf-8")], dtype=np.object_)
        else:
            arrays[tensor.name] = np.array([value], dtype=numpy_dtype(tensor))
    return arrays


def progress_arrays(event: ProgressEvent) -> dict[str, np.ndarray]:
    """step INT32[1], total_steps INT32[1], phase BYTES[1], and frames UINT8[F,H,W,3] (and the keyframe
    UINT8[H,W,3], when one was made) on the last event; a preview UINT8[F',h,w,3] on the events that have one."""
    outputs = names.PIPELINE_OUTPUTS
    arrays = {
        names.OUT_STEP: np.array([event.step], dtype=numpy_dtype(outputs[names.OUT_STEP])),
        names.OUT_TOTAL_STEPS: np.array([event.total_steps], dtype=numpy_dtype(outputs[names.OUT_TOTAL_STEPS])),
        names.OUT_PHASE: np.array([event.phase.encode("utf-8")], dtype=numpy_dtype(outputs[names.OUT_PHASE])),
    }
    optional = (
        (names.OUT_FRAMES, event.frames),
        (names.OUT_KEYFRAME, event.keyframe),
        (names.OUT_PREVIEW, event.preview),
    )
    for name, array in optional:
        if array is not None:
            arrays[name] = np.ascontiguousarray(array, dtype=numpy_dtype(outputs[name]))
    return arrays


def markdown_table(tensors: Iterable[PipelineTensor], families: Sequence[Family] = ()) -> str:
    """The tensors as the Markdown table docs/ARCHITECTURE.md shows (a test keeps the two equal), with a column
    per family saying whether it takes the input."""
    header = ["tensor", "dtype", "dims", "meaning", *(f.name for f in families)]
    rows = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for t in tensors:
        dtype = "BYTES" if t.dtype == "bytes" else triton_dtype(t.dtype).removeprefix("TYPE_")
        takes = [
            "required" if t.name in f.required_inputs else "optional" if t.name in f.optional_inputs else ""
            for f in families
        ]
        rows.append("| " + " | ".join([f"`{t.name}`", dtype, str(list(t.dims)), t.description, *takes]) + " |")
    return "\n".join(rows)
