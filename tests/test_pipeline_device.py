"""The loop's tensors on a device (visualizr.pipeline.tensors): with tensor I/O every network input and output is a
torch tensor on the device and only the final frames reach the host; the frames are the numpy path's, bit for bit
on the CPU. The same tests run on CUDA where a GPU is present (marked ``gpu``; skipped here with the reason)."""

from __future__ import annotations

import asyncio
import importlib
import sys
import types
from typing import Any

import numpy as np
import pytest
import torch

from tests.support.pipeline_fakes import (
    FakeComponents,
    FakeSvdComponents,
    make_pipeline,
    make_request,
    make_svd_pipeline,
    make_svd_request,
)
from visualizr.families import get_family
from visualizr.pipeline import GenerationRequest
from visualizr.pipeline.tensors import TensorPlacement, instance_gpu, to_uint8_frames

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]


def _reference_uint8(images: np.ndarray) -> np.ndarray:
    """The numpy conversion the loop used before the tensors could stay on a GPU."""
    images = np.clip(images / 2.0 + 0.5, 0.0, 1.0)
    return np.ascontiguousarray((images.transpose(0, 2, 3, 1) * 255.0).round().astype(np.uint8))


@pytest.mark.parametrize("device", DEVICES)
def test_uint8_frames_match_the_numpy_conversion(device: str) -> None:
    generator = np.random.default_rng(0)
    images = generator.normal(0, 0.8, (5, 3, 16, 24)).astype(np.float32)
    images[0, 0, 0, :6] = [-1.0, 1.0, -2.0, 2.0, 0.0, 1 / 255 - 1]  # clipping and an exact half step
    frames = to_uint8_frames(torch.from_numpy(images).to(device))
    assert frames.dtype == np.uint8 and frames.flags.c_contiguous
    np.testing.assert_array_equal(frames, _reference_uint8(images))


def test_numpy_io_shares_memory_and_tensor_io_stays_on_the_device() -> None:
    cpu = TensorPlacement()
    tensor = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    array = cpu.to_network(tensor)
    assert isinstance(array, np.ndarray) and np.shares_memory(array, tensor.numpy())
    back = cpu.from_network(array)
    assert back.dtype == torch.float32 and back.data_ptr() == tensor.data_ptr()
    ids = cpu.to_network(np.array([[1, 2]], dtype=np.int64), torch.int64)
    assert ids.dtype == np.int64
    tensors = TensorPlacement("cpu", tensors=True)
    assert isinstance(tensors.to_network(np.ones((2, 2), np.float64)), torch.Tensor)
    assert tensors.full(3, 981.0).tolist() == [981.0] * 3
    assert TensorPlacement("cuda:1").tensors and TensorPlacement("cuda:1").device == torch.device("cuda", 1)


class DeviceComponents:
    """The fake networks of the loop tests behind tensor I/O: every input must be a contiguous torch tensor on
    ``device`` and every output is one, so the loop never hands a network a host array."""

    def __init__(self, fake: Any, device: torch.device) -> None:
        self.fake, self.device = fake, device
        self.calls: list[str] = []

    def _host(self, value: Any) -> np.ndarray:
        assert isinstance(value, torch.Tensor) and value.device == self.device, value
        assert value.is_contiguous()
        return value.cpu().numpy()

    async def run(self, component: str, inputs: dict[str, Any], output: str) -> torch.Tensor:
        self.calls.append(component)
        result = await self.fake.run(component, {name: self._host(v) for name, v in inputs.items()}, output)
        return torch.from_numpy(np.asarray(result)).to(self.device)


def _frames(pipeline: Any, request: GenerationRequest, components: Any) -> np.ndarray:
    return asyncio.run(pipeline(request, components))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("family", ["text", "image", "svd"])
def test_tensor_io_makes_the_numpy_path_frames(device: str, family: str) -> None:
    """Every family's loop: with tensor I/O the same frames as with numpy I/O, and only device tensors cross."""
    if family == "svd":
        make, request, fake, unet_calls = make_svd_pipeline, make_svd_request(), FakeSvdComponents, 4
    else:
        extra = {"image": np.full((16, 32, 3), 180, np.uint8), "strength": 0.5} if family == "image" else {}
        make, request, fake, unet_calls = make_pipeline, make_request(**extra), FakeComponents, 2 if extra else 4
    expected = _frames(make(), request, fake())
    pipeline = make()
    pipeline.placement = TensorPlacement(device, tensors=True)
    components = DeviceComponents(fake(), pipeline.placement.device)
    frames = _frames(pipeline, request, components)
    assert components.calls.count("unet") == unet_calls and components.calls[-1] == "vae_decoder"
    if device == "cpu":
        np.testing.assert_array_equal(frames, expected)
    else:  # the scheduler's float32 arithmetic on the GPU may round differently in the last bit
        assert np.abs(frames.astype(int) - expected).max() <= 1


# -- BLS: numpy stays numpy, device tensors travel by DLPack, GPU outputs stay on the GPU --


