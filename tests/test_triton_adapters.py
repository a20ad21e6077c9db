"""Triton adapters' logic with a stand-in for ``triton_python_backend_utils`` (only stubs have it)."""

from __future__ import annotations

import asyncio
import json
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from tests.support.pipeline_fakes import FakeComponents, make_pipeline
from visualizr import names
from visualizr.families import get_family
from visualizr.pipeline import GenerationRequest, InvalidRequest, ProgressEvent
from visualizr.triton.batching import group_batchable, run_batched
from visualizr.triton.model_config import ModelConfig, ModelConfigError
from visualizr.triton.pipeline_io import parse_generation_request, progress_arrays, request_arrays


# -- a minimal triton_python_backend_utils --
class Tensor:
    def __init__(self, name: str, array: np.ndarray) -> None:
        self._name, self._array = name, np.asarray(array)

    def name(self) -> str:
        return self._name

    def as_numpy(self) -> np.ndarray:
        return self._array

    def is_cpu(self) -> bool:
        return True


class TritonError:
    CANCELLED, INVALID_ARG, INTERNAL = "CANCELLED", "INVALID_ARG", "INTERNAL"

    def __init__(self, message: str, code: str = "INTERNAL") -> None:
        self._message, self.code_ = message, code

    def message(self) -> str:
        return self._message

    def code(self) -> str:
        return self.code_


class InferenceResponse:
    def __init__(self, output_tensors: list[Tensor] | None = None, error: TritonError | None = None) -> None:
        self.output_tensors_, self.error_ = output_tensors or [], error

    def has_error(self) -> bool:
        return self.error_ is not None

    def error(self) -> TritonError | None:
        return self.error_

    def outputs(self) -> dict[str, np.ndarray]:
        return {t.name(): t.as_numpy() for t in self.output_tensors_}


class Logger:
    lines: list[str] = []

    @classmethod
    def log_info(cls, message: str) -> None:
        cls.lines.append(message)

    log_verbose = log_warn = log_error = log_info


class Metric:
    def __init__(self, labels: dict[str, str], buckets: list[float] | None = None) -> None:
        self.labels, self.buckets, self.value, self.observations = labels, buckets, 0.0, []

    def increment(self, value: float) -> None:
        self.value += value

    def observe(self, value: float) -> None:
        self.observations.append(value)


class MetricFamily:
    COUNTER, GAUGE, HISTOGRAM = "counter", "gauge", "histogram"

    def __init__(self, name: str, description: str, kind: str) -> None:
        self.name, self.kind, self.metrics = name, kind, []

    def Metric(self, labels: dict[str, str], buckets: list[float] | None = None) -> Metric:  # noqa: N802
        assert (buckets is not None) == (self.kind == self.HISTOGRAM), "Triton requires buckets for histograms only"
        metric = Metric(labels, buckets)
        self.metrics.append(metric)
        return metric


def _get_tensor(holder: Any, name: str) -> Tensor | None:
    return next((t for t in holder.tensors() if t.name() == name), None)


pb = types.ModuleType("triton_python_backend_utils")
pb.Tensor, pb.TritonError, pb.InferenceResponse, pb.Logger = Tensor, TritonError, InferenceResponse, Logger
pb.MetricFamily = MetricFamily
pb.TRITONSERVER_RESPONSE_COMPLETE_FINAL = 1
pb.TRITONSERVER_MEMORY_CPU = 0
pb.get_input_tensor_by_name = _get_tensor
sys.modules.setdefault("triton_python_backend_utils", pb)

from visualizr.triton import onnx_component, pipeline_model  # noqa: E402
from visualizr.triton.bls import RequestsInFlight  # noqa: E402
from visualizr.triton.metrics import PipelineMetrics  # noqa: E402
from visualizr.triton.onnx_component import OnnxComponentModel, match_rank  # noqa: E402


