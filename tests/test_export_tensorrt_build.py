"""Building TensorRT engines, with a stand-in ``tensorrt`` module (tests/support/fake_tensorrt.py) and a stand-in
GPU: the profile from the model card, precision flags, the timing cache, the manifest, and each engine decided on
its own (the bug this fixes: an onnxruntime build followed by ``--backend tensorrt`` recorded a model.plan it never
built). Real engines need a GPU with TensorRT (see README, "GPU deployment")."""

from __future__ import annotations

import shutil
from pathlib import Path

import msgspec
import onnx
import pytest
from google.protobuf import text_format
from onnx import TensorProto, helper
from tritonclient.grpc import model_config_pb2

from tests.support.engine_shapes import CARD, CONFIG, LIMITS
from tests.support.fake_tensorrt import fake_tensorrt, read_fake_engine
from visualizr import names
from visualizr.engines import environment as machine
from visualizr.engines.check import card_ranges, stale_engines
from visualizr.engines.environment import Environment
from visualizr.engines.manifest import Gpu, onnx_fingerprint, read_manifest
from visualizr.export.__main__ import main
from visualizr.export.build_stamp import read_stamps
from visualizr.export.families.animatediff.specs import AnimateDiffDims, UNetSpec
from visualizr.export.model_cards import shape_limits
from visualizr.export.tensorrt_build import EngineBuilder, build_gpu, engine_profile, timing_cache_path
from visualizr.families import FAMILY_NAMES, get_family
from visualizr.model_card import read_model_card

H200 = Gpu("NVIDIA H200", "9.0")
A100 = Gpu("NVIDIA A100-SXM4-80GB", "8.0")
SPEC = UNetSpec(AnimateDiffDims(text_hidden_size=32))


def _onnx(path: Path, quantised: bool = False) -> None:
    """A one-node ONNX graph (Identity, or Q/DQ when ``quantised``)."""
    if quantised:
        nodes = [
            helper.make_node("QuantizeLinear", ["x", "scale"], ["q"]),
            helper.make_node("DequantizeLinear", ["q", "scale"], ["y"]),
        ]
        initializers = [helper.make_tensor("scale", TensorProto.FLOAT, [], [1.0])]
    else:
        nodes, initializers = [helper.make_node("Identity", ["x"], ["y"])], []
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(helper.make_model(helper.make_graph(nodes, "g", [x], [y], initializers)), str(path))


def _builder(tmp_path: Path, precision: str = "fp16", gpu: Gpu = H200, version: str = "10.3.0", **kw) -> EngineBuilder:
    return EngineBuilder(tmp_path, precision, card_ranges(CARD), Environment(version, (gpu,)), **kw)


@pytest.fixture
def version_dir(tmp_path: Path) -> Path:
    _onnx(tmp_path / "animatediff_unet" / "1" / "model.onnx")
    return tmp_path / "animatediff_unet" / "1"


def test_first_build_uses_the_card_profile_fp16_and_writes_a_manifest(tmp_path: Path, version_dir: Path) -> None:
    with fake_tensorrt() as trt:
        outcome = _builder(tmp_path).ensure(version_dir, SPEC, LIMITS)
    assert outcome.built and outcome.reasons == ["no engine yet"]
    (build,) = trt.builds
    assert build["flags"] == ["FP16"] and build["workspace"] == 8 << 30
    assert build["profiles"] == [engine_profile(SPEC, LIMITS)]
    f = LIMITS.frames
    assert build["profiles"][0][names.UNET_SAMPLE][2][2] == f.max == CARD.parameter("num_frames").max
    assert read_fake_engine(version_dir / "model.plan") == build
    manifest = read_manifest(version_dir)
    assert manifest is not None
    assert manifest.key.onnx_sha256 == onnx_fingerprint(version_dir).sha256 == build["onnx_sha256"]
    assert (manifest.key.precision, manifest.key.tensorrt_version, manifest.key.gpu) == ("fp16", "10.3.0", H200)
    assert manifest.key.profile == build["profiles"][0]
    assert manifest.covers == card_ranges(CARD)


