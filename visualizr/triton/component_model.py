"""A component model's logic, importable without a Triton stub: one network on the CPU engine chosen for it
(``calibrated_model``), run on numpy feeds shaped as Triton passes them (``visualizr.triton.onnx_component`` is
the stub's adapter over it; ``benchmarks.cpu_engines`` times it per engine).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import partial
from pathlib import Path

import numpy as np

from visualizr.model_card import MODEL_CARD_FILENAME, read_model_card
from visualizr.names import INTRA_OP_THREADS_PARAMETER, ONNX_FILENAME
from visualizr.pipeline import engine_calibration as calibration
from visualizr.pipeline.cpu_engines import AUTO, ONNXRUNTIME, Engine, open_engine
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

    def __init__(self, config: ModelConfig, onnx_path: Path, engine_name: str = ONNXRUNTIME) -> None:
        self.config = config
        self.engine: Engine = open_engine(engine_name, onnx_path, config.int_parameter(INTRA_OP_THREADS_PARAMETER, 0))
        missing = [s.name for s in config.inputs if s.name not in self.engine.input_ranks]
        missing += [s.name for s in config.outputs if s.name not in self.engine.output_names]
        if missing:
            raise ModelConfigError(f"{config.name}: tensors {missing} are not in {onnx_path}")
        self._input_rank = dict(self.engine.input_ranks)
        batch = 1 if config.max_batch_size > 0 else 0
        self._output_rank = {s.name: batch + len(s.dims) for s in config.outputs}

    def run(self, feeds: Feeds) -> Outputs:
        inputs = {
            spec.name: match_rank(np.asarray(feeds[spec.name], dtype=spec.dtype), self._input_rank[spec.name])
            for spec in self.config.inputs
        }
        names = [spec.name for spec in self.config.outputs]
        results = self.engine.run(names, inputs)
        return {
            spec.name: match_rank(np.asarray(result, dtype=spec.dtype), self._output_rank[spec.name])
            for spec, result in zip(self.config.outputs, results, strict=True)
        }

    def warm_up(self, feeds: Callable[[], Feeds | None]) -> OnnxComponentModel:
        """Run ``feeds()`` as many times as the engine needs before a call is as fast as the next, where that is more
        than once (a TorchScript graph's first two calls take seconds; the first requests should not); ``feeds`` is
        called only then (reading the export's default request is start-up work the other engines need not do)."""
        if self.engine.warm_up_calls > 1 and (inputs := feeds()) is not None:
            for _ in range(self.engine.warm_up_calls):
                self.run(inputs)
        return self

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


def engine_calls(
    config: ModelConfig, onnx_path: Path, feeds: Feeds, engines: Iterable[str]
) -> dict[str, tuple[OnnxComponentModel, Callable[[], Outputs]]]:
    """Per engine that can open the network: the model it serves, warmed up on ``feeds`` (all but the last warm-up
    call: ``engine_calibration.measure`` makes that one), and a call of it on ``feeds``."""
    opened = {}
    for name in engines:
        try:
            opened[name] = OnnxComponentModel(config, onnx_path, name)
        except Exception:  # an engine that cannot open this network is not a candidate for it
            continue
        for _ in range(opened[name].engine.warm_up_calls - 1):
            opened[name].run(feeds)
    return {name: (model, partial(model.run, feeds)) for name, model in opened.items()}


def calibrated_model(
    config: ModelConfig, onnx_path: Path, model_repository: Path, env: Mapping[str, str] | None = None
) -> tuple[OnnxComponentModel, calibration.Calibration | None]:
    """The model served by the engine ``VISUALIZR_CPU_ENGINE`` asks for, or (auto) by the one measured fastest on
    this machine at the card's default shapes (cached; see engine_calibration), and that measurement."""
    requested = calibration.requested_engine(env)
    if requested != AUTO:
        feeds = partial(_default_feeds, config, model_repository)
        return OnnxComponentModel(config, onnx_path, requested).warm_up(feeds), None
    measured, opened = _calibration(config, onnx_path, model_repository)
    if measured is None:  # nothing to measure with: the reference engine
        return OnnxComponentModel(config, onnx_path, calibration.engine_for(AUTO, None)), None
    chosen = measured.chosen
    if chosen in opened:  # measured now: warmed up
        return opened[chosen], measured
    model = OnnxComponentModel(config, onnx_path, chosen)
    return model.warm_up(partial(_default_feeds, config, model_repository)), measured


def _default_feeds(config: ModelConfig, model_repository: Path) -> Feeds | None:
    dtypes = {spec.name: spec.dtype for spec in config.inputs}
    return calibration.default_inputs(model_repository, config.name, dtypes, config.max_batch_size > 0)


def _calibration(
    config: ModelConfig, onnx_path: Path, model_repository: Path
) -> tuple[calibration.Calibration | None, dict[str, OnnxComponentModel]]:
    """The network's cached calibration, else one measured now, and the models a measurement opened (warmed up);
    None without the export's default request to measure with."""
    feeds = _default_feeds(config, model_repository)
    if feeds is None:
        return None, {}
    threads = config.int_parameter(INTRA_OP_THREADS_PARAMETER, 0)
    key = calibration.CalibrationKey.here(onnx_path, feeds, threads, batched=config.max_batch_size > 0)
    opened: dict[str, OnnxComponentModel] = {}

    def calls() -> dict[str, Callable[[], Outputs]]:
        candidates = engine_calls(config, onnx_path, feeds, key.candidates)
        opened.update({name: model for name, (model, _) in candidates.items()})
        return {name: call for name, (_, call) in candidates.items()}

    measured, _ = calibration.calibrate(key, calibration.calibration_path(model_repository, config.name), calls)
    return measured, opened


def read_config(model_dir: Path, threads: int | None) -> ModelConfig:
    """A component's config.pbtxt as Triton hands it to the stub (JSON), its threads replaced when given."""
    from google.protobuf import json_format, text_format  # the export's and benchmarks' (a stub gets JSON)
    from tritonclient.grpc import model_config_pb2

    config = text_format.Parse((model_dir / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    if threads is not None:
        config.parameters[INTRA_OP_THREADS_PARAMETER].string_value = str(threads)
    return ModelConfig.parse(json_format.MessageToDict(config, preserving_proto_field_name=True))


def component_models(repository: Path, wanted: list[str] | None) -> list[str]:
    """The component models of the wanted model cards (their Triton models but the pipeline model)."""
    names = []
    for card_path in sorted(repository.glob(f"*/{MODEL_CARD_FILENAME}")):
        card = read_model_card(card_path)
        if not wanted or card.id in wanted:
            exported = [m for m in card.triton_models if (repository / m / "1" / ONNX_FILENAME).is_file()]
            names += [m for m in exported if m != card.id]
    return names


def calibrate_components(
    repository: Path, wanted: list[str] | None = None
) -> dict[str, calibration.Calibration | None]:
    """Each component model's calibration (cached, else measured now, one network at a time): what the export runs
    on a quiet machine, so that a server's stubs find it instead of measuring while their neighbours start."""
    return {
        model: _calibration(read_config(repository / model, None), repository / model / "1" / ONNX_FILENAME,
                            repository)[0]
        for model in component_models(repository, wanted)
    }  # fmt: skip
