"""The CPU engines of the component models: every engine (torch over the TorchScript file beside the ONNX one)
matches the ONNX reference (onnxruntime) on every network of every family, the calibration picks by measurement
and is cached under its key, VISUALIZR_CPU_ENGINE overrides."""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks.cpu_engines import read_config
from visualizr.export.onnx_export import MAX_RELATIVE_ERROR, relative_error
from visualizr.families import FAMILY_NAMES
from visualizr.model_card import MODEL_CARD_FILENAME, read_model_card
from visualizr.names import ONNX_FILENAME, TORCHSCRIPT_FILENAME
from visualizr.pipeline import engine_calibration as calibration
from visualizr.pipeline.cpu_engines import (
    AUTO,
    CPU_ENGINES,
    ENGINE_NAMES,
    ONNXRUNTIME,
    ONNXRUNTIME_BATCH_SPLIT,
    OPENVINO,
    TORCH,
    BatchSplitEngine,
    OnnxRuntimeEngine,
)
from visualizr.settings import Settings
from visualizr.triton.component_model import OnnxComponentModel, calibrated_model, engine_calls

TEXT_ENCODER = "animatediff_text_encoder"


def _components(repository: Path, model_id: str) -> list[str]:
    card = read_model_card(repository / model_id / MODEL_CARD_FILENAME)
    return [m for m in card.triton_models if m != card.id and (repository / m / "1" / ONNX_FILENAME).is_file()]


@pytest.mark.slow
@pytest.mark.parametrize("model_id", FAMILY_NAMES)  # the demo holds one model per family, named like it
def test_every_engine_matches_onnxruntime_on_every_network_at_the_default_request(
    model_repository: Path, model_id: str
) -> None:
    for model in _components(model_repository, model_id):
        config = read_config(model_repository / model, None)
        dtypes = {spec.name: spec.dtype for spec in config.inputs}
        feeds = calibration.default_inputs(model_repository, model, dtypes, config.max_batch_size > 0)
        assert feeds is not None, model
        batched = config.max_batch_size > 0
        engines = calibration.calibration_candidates(calibration.installed_engines(), batched, threads=2)
        assert set(engines) == set(CPU_ENGINES) if batched else set(ENGINE_NAMES), model
        calls = engine_calls(config, model_repository / model / "1" / ONNX_FILENAME, feeds, engines)
        assert set(calls) == set(engines), model  # every engine opens every network
        reference = calls[ONNXRUNTIME][1]()
        for engine, (_, call) in calls.items():
            outputs = call()
            for name, expected in reference.items():
                assert outputs[name].shape == expected.shape and outputs[name].dtype == expected.dtype
                assert relative_error(outputs[name], expected) <= MAX_RELATIVE_ERROR, (model, engine, name)


def test_requested_engine_is_auto_unless_the_environment_names_an_engine() -> None:
    assert calibration.requested_engine({}) == AUTO
    assert calibration.requested_engine({"VISUALIZR_CPU_ENGINE": " OpenVINO "}) == OPENVINO
    assert Settings.from_env({"VISUALIZR_CPU_ENGINE": "onnxruntime"}).cpu_engine == ONNXRUNTIME
    assert calibration.requested_engine({"VISUALIZR_CPU_ENGINE": "torch"}) == TORCH
    assert calibration.requested_engine({"VISUALIZR_CPU_ENGINE": "onnxruntime-batch-split"}) == ONNXRUNTIME_BATCH_SPLIT
    with pytest.raises(ValueError, match="must be one of onnxruntime, openvino, torch, onnxruntime-batch-split, auto"):
        Settings.from_env({"VISUALIZR_CPU_ENGINE": "tensorflow"})


def test_measure_interleaves_the_engines_round_by_round_in_a_rotating_order() -> None:
    order: list[str] = []
    ms = calibration.measure({"a": lambda: order.append("a"), "b": lambda: order.append("b")}, rounds=3)
    assert order == ["a", "b"] + ["a", "b", "b", "a", "a", "b"]  # one warm-up each, then rounds, each first in turn
    assert set(ms) == {"a", "b"} and all(value >= 0 for value in ms.values())
    order.clear()
    calibration.measure({"a": lambda: order.append("a"), "b": lambda: order.append("b")}, rounds=3, budget_s=0)
    assert order == ["a", "b", "a", "b"]  # over its time budget: one round still