def test_an_unchanged_engine_is_reused(tmp_path: Path, version_dir: Path) -> None:
    with fake_tensorrt() as trt:
        _builder(tmp_path).ensure(version_dir, SPEC, LIMITS)
        outcome = _builder(tmp_path).ensure(version_dir, SPEC, LIMITS)
    assert not outcome.built and not outcome.manifest_written and len(trt.builds) == 1


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"precision": "bf16"}, "built in fp16, bf16 wanted"),
        ({"gpu": A100}, f"built on {H200}, this GPU is {A100}"),
        ({"version": "10.8.0"}, "built by TensorRT 10.3.0, this is TensorRT 10.8.0"),
        ({"force": True}, "--force"),
    ],
)
def test_each_key_field_rebuilds_and_says_why(tmp_path: Path, version_dir: Path, change: dict, reason: str) -> None:
    with fake_tensorrt() as trt:
        _builder(tmp_path).ensure(version_dir, SPEC, LIMITS)
        outcome = _builder(tmp_path, **change).ensure(version_dir, SPEC, LIMITS)
    assert outcome.built and outcome.reasons == [reason] and len(trt.builds) == 2
    if change.get("precision") == "bf16":
        assert trt.builds[1]["flags"] == ["BF16"]


def test_a_new_onnx_or_profile_rebuilds(tmp_path: Path, version_dir: Path) -> None:
    with fake_tensorrt() as trt:
        _builder(tmp_path).ensure(version_dir, SPEC, LIMITS)
        _onnx(version_dir / "model.onnx", quantised=True)
        onnx_changed = _builder(tmp_path).ensure(version_dir, SPEC, LIMITS)
        frames = CARD.parameter("num_frames")
        longer = {**CARD.parameters, "num_frames": msgspec.structs.replace(frames, max=frames.max + 8)}
        wider = shape_limits(msgspec.structs.replace(CARD, parameters=longer), CONFIG)
        profile_changed = _builder(tmp_path).ensure(version_dir, SPEC, wider)
    assert "ONNX changed" in onnx_changed.reasons[0]
    assert profile_changed.reasons[0].startswith("optimisation profile")
    assert trt.builds[2]["profiles"][0][names.UNET_SAMPLE][2][2] == frames.max + 8


def test_the_timing_cache_is_shared_per_tensorrt_version_and_gpu(tmp_path: Path, version_dir: Path) -> None:
    with fake_tensorrt() as trt:
        _builder(tmp_path).ensure(version_dir, SPEC, LIMITS)
        _builder(tmp_path, precision="bf16").ensure(version_dir, SPEC, LIMITS)
    cache = timing_cache_path(tmp_path, "10.3.0", H200)
    assert cache.name == ".tensorrt-timing-10.3.0-nvidia-h200-sm9.0.cache"
    assert [b["timing_cache_in"] for b in trt.builds] == ["", "timed;"]  # the second build read the first's
    assert cache.read_bytes() == b"timed;timed;"
    assert timing_cache_path(tmp_path, "10.3.0", A100) != cache


def test_fp8_needs_a_quantised_onnx(tmp_path: Path, version_dir: Path) -> None:
    with fake_tensorrt() as trt, pytest.raises(RuntimeError, match="FP8-quantised ONNX"):
        _builder(tmp_path, precision="fp8").ensure(version_dir, SPEC, LIMITS)
    _onnx(version_dir / "model.onnx", quantised=True)
    with fake_tensorrt() as trt:
        _builder(tmp_path, precision="fp8").ensure(version_dir, SPEC, LIMITS)
    assert trt.builds[0]["flags"] == ["FP8", "FP16"]