class Sender:
    def __init__(self) -> None:
        self.sent: list[tuple[InferenceResponse, int]] = []

    def send(self, response: InferenceResponse, flags: int = 0) -> None:
        self.sent.append((response, flags))


class Request:
    def __init__(self, arrays: dict[str, np.ndarray], cancel_after_sends: int | None = None) -> None:
        self._tensors = [Tensor(name, array) for name, array in arrays.items()]
        self.sender = Sender()
        self.cancel_after_sends = cancel_after_sends

    def tensors(self) -> list[Tensor]:
        return self._tensors

    def get_response_sender(self) -> Sender:
        return self.sender

    def request_id(self) -> str:
        return "r1"

    def is_cancelled(self) -> bool:
        return self.cancel_after_sends is not None and len(self.sender.sent) >= self.cancel_after_sends


# -- pipeline inputs and outputs --
REQUEST = GenerationRequest("a cat", 64, 32, 4, 2, 7.5, 123, negative_prompt="blurry")
ANIMATEDIFF = get_family("animatediff")


def parse(get: Any) -> GenerationRequest:
    """Read AnimateDiff's pipeline inputs."""
    return parse_generation_request(get, ANIMATEDIFF.required_inputs, ANIMATEDIFF.optional_inputs)


def test_request_arrays_round_trip() -> None:
    arrays = request_arrays(REQUEST)
    assert arrays[names.IN_PROMPT].dtype == np.object_ and arrays[names.IN_SEED].dtype == np.int64
    assert parse(arrays.get) == REQUEST


IMAGE_REQUEST = GenerationRequest(
    **{**REQUEST.__dict__, "image": np.arange(32 * 64 * 3, dtype=np.uint8).reshape(32, 64, 3), "strength": 0.5}
)


def test_request_arrays_round_trip_with_an_image() -> None:
    arrays = request_arrays(IMAGE_REQUEST)
    assert arrays[names.IN_IMAGE].dtype == np.uint8 and arrays[names.IN_IMAGE].shape == (32, 64, 3)
    assert arrays[names.IN_STRENGTH].dtype == np.float32 and arrays[names.IN_STRENGTH].shape == (1,)
    assert parse(arrays.get) == IMAGE_REQUEST
    assert names.IN_IMAGE not in request_arrays(REQUEST) and names.IN_STRENGTH not in request_arrays(REQUEST)


def test_request_arrays_send_only_the_accepted_inputs() -> None:
    accepted = {names.IN_WIDTH, names.IN_HEIGHT, names.IN_IMAGE, "not-an-input"}
    assert set(request_arrays(IMAGE_REQUEST, accepted)) == {names.IN_WIDTH, names.IN_HEIGHT, names.IN_IMAGE}


def test_strength_defaults_to_one() -> None:
    arrays = request_arrays(IMAGE_REQUEST)
    del arrays[names.IN_STRENGTH]
    assert parse(arrays.get).strength == 1.0


@pytest.mark.parametrize(
    "name, value, message",
    [
        (names.IN_IMAGE, np.zeros((32, 64, 3), dtype=np.float32), "UINT8"),
        (names.IN_IMAGE, np.zeros((32, 64), dtype=np.uint8), "UINT8"),
        (names.IN_IMAGE, np.zeros((32, 64, 4), dtype=np.uint8), "UINT8"),
        (names.IN_STRENGTH, np.array([0.5, 0.5], dtype=np.float32), "exactly one element"),
        (names.IN_STRENGTH, np.array([b"x"], dtype=np.object_), "number"),
    ],
)
def test_bad_image_inputs_raise_invalid_request(name: str, value: np.ndarray, message: str) -> None:
    arrays: dict[str, Any] = request_arrays(IMAGE_REQUEST)
    arrays[name] = value
    with pytest.raises(InvalidRequest, match=message):
        parse(arrays.get)


def test_negative_prompt_is_optional() -> None:
    arrays = request_arrays(REQUEST)
    del arrays[names.IN_NEGATIVE_PROMPT]
    assert parse(arrays.get).negative_prompt == ""


