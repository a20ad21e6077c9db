"""The pipeline model's tensors: request inputs -> GenerationRequest, ProgressEvent -> response outputs.

Pure numpy, so the API side (and tests) can build and read the same tensors.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

import numpy as np

from visualizr import names
from visualizr.pipeline.errors import InvalidRequest
from visualizr.pipeline.progress import ProgressEvent
from visualizr.pipeline.request import MAX_SEED, GenerationRequest

GetInput = Callable[[str], "np.ndarray | None"]

_REQUIRED_INTS = (names.IN_WIDTH, names.IN_HEIGHT, names.IN_NUM_FRAMES, names.IN_NUM_INFERENCE_STEPS)


def _scalar(get: GetInput, name: str, required: bool = True) -> object | None:
    array = get(name)
    if array is None:
        if required:
            raise InvalidRequest(f"missing input {name!r}")
        return None
    array = np.asarray(array)
    if array.size != 1:
        raise InvalidRequest(f"input {name!r} must hold exactly one element, got shape {list(array.shape)}")
    return array.reshape(-1)[0]


def _text(get: GetInput, name: str, required: bool = True) -> str:
    value = _scalar(get, name, required)
    if value is None:
        return ""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidRequest(f"input {name!r} is not valid UTF-8") from exc
    if isinstance(value, str):
        return value
    raise InvalidRequest(f"input {name!r} must be BYTES")


def _integer(get: GetInput, name: str, required: bool = True) -> int | None:
    value = _scalar(get, name, required)
    if value is None:
        return None
    if not isinstance(value, np.integer | int) or isinstance(value, bool | np.bool_):
        raise InvalidRequest(f"input {name!r} must be an integer")
    return int(value)


def _float(get: GetInput, name: str, required: bool = True) -> float | None:
    value = _scalar(get, name, required)
    if value is None:
        return None
    if not isinstance(value, np.floating | np.integer | float | int):
        raise InvalidRequest(f"input {name!r} must be a number")
    return float(value)


def _image(get: GetInput) -> np.ndarray | None:
    """The optional source image: UINT8 [H, W, 3] (its size is checked against width/height by the loop)."""
    array = get(names.IN_IMAGE)
    if array is None:
        return None
    array = np.asarray(array)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        got = f"{array.dtype} {list(array.shape)}"
        raise InvalidRequest(f"input {names.IN_IMAGE!r} must be UINT8 [H, W, 3], got {got}")
    return np.ascontiguousarray(array)


def parse_generation_request(get: GetInput) -> GenerationRequest:
    """Read the pipeline inputs (each of shape [1]); ``get(name)`` returns None for an absent input.

    ``negative_prompt`` and ``seed`` are optional (absent seed: a random one, in the logged request), and so are
    ``image`` (UINT8 [H, W, 3]: image-to-video) and ``strength`` (FP32 [1], absent: 1.0)."""
    ints = {name: _integer(get, name) for name in _REQUIRED_INTS}
    seed = _integer(get, names.IN_SEED, required=False)  # optional: absent means a fresh random seed
    strength = _float(get, names.IN_STRENGTH, required=False)
    return GenerationRequest(
        prompt=_text(get, names.IN_PROMPT),
        negative_prompt=_text(get, names.IN_NEGATIVE_PROMPT, required=False),
        width=ints[names.IN_WIDTH],
        height=ints[names.IN_HEIGHT],
        num_frames=ints[names.IN_NUM_FRAMES],
        num_inference_steps=ints[names.IN_NUM_INFERENCE_STEPS],
        guidance_scale=_float(get, names.IN_GUIDANCE_SCALE),
        seed=seed if seed is not None else secrets.randbelow(MAX_SEED + 1),
        image=_image(get),
        strength=strength if strength is not None else 1.0,
    )


def request_arrays(request: GenerationRequest) -> dict[str, np.ndarray]:
    """The inverse of parse_generation_request: the input arrays a client sends (negative prompt when set;
    image and strength when an image is set)."""
    arrays = {
        names.IN_PROMPT: np.array([request.prompt.encode("utf-8")], dtype=np.object_),
        names.IN_WIDTH: np.array([request.width], dtype=np.int32),
        names.IN_HEIGHT: np.array([request.height], dtype=np.int32),
        names.IN_NUM_FRAMES: np.array([request.num_frames], dtype=np.int32),
        names.IN_NUM_INFERENCE_STEPS: np.array([request.num_inference_steps], dtype=np.int32),
        names.IN_GUIDANCE_SCALE: np.array([request.guidance_scale], dtype=np.float32),
        names.IN_SEED: np.array([request.seed], dtype=np.int64),
    }
    if request.negative_prompt:
        arrays[names.IN_NEGATIVE_PROMPT] = np.array([request.negative_prompt.encode("utf-8")], dtype=np.object_)
    if request.image is not None:
        arrays[names.IN_IMAGE] = np.ascontiguousarray(request.image, dtype=np.uint8)
        arrays[names.IN_STRENGTH] = np.array([request.strength], dtype=np.float32)
    return arrays


def progress_arrays(event: ProgressEvent) -> dict[str, np.ndarray]:
    """step INT32[1], total_steps INT32[1], phase BYTES[1], and frames UINT8[F,H,W,3] on the last event."""
    arrays = {
        names.OUT_STEP: np.array([event.step], dtype=np.int32),
        names.OUT_TOTAL_STEPS: np.array([event.total_steps], dtype=np.int32),
        names.OUT_PHASE: np.array([event.phase.encode("utf-8")], dtype=np.object_),
    }
    if event.frames is not None:
        arrays[names.OUT_FRAMES] = np.ascontiguousarray(event.frames, dtype=np.uint8)
    return arrays