def _key(**changes: object) -> calibration.CalibrationKey:
    key = calibration.CalibrationKey("EPYC", "f1a9", 2, {"onnxruntime": "1.0"}, {}, {"x": [2, 3]}, 2, 10, 1)
    return replace(key, **changes)


def test_calibration_is_cached_under_its_key_and_redone_when_any_part_changes(tmp_path: Path) -> None:
    cache = tmp_path / "build" / "cpu_engines" / "m.json"
    runs: list[int] = []

    def calls() -> dict:
        runs.append(1)
        return {"onnxruntime": lambda: None, "openvino": lambda: None}

    first, measured = calibration.calibrate(_key(), cache, calls)
    assert measured and len(runs) == 1 and calibration.read_calibration(cache) == first
    again, measured = calibration.calibrate(_key(), cache, calls)
    assert not measured and again == first and len(runs) == 1
    changes = [{"processor": "Xeon"}, {"cpu_flags": "00"}, {"cores": 4}, {"engines": {"onnxruntime": "1.1"}},
               {"engine_options": {"onnxruntime": {"spin": "1"}}}, {"shapes": {"x": [4, 3]}}, {"threads": 1},
               {"engines": {"onnxruntime": "1.0", "torch": "2.13.0"}}, {"onnx_size": 11}, {"onnx_mtime_ns": 2},
               {"torchscript_size": 12}, {"torchscript_mtime_ns": 3},
               {"candidates": [ONNXRUNTIME_BATCH_SPLIT]}]  # fmt: skip
    for count, change in enumerate(changes, start=2):
        _, measured = calibration.calibrate(_key(**change), cache, calls)
        assert measured and len(runs) == count, change
    cache.write_text("{not json")
    _, measured = calibration.calibrate(_key(), cache, calls)
    assert measured and json.loads(cache.read_text())["key"]["processor"] == "EPYC"


def test_calibration_chooses_the_fastest_and_the_override_wins() -> None:
    measured = calibration.Calibration(_key(), {"onnxruntime": 190.0, "openvino": 166.0})
    assert measured.fastest == OPENVINO
    assert calibration.engine_for(AUTO, measured) == OPENVINO
    assert calibration.engine_for(ONNXRUNTIME, measured) == ONNXRUNTIME
    assert calibration.engine_for(AUTO, None) == ONNXRUNTIME  # nothing measured: the default engine


def test_another_engine_replaces_onnxruntime_only_when_clearly_faster() -> None:
    """Within ``SWITCH_MARGIN`` (a noisy measurement) onnxruntime stays: 86 vs 95 ms is a coin toss under load."""
    close = calibration.Calibration(_key(), {"onnxruntime": 95.0, "openvino": 86.0})
    assert close.fastest == OPENVINO and close.chosen == ONNXRUNTIME
    assert calibration.engine_for(AUTO, close) == ONNXRUNTIME
    clear = calibration.Calibration(_key(), {"onnxruntime": 100.0, "openvino": 89.0})
    assert clear.chosen == OPENVINO == calibration.engine_for(AUTO, clear)


def test_calibrations_wait_for_each_other_and_reuse_what_the_first_measured(tmp_path: Path) -> None:
    """Two stubs calibrating one network at once: the second waits for the lock and takes the first's cache."""
    cache = tmp_path / "cpu_engines" / "net.json"
    cache.parent.mkdir()
    measured_by: list[str] = []

    def slow_calls(name: str):
        def calls():
            measured_by.append(name)
            time.sleep(0.3)
            return {"onnxruntime": lambda: None}

        return calls

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        first = pool.submit(calibration.calibrate, _key(), cache, slow_calls("first"))
        time.sleep(0.05)
        second = pool.submit(calibration.calibrate, _key(), cache, slow_calls("second"))
        (one, measured_one), (two, measured_two) = first.result(), second.result()
    assert measured_by == ["first"] and (measured_one, measured_two) == (True, False) and one.ms == two.ms


