"""Engine manifests and the staleness check (visualizr.engines): pure logic over files, no TensorRT, no GPU."""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import pytest

from tests.support.fakes import make_card
from visualizr.engines import check
from visualizr.engines.check import (
    StaleEngineError,
    check_engines,
    check_engines_here,
    engine_problems,
    is_tensorrt_model,
    stale_engines,
)
from visualizr.engines.environment import Environment, decode_lib_version, normalise_version, visible_gpus
from visualizr.engines.manifest import (
    EngineKey,
    EngineManifest,
    Gpu,
    onnx_fingerprint,
    read_manifest,
    write_manifest,
)

H200 = Gpu("NVIDIA H200", "9.0")
A100 = Gpu("NVIDIA A100-SXM4-80GB", "8.0")
PROFILE = {"sample": [[1, 4, 2, 8, 8], [2, 4, 16, 16, 16], [4, 4, 32, 64, 64]]}


def _key(onnx_sha256: str = "a" * 64, **changes) -> EngineKey:
    fields = {"profile": PROFILE, "precision": "fp16", "tensorrt_version": "10.3.0", "gpu": H200}
    return EngineKey(onnx_sha256=onnx_sha256, **{**fields, **changes})


def _engine_model(repository: Path, name: str, card_covers: dict[str, list[int]] | None = None) -> Path:
    """A tensorrt_plan model folder whose manifest matches its ONNX, built on H200 with TensorRT 10.3.0."""
    model_dir = repository / name
    version_dir = model_dir / "1"
    version_dir.mkdir(parents=True)
    (model_dir / "config.pbtxt").write_text(f'name: "{name}"\nplatform: "tensorrt_plan"\nmax_batch_size: 0\n')
    (version_dir / "model.onnx").write_bytes(b"onnx graph of " + name.encode())
    (version_dir / "model.plan").write_bytes(b"engine")
    onnx = onnx_fingerprint(version_dir)
    card = make_card()
    covers = card_covers or {
        p: [int(card.parameters[p].min), int(card.parameters[p].max)] for p in ("width", "height", "num_frames")
    }
    write_manifest(version_dir, EngineManifest(_key(onnx.sha256), onnx, covers, "2025-01-01T00:00:00+00:00", 1.0))
    return model_dir


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    card = make_card()
    for name in card.triton_models[:-1]:
        _engine_model(tmp_path, name)
    pipeline = tmp_path / card.id
    pipeline.mkdir()
    (pipeline / "config.pbtxt").write_text(f'name: "{card.id}"\nbackend: "python"\n')
    return tmp_path


# ------------------------------------------------------------------------------------------ environment


def test_tensorrt_versions_are_major_minor_patch() -> None:
    assert decode_lib_version(100300) == "10.3.0"  # TensorRT 10: MAJOR*10000 + MINOR*100 + PATCH
    assert decode_lib_version(100701) == "10.7.1"
    assert decode_lib_version(8601) == "8.6.1"  # TensorRT 8: MAJOR*1000 + MINOR*100 + PATCH
    assert normalise_version("10.3.0.26") == "10.3.0"


def test_environment_names_each_difference() -> None:
    here = Environment("10.8.0", (H200, A100))
    assert here.problems("10.8.0", H200) == [f"built on {H200}, GPU 1 here is {A100}"]
    assert here.problems("10.3.0", H200)[0] == "built by TensorRT 10.3.0, this server has TensorRT 10.8.0"
    assert Environment(None, ()).problems("10.3.0", H200) == [f"built on {H200}, this server has no GPU"]
    assert Environment("10.3.0", (H200,)).problems("10.3.0", H200) == []


class _FakeNvml(types.ModuleType):
    """pynvml over a list of (uuid, name, capability)."""

    def __init__(self, devices: list[tuple[str, str, tuple[int, int]]]) -> None:
        super().__init__("pynvml")
        self.devices = devices
        self.nvmlInit = self.nvmlShutdown = lambda: None
        self.nvmlDeviceGetCount = lambda: len(devices)
        self.nvmlDeviceGetHandleByIndex = lambda i: devices[i]
        self.nvmlDeviceGetHandleByUUID = lambda u: next(d for d in devices if d[0] == u)
        self.nvmlDeviceGetName = lambda d: d[1].encode()
        self.nvmlDeviceGetCudaComputeCapability = lambda d: d[2]


def test_visible_gpus_follow_cuda_visible_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    devices = [("GPU-0", "NVIDIA H200", (9, 0)), ("GPU-1", "NVIDIA A100-SXM4-80GB", (8, 0))]
    monkeypatch.setitem(sys.modules, "pynvml", _FakeNvml(devices))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert visible_gpus() == (H200, A100)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert visible_gpus() == (A100,)
    assert visible_gpus(visible="1") == (A100,)
    assert visible_gpus(visible="GPU-1,GPU-0") == (A100, H200)
    assert visible_gpus(visible="0,7,1") == (H200,)  # CUDA stops at the first invalid index
    assert visible_gpus(visible="") == ()


def test_no_driver_means_no_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = types.ModuleType("pynvml")

    def fail() -> None:
        raise RuntimeError("NVML Shared Library Not Found")

    broken.nvmlInit = fail
    monkeypatch.setitem(sys.modules, "pynvml", broken)
    assert visible_gpus() == ()


# ------------------------------------------------------------------------------------------ manifest


