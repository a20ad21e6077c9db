"""Parses the JSON model config Triton hands a Python-backend model in ``initialize`` (no pb_utils needed)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

# Triton's data types and their numpy dtypes (the one spelling table; export/triton_config.py inverts it).
NUMPY_DTYPES: dict[str, type] = {
    "TYPE_BOOL": np.bool_,
    "TYPE_UINT8": np.uint8,
    "TYPE_UINT16": np.uint16,
    "TYPE_UINT32": np.uint32,
    "TYPE_UINT64": np.uint64,
    "TYPE_INT8": np.int8,
    "TYPE_INT16": np.int16,
    "TYPE_INT32": np.int32,
    "TYPE_INT64": np.int64,
    "TYPE_FP16": np.float16,
    "TYPE_FP32": np.float32,
    "TYPE_FP64": np.float64,
    "TYPE_STRING": np.object_,
}


def triton_dtype(dtype: str) -> str:
    """The Triton data type of a numpy dtype name (``bytes``: Triton's BYTES), e.g. ``float32`` -> TYPE_FP32."""
    wanted = np.dtype(np.object_ if dtype == "bytes" else dtype)
    for name, numpy_type in NUMPY_DTYPES.items():
        if np.dtype(numpy_type) == wanted:
            return name
    raise ValueError(f"no Triton data type for {dtype!r}")


class ModelConfigError(ValueError):
    """The model's config.pbtxt cannot be served by this adapter (raised at load time)."""


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: np.dtype
    dims: tuple[int, ...]  # without the implicit batch dim when max_batch_size > 0


@dataclass(frozen=True)
class ModelConfig:
    name: str
    max_batch_size: int
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    parameters: dict[str, str]
    decoupled: bool

    @classmethod
    def parse(cls, raw: str | Mapping[str, Any]) -> ModelConfig:
        config = json.loads(raw) if isinstance(raw, str) else raw
        try:
            return cls(
                name=str(config.get("name", "")),
                max_batch_size=int(config.get("max_batch_size", 0)),
                inputs=tuple(_tensor_spec(t) for t in config.get("input", ())),
                outputs=tuple(_tensor_spec(t) for t in config.get("output", ())),
                parameters={
                    key: str(value.get("string_value", ""))
                    for key, value in config.get("parameters", {}).items()
                },
                decoupled=bool(config.get("model_transaction_policy", {}).get("decoupled", False)),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelConfigError(f"malformed model config: {exc}") from exc

    def int_parameter(self, key: str, default: int) -> int:
        raw = self.parameters.get(key, "").strip()
        if not raw:
            return default
        try:
            return int(raw)
        except ValueError as exc:
            raise ModelConfigError(f"{self.name}: parameter {key} must be an integer, got {raw!r}") from exc


def _tensor_spec(entry: Mapping[str, Any]) -> TensorSpec:
    data_type = entry["data_type"]
    if data_type not in NUMPY_DTYPES:
        raise ValueError(f"unsupported data_type {data_type!r} of tensor {entry.get('name')!r}")
    return TensorSpec(
        name=str(entry["name"]),
        dtype=np.dtype(NUMPY_DTYPES[data_type]),
        dims=tuple(int(d) for d in entry.get("dims", ())),
    )