def test_building_needs_one_kind_of_gpu() -> None:
    with pytest.raises(RuntimeError, match="needs an NVIDIA GPU"):
        build_gpu(Environment("10.3.0", ()))
    with pytest.raises(RuntimeError, match="CUDA_VISIBLE_DEVICES"):
        build_gpu(Environment("10.3.0", (H200, A100)))
    assert build_gpu(Environment("10.3.0", (H200, H200))) == H200


# ------------------------------------------------------------------------- the whole export, --backend tensorrt


@pytest.fixture
def onnxruntime_build(model_repository: Path, tmp_path: Path) -> Path:
    """A copy of the demo repository, as `make repository` built it (onnxruntime backend)."""
    copy = tmp_path / "repository"
    shutil.copytree(model_repository, copy, ignore=shutil.ignore_patterns("*.plan", "*.plan.json", ".tensorrt-*"))
    return copy


def _export(repository: Path, gpu: Gpu, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(machine, "visible_gpus", lambda visible=None: (gpu,))
    return main(["--repository", str(repository), "--backend", "tensorrt", *args])


def _component_dirs(repository: Path, family: str) -> list[Path]:
    return [repository / names.component_model_name(family, c) for c in get_family(family).components]


def test_tensorrt_after_an_onnxruntime_build_builds_every_engine(
    onnxruntime_build: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every family's components (5 of AnimateDiff with its IP-Adapter's image encoder, 4 of Stable Video Diffusion
    and 3 of its keyframe stage, 4 of LTX-Video) get their engines."""
    repository = onnxruntime_build
    with fake_tensorrt() as trt:
        assert _export(repository, H200, monkeypatch) == 0
    out = capsys.readouterr().out
    components = sum(len(get_family(family).components) for family in FAMILY_NAMES)
    assert components == 16
    assert out.count("reused cached ONNX") == components and out.count("built TensorRT engine") == components
    assert len(trt.builds) == components
    for family in FAMILY_NAMES:
        card = read_model_card(repository / family / "model_card.json")
        for model_dir in _component_dirs(repository, family):
            assert (model_dir / "1" / "model.plan").is_file() and read_manifest(model_dir / "1") is not None
            assert not (model_dir / "1" / "model.py").exists()  # a tensorrt_plan model has no model.py
            config = text_format.Parse((model_dir / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
            assert config.platform == "tensorrt_plan"
            assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_GPU
        pipeline = text_format.Parse((repository / family / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
        assert pipeline.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_GPU
        stamp = read_stamps(repository)[family]
        assert {f for f in stamp.files if f.endswith((".plan", ".plan.json"))} == {
            f"{d.name}/1/{n}" for d in _component_dirs(repository, family) for n in ("model.plan", "model.plan.json")
        }
        assert stale_engines(repository, card, Environment("10.3.0", (H200,))) == {}

    with fake_tensorrt() as trt:
        assert _export(repository, H200, monkeypatch) == 0
    assert capsys.readouterr().out.count("up to date") == len(FAMILY_NAMES) and trt.builds == []

    with fake_tensorrt() as trt:  # the same repository on another GPU: every engine rebuilt, no ONNX re-exported
        assert _export(repository, A100, monkeypatch) == 0
    out = capsys.readouterr().out
    assert out.count("reused cached ONNX") == components and len(trt.builds) == components
    assert out.count(f"built on {H200}, this GPU is {A100}") == components


def test_instances_per_gpu_and_back_to_onnxruntime(onnxruntime_build: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repository = onnxruntime_build
    with fake_tensorrt():
        assert _export(repository, H200, monkeypatch, "--instances-per-gpu", "2") == 0
    unet = repository / "animatediff_unet"
    config = text_format.Parse((unet / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    assert config.instance_group[0].count == 2 and config.HasField("dynamic_batching")
    assert main(["--repository", str(repository)]) == 0  # onnxruntime again: model.py is back, Python backend
    assert (unet / "1" / "model.py").is_file()
    assert 'backend: "python"' in (unet / "config.pbtxt").read_text()