@pytest.mark.parametrize(
    "name, value, message",
    [
        (names.IN_WIDTH, None, "missing input 'width'"),
        (names.IN_WIDTH, np.array([1, 2], dtype=np.int32), "exactly one element"),
        (names.IN_SEED, np.array([1.5], dtype=np.float32), "integer"),
        (names.IN_PROMPT, np.array([b"\xff"], dtype=np.object_), "UTF-8"),
        (names.IN_GUIDANCE_SCALE, np.array([b"x"], dtype=np.object_), "number"),
    ],
)
def test_bad_inputs_raise_invalid_request(name: str, value: np.ndarray | None, message: str) -> None:
    arrays: dict[str, Any] = request_arrays(REQUEST)
    arrays[name] = value
    with pytest.raises(InvalidRequest, match=message):
        parse(arrays.get)


def test_progress_arrays() -> None:
    arrays = progress_arrays(ProgressEvent(names.PHASE_FRAME_GENERATION, 1, 2))
    assert set(arrays) == {names.OUT_STEP, names.OUT_TOTAL_STEPS, names.OUT_PHASE}
    assert arrays[names.OUT_PHASE][0] == b"frame_generation" and arrays[names.OUT_STEP].dtype == np.int32
    frames = np.zeros((2, 8, 8, 3), dtype=np.uint8)
    assert progress_arrays(ProgressEvent(names.PHASE_DONE, 2, 2, frames))[names.OUT_FRAMES].shape == (
        2,
        8,
        8,
        3,
    )


# -- dynamic batching --
def test_group_batchable_by_non_batch_shapes() -> None:
    feeds = [{"x": np.zeros((2, 3))}, {"x": np.zeros((1, 4))}, {"x": np.zeros((2, 3))}]
    assert group_batchable(feeds) == [[0, 2], [1]]


def test_run_batched_concatenates_once_and_splits_back() -> None:
    calls: list[tuple[int, ...]] = []

    def run(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        calls.append(feeds["x"].shape)
        return {"y": feeds["x"] * 10}

    feeds = [{"x": np.full((2, 3), 1.0)}, {"x": np.full((1, 3), 2.0)}]
    results = run_batched(run, feeds)
    assert calls == [(3, 3)]
    np.testing.assert_array_equal(results[0]["y"], np.full((2, 3), 10.0))
    np.testing.assert_array_equal(results[1]["y"], np.full((1, 3), 20.0))


# -- model config --
def _config(max_batch_size: int = 4, **extra: Any) -> dict[str, Any]:
    return {
        "name": "double",
        "max_batch_size": max_batch_size,
        "input": [{"name": "x", "data_type": "TYPE_FP32", "dims": ["3"]}],
        "output": [{"name": "y", "data_type": "TYPE_FP32", "dims": ["3"]}],
        "parameters": {"intra_op_num_threads": {"string_value": "1"}},
        **extra,
    }


def test_model_config_parse() -> None:
    config = ModelConfig.parse(json.dumps(_config(model_transaction_policy={"decoupled": True})))
    assert config.max_batch_size == 4 and config.decoupled
    assert config.inputs[0].dtype == np.float32 and config.inputs[0].dims == (3,)
    assert config.int_parameter("intra_op_num_threads", 0) == 1
    assert config.int_parameter("absent", 7) == 7


def test_model_config_errors() -> None:
    with pytest.raises(ModelConfigError, match="data_type"):
        ModelConfig.parse({"input": [{"name": "x", "data_type": "TYPE_NOPE", "dims": []}]})
    bad = ModelConfig.parse(_config(parameters={"intra_op_num_threads": {"string_value": "two"}}))
    with pytest.raises(ModelConfigError, match="integer"):
        bad.int_parameter("intra_op_num_threads", 0)


# -- the ONNX component model --
@pytest.fixture(scope="module")
def double_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "x"], ["y"])],
        "double",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path_factory.mktemp("double") / "1" / "model.onnx"
    path.parent.mkdir(parents=True)
    onnx.save(model, str(path))
    return path