@pytest.fixture
def small_repository(model_repository: Path, tmp_path: Path) -> Path:
    """A repository holding the demo's text encoder and its default request, in a folder of its own."""
    repository = tmp_path / "model_repository"
    shutil.copytree(model_repository / TEXT_ENCODER, repository / TEXT_ENCODER)
    inputs = model_repository.parent / "build" / "perf_inputs" / "animatediff"
    target = tmp_path / "build" / "perf_inputs" / "animatediff"
    target.mkdir(parents=True)
    shutil.copy(inputs / "manifest.json", target)
    shutil.copy(inputs / f"{TEXT_ENCODER}.default.json", target)
    return repository


def test_a_component_is_served_by_its_measured_engine_cached_then_by_the_override(small_repository: Path) -> None:
    config = read_config(small_repository / TEXT_ENCODER, None)
    onnx_path = small_repository / TEXT_ENCODER / "1" / ONNX_FILENAME
    cache = calibration.calibration_path(small_repository, TEXT_ENCODER)
    model, measured = calibrated_model(config, onnx_path, small_repository, env={})
    assert measured is not None and set(measured.ms) == set(ENGINE_NAMES)
    assert model.engine.name == measured.chosen and cache.is_file()
    assert measured.key.shapes == {"input_ids": [2, 77]} and measured.key.engines.keys() == set(ENGINE_NAMES)
    assert calibration.served_engine(small_repository, TEXT_ENCODER, AUTO) == (measured.chosen, measured.ms)
    written = cache.stat().st_mtime_ns
    _, cached = calibrated_model(config, onnx_path, small_repository, env={})
    assert cached == measured and cache.stat().st_mtime_ns == written  # not measured again
    os.utime(onnx_path, ns=(written, written + 1))  # a new ONNX file: measured again
    _, remeasured = calibrated_model(config, onnx_path, small_repository, env={})
    assert remeasured is not None and remeasured.key.onnx_mtime_ns == written + 1
    for engine in ENGINE_NAMES:
        model, none = calibrated_model(config, onnx_path, small_repository, env={"VISUALIZR_CPU_ENGINE": engine})
        assert model.engine.name == engine and none is None
        assert calibration.served_engine(small_repository, TEXT_ENCODER, engine)[0] == engine