class _PbTensor:
    def __init__(self, name: str, array: Any = None, dlpack: Any = None) -> None:
        self._name, self.array, self.dlpack = name, array, dlpack

    @classmethod
    def from_dlpack(cls, name: str, capsule: Any) -> _PbTensor:
        return cls(name, dlpack=torch.from_dlpack(capsule))

    def name(self) -> str:
        return self._name

    def is_cpu(self) -> bool:
        return self.array is not None

    def as_numpy(self) -> np.ndarray:
        return self.array

    def to_dlpack(self) -> Any:
        return torch.utils.dlpack.to_dlpack(self.dlpack)


def _fake_pb_utils(answer_on_gpu: bool) -> tuple[types.ModuleType, list[Any]]:
    requests: list[Any] = []
    pb = types.ModuleType("triton_python_backend_utils")
    pb.TRITONSERVER_MEMORY_CPU, pb.TRITONSERVER_MEMORY_GPU = 0, 2
    pb.Tensor = _PbTensor
    pb.PreferredMemory = lambda kind, device: (kind, device)

    class Request:
        def __init__(self, model_name: str, inputs: list[_PbTensor], requested_output_names, preferred_memory):
            self.model_name, self.inputs, self.preferred_memory = model_name, inputs, preferred_memory
            requests.append(self)

        def exec(self) -> Any:
            self.executed = "exec"
            value = torch.ones(2, 3)
            tensor = _PbTensor("noise_pred", dlpack=value) if answer_on_gpu else _PbTensor("noise_pred", value.numpy())
            return types.SimpleNamespace(has_error=lambda: False, tensor=tensor)

        async def async_exec(self) -> Any:
            response = self.exec()
            self.executed = "async_exec"
            return response

    pb.InferenceRequest = Request
    pb.get_output_tensor_by_name = lambda response, name: response.tensor
    return pb, requests


def _private_bls(monkeypatch: pytest.MonkeyPatch, pb: types.ModuleType) -> Any:
    """``visualizr.triton.bls`` imported over the fake ``pb``, then taken out of sys.modules: no other test sees it."""
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", pb)
    previous = sys.modules.pop("visualizr.triton.bls", None)
    try:
        return importlib.import_module("visualizr.triton.bls")
    finally:
        sys.modules.pop("visualizr.triton.bls", None)
        if previous is not None:
            sys.modules["visualizr.triton.bls"] = previous


@pytest.mark.parametrize("on_gpu", [False, True], ids=["cpu", "gpu"])
def test_bls_passes_device_tensors_by_dlpack(monkeypatch: pytest.MonkeyPatch, on_gpu: bool) -> None:
    pb, requests = _fake_pb_utils(answer_on_gpu=on_gpu)
    components = _private_bls(monkeypatch, pb).BlsComponents(
        "animatediff", get_family("animatediff"), device_id=0 if on_gpu else None
    )
    _check_request(requests, _run_unet(components, on_gpu), on_gpu)


def test_bls_blocks_the_loop_only_while_the_pipeline_serves_one_request(monkeypatch: pytest.MonkeyPatch) -> None:
    pb, requests = _fake_pb_utils(answer_on_gpu=False)
    bls = _private_bls(monkeypatch, pb)
    in_flight = bls.RequestsInFlight()
    components = bls.BlsComponents("animatediff", get_family("animatediff"), in_flight=in_flight)
    in_flight.started(1)
    _run_unet(components, on_gpu=False)
    in_flight.started(1)
    _run_unet(components, on_gpu=False)
    in_flight.finished()
    _run_unet(components, on_gpu=False)
    assert [request.executed for request in requests] == ["exec", "async_exec", "exec"]


def _run_unet(components: Any, on_gpu: bool) -> Any:
    sample = torch.zeros(2, 3) if on_gpu else np.zeros((2, 3), np.float32)
    timestep = torch.full((2,), 5.0) if on_gpu else np.full((2,), 5.0, np.float32)
    inputs = {"sample": sample, "timestep": timestep, "encoder_hidden_states": sample}
    return asyncio.run(components.run("unet", inputs, "noise_pred"))


def _check_request(requests: list[Any], output: Any, on_gpu: bool) -> None:
    (request,) = requests
    assert request.model_name == "animatediff_unet"
    assert request.preferred_memory == ((2, 0) if on_gpu else (0, 0))
    by_name = {t.name(): t for t in request.inputs}
    if on_gpu:
        assert all(t.dlpack is not None for t in request.inputs)
        assert by_name["timestep"].dlpack.shape == (2, 1)  # batched [B] timestep sent as [B, 1]
        assert isinstance(output, torch.Tensor)
    else:
        assert by_name["timestep"].array.shape == (2, 1) and isinstance(output, np.ndarray)


def test_the_pipeline_instance_uses_its_gpu_only_when_torch_has_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    assert instance_gpu("CPU", "0") is None
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert instance_gpu("GPU", "1") is None
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert instance_gpu("GPU", "1") == 1 and instance_gpu(None, None) is None