def test_component_batches_equal_shapes_and_fails_per_request(double_onnx: Path) -> None:
    model = OnnxComponentModel(ModelConfig.parse(_config()), double_onnx)
    feeds = [
        {"x": np.ones((1, 3), np.float32)},
        {"x": np.ones((2, 3), np.float32)},
        {"x": np.ones((1, 5), np.float32)},
    ]
    results = model.run_many(feeds)
    np.testing.assert_array_equal(results[0]["y"], np.full((1, 3), 2.0))
    assert results[1]["y"].shape == (2, 3)
    assert isinstance(results[2], Exception)


def test_component_config_must_match_the_onnx_file(double_onnx: Path) -> None:
    config = _config()
    config["output"][0]["name"] = "z"
    with pytest.raises(ModelConfigError, match="'z'"):
        OnnxComponentModel(ModelConfig.parse(config), double_onnx)


def test_component_triton_model_execute(double_onnx: Path) -> None:
    model = onnx_component.TritonPythonModel()
    model.initialize(
        {
            "model_config": json.dumps(_config()),
            "model_repository": str(double_onnx.parent.parent),
            "model_version": "1",
        }
    )
    good = Request({"x": np.ones((1, 3), np.float32)})
    missing = Request({})
    good_response, missing_response = model.execute([good, missing])
    np.testing.assert_array_equal(good_response.outputs()["y"], np.full((1, 3), 2.0))
    assert "missing input 'x'" in missing_response.error().message()


def test_match_rank() -> None:
    assert match_rank(np.zeros((2, 1)), 1).shape == (2,)
    assert match_rank(np.zeros((2,)), 2).shape == (2, 1)
    with pytest.raises(ValueError):
        match_rank(np.zeros((2, 3)), 1)


# -- the pipeline model's request handling --
@pytest.fixture
def pipeline_triton_model() -> pipeline_model.TritonPythonModel:
    model = pipeline_model.TritonPythonModel()
    model.pipeline, model.components, model.name = make_pipeline(), FakeComponents(), "tiny"
    model.metrics, model.in_flight = PipelineMetrics(pb, "tiny"), RequestsInFlight()
    return model


def _small(**overrides: Any) -> dict[str, np.ndarray]:
    values = dict(prompt="a cat", width=32, height=16, num_frames=3, num_inference_steps=2, guidance_scale=7.5, seed=1)
    return request_arrays(GenerationRequest(**{**values, **overrides}))


def test_pipeline_streams_progress_then_frames_with_the_final_flag(pipeline_triton_model) -> None:
    request = Request(_small())
    asyncio.run(pipeline_triton_model.execute([request]))
    sent = request.sender.sent
    phases = [r.outputs()[names.OUT_PHASE][0].decode() for r, _ in sent]
    assert phases == ["text_encoding", "frame_generation", "frame_generation", "decoding", "done"]
    assert [flags for _, flags in sent] == [0, 0, 0, 0, 1]
    assert sent[-1][0].outputs()[names.OUT_FRAMES].shape == (3, 16, 32, 3)
    assert names.OUT_FRAMES not in sent[-2][0].outputs()
    metrics = pipeline_triton_model.metrics
    assert len(metrics.step_seconds.observations) == 2 and len(metrics.generation_seconds.observations) == 1
    assert metrics.outcomes["success"].value == 1 and metrics.active.value == 0