def test_a_requested_engine_reads_the_default_request_only_to_warm_up_torch(
    small_repository: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = read_config(small_repository / TEXT_ENCODER, None)
    onnx_path = small_repository / TEXT_ENCODER / "1" / ONNX_FILENAME
    reads, runs = [], []
    default_inputs = calibration.default_inputs
    monkeypatch.setattr(calibration, "default_inputs", lambda *a: reads.append(1) or default_inputs(*a))
    for engine in (ONNXRUNTIME, OPENVINO):
        calibrated_model(config, onnx_path, small_repository, env={"VISUALIZR_CPU_ENGINE": engine})
    assert reads == []  # their first call is as fast as the next: nothing to read at start
    run = OnnxComponentModel.run
    monkeypatch.setattr(OnnxComponentModel, "run", lambda self, feeds: runs.append(1) or run(self, feeds))
    calibrated_model(config, onnx_path, small_repository, env={"VISUALIZR_CPU_ENGINE": TORCH})
    assert reads == [1] and len(runs) == 2  # TorchScript's two optimizing calls, before the first request


def test_a_start_with_a_cached_calibration_imports_only_the_engine_it_serves_with(small_repository: Path) -> None:
    """torch is imported by a stub's first start (a candidate) and afterwards only where it was chosen."""
    import subprocess
    import sys

    config = read_config(small_repository / TEXT_ENCODER, None)
    onnx_path = small_repository / TEXT_ENCODER / "1" / ONNX_FILENAME
    _, measured = calibrated_model(config, onnx_path, small_repository, env={})
    assert measured is not None and set(measured.ms) == set(ENGINE_NAMES)
    cache = calibration.calibration_path(small_repository, TEXT_ENCODER)
    calibration.write_calibration(cache, replace(measured, ms={ONNXRUNTIME: 1.0, OPENVINO: 2.0, TORCH: 3.0}))
    code = (
        "import sys; from pathlib import Path; from benchmarks.cpu_engines import read_config; "
        "from visualizr.triton.component_model import calibrated_model; "
        f"repository = Path({str(small_repository)!r}); config = read_config(repository / {TEXT_ENCODER!r}, None); "
        f"model, _ = calibrated_model(config, Path({str(onnx_path)!r}), repository, env={{}}); "
        "print(model.engine.name, *sorted(m for m in ('torch', 'openvino', 'onnxruntime') if m in sys.modules))"
    )
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == [ONNXRUNTIME, ONNXRUNTIME]


def test_a_network_without_a_torchscript_file_has_no_torch_candidate(small_repository: Path) -> None:
    """A network the export could not trace faithfully: calibrated among the ONNX engines, its key says so."""
    (small_repository / TEXT_ENCODER / "1" / TORCHSCRIPT_FILENAME).unlink()
    config = read_config(small_repository / TEXT_ENCODER, None)
    onnx_path = small_repository / TEXT_ENCODER / "1" / ONNX_FILENAME
    _, measured = calibrated_model(config, onnx_path, small_repository, env={})
    assert measured is not None and TORCH not in measured.ms and set(measured.ms) == set(ENGINE_NAMES) - {TORCH}
    assert measured.key.torchscript_size == measured.key.torchscript_mtime_ns == 0
    with pytest.raises(FileNotFoundError, match="TorchScript model not found"):
        calibrated_model(config, onnx_path, small_repository, env={"VISUALIZR_CPU_ENGINE": TORCH})


@pytest.mark.parametrize("batch, frames, height, width", [(1, 16, 24, 16), (3, 7, 13, 11)])
def test_torch_and_the_batch_split_match_onnxruntime_at_shapes_the_trace_was_not_made_at(
    model_repository: Path, batch: int, frames: int, height: int, width: int
) -> None:
    """The UNet was traced at batch 2 and 5 frames (onnx_export.trace_case): other batches, clip lengths and
    latent sizes run the same graph, not one with the traced shapes baked in."""
    import numpy as np

    model = "animatediff_unet"
    config = read_config(model_repository / model, None)
    dtypes = {spec.name: spec.dtype for spec in config.inputs}
    feeds = calibration.default_inputs(model_repository, model, dtypes, batched=True)
    assert feeds is not None
    shape = (batch, 4, frames, height, width)
    sample = np.random.default_rng(batch).standard_normal(shape, dtype=np.float32)
    feeds = {name: np.concatenate([array[:1]] * batch) for name, array in feeds.items()} | {"sample": sample}
    engines = [ONNXRUNTIME, TORCH, ONNXRUNTIME_BATCH_SPLIT]
    calls = engine_calls(config, model_repository / model / "1" / ONNX_FILENAME, feeds, engines)
    expected = calls[ONNXRUNTIME][1]()
    for engine in engines[1:]:
        actual = calls[engine][1]()
        for name, reference in expected.items():
            assert actual[name].shape == reference.shape == shape
            assert relative_error(actual[name], reference) <= MAX_RELATIVE_ERROR, (engine, name)


def test_without_a_default_request_a_component_is_served_by_onnxruntime_unmeasured(small_repository: Path) -> None:
    shutil.rmtree(small_repository.parent / "build")
    config = read_config(small_repository / TEXT_ENCODER, None)
    model, measured = calibrated_model(config, small_repository / TEXT_ENCODER / "1" / ONNX_FILENAME,
                                       small_repository, env={})  # fmt: skip
    assert model.engine.name == ONNXRUNTIME and measured is None
    assert calibration.served_engine(small_repository, TEXT_ENCODER, AUTO) == (None, {})


def test_onnxruntime_sessions_do_not_busy_wait_between_calls(model_repository: Path) -> None:
    engine = OnnxRuntimeEngine(model_repository / TEXT_ENCODER / "1" / ONNX_FILENAME, 2)
    options = engine.session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.intra_op_num_threads == 2


class _RecordingEngine:
    """A fake engine (pure logic under test: the split): doubles ``x``, records each call's batch and overlap."""

    name = ONNXRUNTIME
    input_ranks = {"x": 2, "t": 1}
    output_names = frozenset({"y"})

    def __init__(self) -> None:
        self.batches: list[list[float]] = []
        self.running = self.most_at_once = 0
        self._lock = threading.Lock()

    def run(self, outputs, feeds):
        with self._lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        time.sleep(0.05)
        with self._lock:
            self.running -= 1
            self.batches.append(feeds["x"][:, 0].tolist())
        return [feeds["x"] * 2]


def test_batch_split_runs_the_slices_of_a_batch_at_once_and_joins_them_in_order() -> None:
    import numpy as np

    fake = _RecordingEngine()
    engine = BatchSplitEngine(fake, ONNXRUNTIME_BATCH_SPLIT, workers=2)
    x, t = np.arange(6, dtype=np.float32).reshape(3, 2), np.array([10, 20, 30], dtype=np.float32)
    (y,) = engine.run(["y"], {"x": x, "t": t})
    np.testing.assert_array_equal(y, x * 2)
    assert sorted(fake.batches) == [[0.0, 2.0], [4.0]] and fake.most_at_once == 2  # 3 = 2 + 1, side by side
    fake.batches.clear()
    engine.run(["y"], {"x": x[:1], "t": t[:1]})  # one sample: one call
    engine.run(["y"], {"x": x, "t": t[:2]})  # no common batch: one call
    engine.run(["y"], {"x": x, "t": np.float32(1)})  # a scalar input: one call
    assert fake.batches == [[0.0], [0.0, 2.0, 4.0], [0.0, 2.0, 4.0]]
    single = BatchSplitEngine(_RecordingEngine(), ONNXRUNTIME_BATCH_SPLIT, workers=1)
    single.run(["y"], {"x": x, "t": t})
    assert single._engine.batches == [[0.0, 2.0, 4.0]]  # one worker: never split


def test_the_batch_split_is_a_candidate_only_for_batch_first_networks_with_threads_to_share() -> None:
    installed = {ONNXRUNTIME: "1", OPENVINO: "2"}
    assert calibration.calibration_candidates(installed, batched=True, threads=2) == [
        ONNXRUNTIME, OPENVINO, ONNXRUNTIME_BATCH_SPLIT]  # fmt: skip
    assert calibration.calibration_candidates(installed, batched=True, threads=0)[-1] == ONNXRUNTIME_BATCH_SPLIT
    assert calibration.calibration_candidates(installed, batched=False, threads=2) == [ONNXRUNTIME, OPENVINO]
    assert calibration.calibration_candidates(installed, batched=True, threads=1) == [ONNXRUNTIME, OPENVINO]
    assert calibration.calibration_candidates({OPENVINO: "2"}, batched=True, threads=2) == [OPENVINO]


def test_the_export_calibrates_every_cpu_network_once_and_a_start_then_measures_nothing(
    small_repository: Path, model_repository: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from visualizr.triton.component_model import calibrate_components

    shutil.copytree(model_repository / "animatediff", small_repository / "animatediff")  # its model card
    measured = calibrate_components(small_repository)
    assert list(measured) == [TEXT_ENCODER]  # the card's component models that were exported here
    assert measured[TEXT_ENCODER] is not None and set(measured[TEXT_ENCODER].ms) == set(ENGINE_NAMES)
    assert calibrate_components(small_repository) == measured  # cached
    from visualizr.export.calibrate import main as export_calibrate

    assert export_calibrate([str(small_repository)]) == 0
    assert f"CPU engine of {TEXT_ENCODER}: {measured[TEXT_ENCODER].chosen} (ms per call: " in capsys.readouterr().out
    monkeypatch.setattr(calibration, "measure", lambda *a, **k: pytest.fail("measured again"))
    config = read_config(small_repository / TEXT_ENCODER, None)
    model, served = calibrated_model(config, small_repository / TEXT_ENCODER / "1" / ONNX_FILENAME, small_repository,
                                     env={})  # fmt: skip
    assert served == measured[TEXT_ENCODER] and model.engine.name == served.chosen