def test_key_differences_name_every_field() -> None:
    built = _key()
    assert built.differences(_key()) == []
    wanted = _key("b" * 64, precision="bf16", tensorrt_version="10.8.0", gpu=A100, profile={"sample": [[1], [2], [8]]})
    found = built.differences(wanted)
    assert len(found) == 5
    assert "ONNX changed" in found[0] and "aaaaaaaaaaaa" in found[0] and "bbbbbbbbbbbb" in found[0]
    assert "optimisation profile" in found[1] and "4x4x32x64x64" in found[1]
    assert found[2] == "built in fp16, bf16 wanted"
    assert found[3] == "built by TensorRT 10.3.0, this is TensorRT 10.8.0"
    assert found[4] == f"built on {H200}, this GPU is {A100}"


def test_manifest_round_trips_and_unreadable_is_none(tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(b"x")
    manifest = EngineManifest(_key(), onnx_fingerprint(tmp_path), {"num_frames": [2, 32]}, "2025-01-01", 2.5)
    write_manifest(tmp_path, manifest)
    assert read_manifest(tmp_path) == manifest
    (tmp_path / "model.plan.json").write_text("{not json")
    assert read_manifest(tmp_path) is None


def test_onnx_fingerprint_hashes_the_external_data_too(tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(b"graph")
    alone = onnx_fingerprint(tmp_path)
    (tmp_path / "model.onnx.data").write_bytes(b"weights")
    with_data = onnx_fingerprint(tmp_path)
    assert with_data.sha256 != alone.sha256 and with_data.size == len(b"graph") + len(b"weights")
    with pytest.raises(FileNotFoundError):
        onnx_fingerprint(tmp_path / "missing")


def test_onnx_fingerprint_rehashes_only_touched_files(tmp_path: Path) -> None:
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"graph-1")
    known = onnx_fingerprint(tmp_path)
    assert onnx_fingerprint(tmp_path, known) is known  # same size and mtime: trusted, not re-hashed
    onnx.write_bytes(b"graph-2")
    os.utime(onnx, ns=(known.mtime_ns + 1, known.mtime_ns + 1))
    changed = onnx_fingerprint(tmp_path, known)
    assert changed.sha256 != known.sha256


# ------------------------------------------------------------------------------------------ check


def test_matching_engines_have_no_problems(repository: Path) -> None:
    card = make_card()
    assert stale_engines(repository, card, Environment("10.3.0", (H200, H200))) == {}
    check_engines(repository, card, Environment("10.3.0", (H200,)))


def test_only_tensorrt_models_are_checked(repository: Path) -> None:
    card = make_card()
    assert is_tensorrt_model(repository / card.triton_models[0])
    assert not is_tensorrt_model(repository / card.id)  # the Python-backend pipeline
    assert not is_tensorrt_model(repository / "absent")


def test_a_reexported_onnx_makes_its_engine_stale(repository: Path) -> None:
    card = make_card()
    unet = next(name for name in card.triton_models if name.endswith("_unet"))
    (repository / unet / "1" / "model.onnx").write_bytes(b"a new export, same engine")
    assert list(stale_engines(repository, card)) == [unet]
    with pytest.raises(StaleEngineError) as caught:
        check_engines(repository, card)
    message = str(caught.value)
    assert unet in message and "model.onnx changed since the engine was built" in message
    assert "python -m visualizr.export --backend tensorrt" in message
    assert caught.value.model_name == unet


def test_a_card_wider_than_the_profile_makes_engines_stale(tmp_path: Path) -> None:
    card = make_card()
    name = card.triton_models[0]
    _engine_model(tmp_path, name, card_covers={"width": [64, 256], "height": [32, 512], "num_frames": [1, 32]})
    problems = engine_problems(tmp_path / name, card)
    width = card.parameters["width"]
    assert problems == [f"the engine covers width 64..256, the model card allows {width.min}..{width.max}"]


def test_another_gpu_or_tensorrt_makes_engines_stale(repository: Path) -> None:
    card = make_card()
    found = stale_engines(repository, card, Environment("10.8.0", (A100,)))
    assert sorted(found) == sorted(card.triton_models[:-1])
    assert found[card.triton_models[0]] == [
        "built by TensorRT 10.3.0, this server has TensorRT 10.8.0",
        f"built on {H200}, GPU 0 here is {A100}",
    ]


def test_missing_engine_or_manifest_is_a_problem(repository: Path) -> None:
    card = make_card()
    first, second = card.triton_models[0], card.triton_models[1]
    (repository / first / "1" / "model.plan").unlink()
    (repository / second / "1" / "model.plan.json").unlink()
    found = stale_engines(repository, card)
    assert found[first] == ["no engine 1/model.plan"]
    assert "no readable engine manifest" in found[second][0]


def test_engines_shipped_without_onnx_skip_only_the_onnx_comparison(repository: Path) -> None:
    card = make_card()
    name = card.triton_models[0]
    (repository / name / "1" / "model.onnx").unlink()
    assert stale_engines(repository, card) == {}
    assert stale_engines(repository, card, Environment("10.3.0", (A100,)))[name] == [
        f"built on {H200}, GPU 0 here is {A100}"
    ]


def test_the_latest_version_folder_is_checked(repository: Path) -> None:
    card = make_card()
    name = card.triton_models[0]
    (repository / name / "2").mkdir()
    assert stale_engines(repository, card)[name] == ["no engine 2/model.plan"]


def test_the_server_side_check_probes_the_machine_only_for_engines(
    repository: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    probes: list[int] = []

    def probe() -> Environment:
        probes.append(1)
        return Environment("10.3.0", (A100,))

    monkeypatch.setattr(check, "probe", probe)
    card = make_card()
    check_engines_here(tmp_path_factory.mktemp("cpu-only"), card)  # onnxruntime models only: nothing to probe
    assert probes == []
    with pytest.raises(StaleEngineError, match="GPU 0 here is NVIDIA A100"):
        check_engines_here(repository, card)
    assert probes == [1]