def test_pipeline_image_to_video_runs_the_strength_steps(pipeline_triton_model) -> None:
    image = np.full((16, 32, 3), 200, dtype=np.uint8)
    request = Request(_small(num_inference_steps=4, image=image, strength=0.5))
    asyncio.run(pipeline_triton_model.execute([request]))
    sent = request.sender.sent
    steps = [(int(r.outputs()[names.OUT_STEP][0]), int(r.outputs()[names.OUT_TOTAL_STEPS][0])) for r, _ in sent]
    assert steps == [(0, 2), (1, 2), (2, 2), (2, 2), (2, 2)] and sent[-1][1] == 1
    kinds = [kind for kind, _ in pipeline_triton_model.components.calls]
    assert kinds.count("encode_image") == 1 and kinds.count("unet") == 2
    wrong_size = Request(_small(image=image[:8], strength=0.5))
    asyncio.run(pipeline_triton_model.execute([wrong_size]))
    ((response, flags),) = wrong_size.sender.sent
    assert flags == 1 and response.error().code() == TritonError.INVALID_ARG
    assert "image" in response.error().message()


def test_pipeline_cancel_sends_a_final_cancelled_error(pipeline_triton_model) -> None:
    request = Request(_small(num_inference_steps=10), cancel_after_sends=3)
    asyncio.run(pipeline_triton_model.execute([request]))
    sent = request.sender.sent
    assert len(sent) == 4 and sent[-1][1] == 1
    assert sent[-1][0].error().message() == "cancelled" and sent[-1][0].error().code() == TritonError.CANCELLED
    assert sum(kind == "unet" for kind, _ in pipeline_triton_model.components.calls) == 2
    assert pipeline_triton_model.metrics.outcomes["cancelled"].value == 1


def test_pipeline_bad_request_gets_an_error_and_others_still_run(pipeline_triton_model) -> None:
    bad, good = Request(_small(width=30)), Request(_small())
    asyncio.run(pipeline_triton_model.execute([bad, good]))
    ((response, flags),) = bad.sender.sent
    assert flags == 1 and response.error().code() == TritonError.INVALID_ARG and "width" in response.error().message()
    assert good.sender.sent[-1][1] == 1 and not good.sender.sent[-1][0].has_error()
    outcomes = pipeline_triton_model.metrics.outcomes
    assert (outcomes["invalid"].value, outcomes["success"].value) == (1, 1)


def test_pipeline_component_failure_is_an_error_response(pipeline_triton_model) -> None:
    async def broken(*args: Any) -> np.ndarray:
        raise RuntimeError("unet exploded")

    pipeline_triton_model.components.unet = broken
    request = Request(_small())
    asyncio.run(pipeline_triton_model.execute([request]))
    response, flags = request.sender.sent[-1]
    assert flags == 1 and "unet exploded" in response.error().message()
    assert pipeline_triton_model.metrics.outcomes["failed"].value == 1
    assert pipeline_triton_model.metrics.active.value == 0


def test_pipeline_counts_its_requests_in_flight_before_any_runs(pipeline_triton_model) -> None:
    """What its components ask (``in_flight.alone``: serving one) before blocking the loop on a call."""
    model, seen = pipeline_triton_model, []
    unet = model.components.unet

    async def counting(inputs: dict[str, np.ndarray]) -> np.ndarray:
        seen.append(model.in_flight.count)
        return await unet(inputs)

    model.components.unet = counting
    asyncio.run(model.execute([Request(_small())]))
    asyncio.run(model.execute([Request(_small()), Request(_small())]))  # the fake never yields: one after the other
    assert seen == [1, 1, 2, 2, 1, 1] and model.in_flight.count == 0


def test_pipeline_model_requires_decoupled() -> None:
    config = _config(max_batch_size=0)
    with pytest.raises(ModelConfigError, match="decoupled"):
        pipeline_model.TritonPythonModel().initialize(
            {"model_config": json.dumps(config), "model_repository": "/nowhere", "model_version": "1"}
        )


def test_absent_seed_draws_a_random_one() -> None:
    arrays = request_arrays(REQUEST)
    del arrays[names.IN_SEED]
    seeds = {parse(arrays.get).seed for _ in range(3)}
    assert len(seeds) == 3 and all(0 <= seed < 2**63 for seed in seeds)
