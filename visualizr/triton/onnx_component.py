"""Generic Python-backend model serving one exported ONNX network on CPU with the engine measured fastest for it
(onnxruntime, OpenVINO or torch; ``visualizr.pipeline.engine_calibration``), or the one ``VISUALIZR_CPU_ENGINE`` names.

Config (``config.pbtxt``): inputs/outputs named as in ``visualizr.names``, optional ``max_batch_size`` with a
dynamic batcher, optional ``parameters { key: "intra_op_num_threads" value { string_value: "2" } }``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import triton_python_backend_utils as pb_utils

from visualizr.names import ONNX_FILENAME
from visualizr.triton.batching import Feeds
from visualizr.triton.component_model import OnnxComponentModel, calibrated_model, match_rank
from visualizr.triton.model_config import ModelConfig

__all__ = ["OnnxComponentModel", "TritonPythonModel", "match_rank"]


class TritonPythonModel:
    def initialize(self, args: dict[str, Any]) -> None:
        config = ModelConfig.parse(args["model_config"])
        onnx_path = Path(args["model_repository"]) / str(args["model_version"]) / ONNX_FILENAME
        self.model, measured = calibrated_model(config, onnx_path, Path(args["model_repository"]).parent)
        timings = ", ".join(f"{name} {ms:.1f} ms" for name, ms in measured.ms.items()) if measured else "not measured"
        engine = self.model.engine.name
        pb_utils.Logger.log_info(f"{config.name}: CPU engine {engine} ({timings} per call at the default shapes)")

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
