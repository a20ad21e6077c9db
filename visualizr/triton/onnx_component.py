"""Generic Python-backend model serving one exported ONNX network with onnxruntime (components on CPU).

Config (``config.pbtxt``): inputs/outputs named as in ``visualizr.names``, optional ``max_batch_size`` with a
dynamic batcher, optional ``parameters { key: "intra_op_num_threads" value { string_value: "2" } }``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import triton_python_backend_utils as pb_utils

from visualizr.names import INTRA_OP_THREADS_PARAMETER, ONNX_FILENAME
from visualizr.pipeline.onnx_components import open_session
from visualizr.triton.batching import Feeds, Outputs, group_batchable, run_batched
from visualizr.triton.model_config import ModelConfig, ModelConfigError


def match_rank(array: np.ndarray, rank: int) -> np.ndarray:
    """Drop or add trailing unit dims so ``array`` has ``rank`` dims (Triton's [B, 1] for an ONNX [B])."""
    shape = list(array.shape)
    while len(shape) > rank and shape[-1] == 1:
        shape.pop()
    while len(shape) < rank:
        shape.append(1)
    if len(shape) != rank:
        raise ValueError(f"cannot bring shape {list(array.shape)} to rank {rank}")
    return array.reshape(shape)


class OnnxComponentModel:
    """The logic behind TritonPythonModel, importable without a Triton stub (run takes and returns numpy)."""

    def __init__(self, config: ModelConfig, onnx_path: Path) -> None:
        self.config = config
        self.session = open_session(onnx_path, config.int_parameter(INTRA_OP_THREADS_PARAMETER, 0))
        onnx_inputs = {i.name: len(i.shape) for i in self.session.get_inputs()}
        onnx_outputs = {o.name for o in self.session.get_outputs()}
        missing = [s.name for s in config.inputs if s.name not in onnx_inputs]
        missing += [s.name for s in config.outputs if s.name not in onnx_outputs]
        if missing:
            raise ModelConfigError(f"{config.name}: tensors {missing} are not in {onnx_path}")
        self._input_rank = onnx_inputs
        batch = 1 if config.max_batch_size > 0 else 0
        self._output_rank = {s.name: batch + len(s.dims) for s in config.outputs}

    def run(self, feeds: Feeds) -> Outputs:
        inputs = {
            spec.name: match_rank(np.asarray(feeds[spec.name], dtype=spec.dtype), self._input_rank[spec.name])
            for spec in self.config.inputs
        }
        names = [spec.name for spec in self.config.outputs]
        results = self.session.run(names, inputs)
        return {
            spec.name: match_rank(np.asarray(result, dtype=spec.dtype), self._output_rank[spec.name])
            for spec, result in zip(self.config.outputs, results, strict=True)
        }

    def run_many(self, all_feeds: list[Feeds]) -> list[Outputs | Exception]:
        """Run a dynamic batch: requests with equal non-batch shapes run as one call, others one by one."""
        results: list[Outputs | Exception] = [RuntimeError("not run")] * len(all_feeds)
        groups = (
            group_batchable(all_feeds)
            if self.config.max_batch_size > 0
            else [[i] for i in range(len(all_feeds))]
        )
        for group in groups:
            try:
                for index, outputs in zip(
                    group, run_batched(self.run, [all_feeds[i] for i in group]), strict=True
                ):
                    results[index] = outputs
            except Exception as exc:  # one failing group answers its requests with the error, the rest go on
                for index in group:
                    results[index] = exc
        return results


class TritonPythonModel:
    def initialize(self, args: dict[str, Any]) -> None:
        config = ModelConfig.parse(args["model_config"])
        onnx_path = Path(args["model_repository"]) / str(args["model_version"]) / ONNX_FILENAME
        self.model = OnnxComponentModel(config, onnx_path)

    def _feeds(self, request: Any) -> Feeds:
        feeds = {}
        for spec in self.model.config.inputs:
            tensor = pb_utils.get_input_tensor_by_name(request, spec.name)
            if tensor is None:
                raise ValueError(f"missing input {spec.name!r}")
            feeds[spec.name] = tensor.as_numpy()
        return feeds

    def execute(self, requests: list[Any]) -> list[Any]:
        responses: list[Any] = [None] * len(requests)
        feeds: list[Feeds] = []
        valid: list[int] = []
        for index, request in enumerate(requests):
            try:
                feeds.append(self._feeds(request))
                valid.append(index)
            except Exception as exc:
                responses[index] = _error_response(exc)
        for index, result in zip(valid, self.model.run_many(feeds), strict=True):
            if isinstance(result, Exception):
                responses[index] = _error_response(result)
            else:
                tensors = [pb_utils.Tensor(name, array) for name, array in result.items()]
                responses[index] = pb_utils.InferenceResponse(output_tensors=tensors)
        return responses


def _error_response(exc: Exception) -> Any:
    return pb_utils.InferenceResponse(error=pb_utils.TritonError(f"{type(exc).__name__}: {exc}"))
