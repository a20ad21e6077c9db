"""Writes one model of any family (its component networks and its pipeline model) into the Triton repository.

Layout (see docs/ARCHITECTURE.md)::

    <repository>/<id>/              config.pbtxt, model_card.json, 1/model.py,
                                    1/assets/{pipeline.json, scheduler/, the family's other assets}
    <repository>/<id>_<component>/  config.pbtxt, 1/model.py, 1/model.onnx, 1/model.torchscript.pt
                                    (1/model.plan instead of model.py and the TorchScript file with TensorRT)

Every write is idempotent (unchanged files keep their mtime) and the ONNX and TorchScript exports are cached by
key, each on its own.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from visualizr import names
from visualizr.engines.check import card_ranges
from visualizr.engines.manifest import PLAN_FILENAME, manifest_path
from visualizr.export.build_stamp import ExportOptions, ModelStamp, read_stamps, write_stamp
from visualizr.export.family import LoadedModel, family_export
from visualizr.export.files import copy_tree_if_changed, write_if_changed
from visualizr.export.onnx_export import onnx_cache_key, verify_onnx
from visualizr.export.perf_inputs import write_perf_inputs
from visualizr.export.shims import COMPONENT_MODEL_PY, PIPELINE_MODEL_PY
from visualizr.export.specs import NetworkSpec, ShapeLimits
from visualizr.export.triton_config import BACKEND_TENSORRT, component_model_config, pipeline_model_config
from visualizr.families import get_family
from visualizr.model_card import MODEL_CARD_FILENAME
from visualizr.pipeline_config import PIPELINE_ASSETS_DIRNAME, PIPELINE_CONFIG_FILENAME

if TYPE_CHECKING:
    from visualizr.export.tensorrt_build import EngineBuilder

VERSION_DIR = "1"
CONFIG_FILENAME = "config.pbtxt"
MODEL_PY_FILENAME = "model.py"


@dataclass
class BuildReport:
    model_id: str
    written: list[Path] = field(default_factory=list)
    exported: list[str] = field(default_factory=list)  # Triton model names whose ONNX was (re)exported
    reused: list[str] = field(default_factory=list)  # ... whose cached ONNX matched
    traced: list[str] = field(default_factory=list)  # ... whose TorchScript file was (re)traced
    untraceable: dict[str, str] = field(default_factory=dict)  # ... -> why the trace is not faithful (no torch)
    verification: dict[str, list[float]] = field(default_factory=dict)  # relative errors per export
    seconds: dict[str, float] = field(default_factory=dict)
    engines_built: dict[str, list[str]] = field(default_factory=dict)  # Triton model name -> why it was built
    engines_reused: list[str] = field(default_factory=list)


class RepositoryWriter:
    """Writes files under the repository and remembers them for the build stamp."""

    def __init__(self, repository: Path, report: BuildReport) -> None:
        self.repository = repository
        self.report = report
        self.files: list[str] = []

    def track(self, path: Path, written: bool = True) -> None:
        self.files.append(str(path.relative_to(self.repository)))
        if written:
            self.report.written.append(path)

    def write(self, path: Path, data: bytes | str) -> None:
        self.track(path, write_if_changed(path, data))

    def mirror(self, source: Path, destination: Path) -> None:
        written = set(copy_tree_if_changed(source, destination))
        for file in sorted(p for p in source.rglob("*") if p.is_file()):
            target = destination / file.relative_to(source)
            self.track(target, target in written)


def _export_component(
    writer: RepositoryWriter,
    options: ExportOptions,
    model: LoadedModel,
    spec: NetworkSpec,
    previous: ModelStamp,
    keys: ModelStamp,
    engines: EngineBuilder | None,
) -> None:
    from visualizr.export.onnx_export import export_onnx

    model_name = names.component_model_name(options.id, spec.component)
    model_dir = options.repository / model_name
    onnx_path = model_dir / VERSION_DIR / names.ONNX_FILENAME
    network = model.networks[spec.component]
    key = onnx_cache_key(spec, network)
    keys.onnx_keys[model_name] = key
    started = time.perf_counter()
    if options.force or previous.onnx_keys.get(model_name) != key or not onnx_path.is_file():
        factor = spec.case_factor(model.unet_downsample_factor)
        changed = export_onnx(spec, network, onnx_path, spec.trace_case(factor))
        writer.report.verification[model_name] = verify_onnx(spec, network, onnx_path, spec.verification_cases(factor))
        writer.report.exported.append(model_name)
        writer.track(onnx_path, changed)
    else:
        writer.report.reused.append(model_name)
        writer.track(onnx_path, written=False)
    writer.report.seconds[model_name] = time.perf_counter() - started
    batched = get_family(model.config.family).network(spec.component).batched
    config = component_model_config(
        model_name,
        spec,
        options.backend,
        batched,
        model.config.unet_max_batch,
        instances_per_gpu=options.instances_per_gpu,
    )
    writer.write(model_dir / CONFIG_FILENAME, config.render())
    if engines is None:
        writer.write(model_dir / VERSION_DIR / MODEL_PY_FILENAME, COMPONENT_MODEL_PY)
        cached = None if options.force else previous.torchscript_keys.get(model_name)
        factor = spec.case_factor(model.unet_downsample_factor)
        torchscript = model_dir / VERSION_DIR / names.TORCHSCRIPT_FILENAME
        traced_key = _ensure_torchscript(writer, spec, network, torchscript, factor, cached)
        if traced_key is not None:
            keys.torchscript_keys[model_name] = traced_key
    else:  # decided on its own, whether the ONNX was just exported or reused; a tensorrt_plan has no model.py
        _ensure_engine(writer, engines, model_name, model_dir / VERSION_DIR, spec, model.limits)


def _ensure_torchscript(
    writer: RepositoryWriter, spec: NetworkSpec, network: Any, path: Path, factor: int, cached_key: str | None
) -> str | None:
    """The torch engine's TorchScript file at ``path`` (beside model.onnx), kept while its key is ``cached_key``;
    its key, or None (and no file) for a network whose trace does not match the eager network at the verification
    shapes."""
    from visualizr.export.torchscript_export import export_torchscript, torchscript_cache_key, verify_torchscript

    model_name = path.parent.parent.name
    key = torchscript_cache_key(spec, network)
    if key == cached_key and path.is_file():
        writer.track(path, written=False)
        return key
    started = time.perf_counter()
    try:
        changed = export_torchscript(spec, network, path, spec.trace_case(factor))
        verify_torchscript(spec, network, path, spec.verification_cases(factor))
    except (AssertionError, RuntimeError) as exc:  # not traceable faithfully: served by the ONNX engines only
        path.unlink(missing_ok=True)
        writer.report.untraceable[model_name] = f"{type(exc).__name__}: {exc}"
        return None
    writer.report.traced.append(model_name)
    writer.report.seconds[f"{model_name} torchscript"] = time.perf_counter() - started
    writer.track(path, changed)
    return key


def _ensure_engine(
    writer: RepositoryWriter,
    engines: EngineBuilder,
    model_name: str,
    version_dir: Path,
    spec: NetworkSpec,
    limits: ShapeLimits,
) -> None:
    for left in (MODEL_PY_FILENAME, names.TORCHSCRIPT_FILENAME):  # left by an onnxruntime build
        (version_dir / left).unlink(missing_ok=True)
    outcome = engines.ensure(version_dir, spec, limits)
    writer.track(version_dir / PLAN_FILENAME, outcome.built)
    writer.track(manifest_path(version_dir), outcome.manifest_written)
    if outcome.built:
        writer.report.engines_built[model_name] = outcome.reasons
    else:
        writer.report.engines_reused.append(model_name)
    writer.report.seconds[f"{model_name} engine"] = outcome.seconds


def _write_pipeline_model(writer: RepositoryWriter, options: ExportOptions, model: LoadedModel) -> None:
    import msgspec

    model_dir = options.repository / options.id
    assets = model_dir / VERSION_DIR / PIPELINE_ASSETS_DIRNAME
    family = get_family(model.config.family)
    writer.write(model_dir / CONFIG_FILENAME, pipeline_model_config(options.id, family, options.backend).render())
    writer.write(model_dir / MODEL_CARD_FILENAME, msgspec.json.format(msgspec.json.encode(model.card), indent=2))
    writer.write(model_dir / VERSION_DIR / MODEL_PY_FILENAME, PIPELINE_MODEL_PY)
    config = msgspec.json.format(msgspec.json.encode(model.config), indent=2)
    writer.write(assets / PIPELINE_CONFIG_FILENAME, config)
    with tempfile.TemporaryDirectory() as tmp:
        for dirname, asset in model.assets.items():
            asset.save_pretrained(str(Path(tmp) / dirname))
            writer.mirror(Path(tmp) / dirname, assets / dirname)


def build_repository(options: ExportOptions) -> BuildReport:
    """Export one model (any family) into the repository and stamp it."""
    engine_environment = None
    if options.backend == BACKEND_TENSORRT:
        from visualizr.export.tensorrt_build import build_gpu, builder_environment

        engine_environment = builder_environment()  # fail before spending minutes on the ONNX export
        build_gpu(engine_environment)
    report = BuildReport(model_id=options.id)
    started = time.perf_counter()
    model = family_export(options.family).load(options)
    report.seconds["load"] = time.perf_counter() - started

    options.repository.mkdir(parents=True, exist_ok=True)
    previous = read_stamps(options.repository).get(options.id, ModelStamp())
    writer = RepositoryWriter(options.repository, report)
    keys = ModelStamp()
    engines = None
    if engine_environment is not None:
        from visualizr.export.tensorrt_build import EngineBuilder

        engines = EngineBuilder(
            options.repository, options.precision, card_ranges(model.card), engine_environment, options.force
        )
    for spec in model.specs:
        _export_component(writer, options, model, spec, previous, keys, engines)
    _write_pipeline_model(writer, options, model)
    write_perf_inputs(options.repository, options.id, model.specs, model.limits)
    stamp = ModelStamp(options.build_key(), writer.files, keys.onnx_keys, keys.torchscript_keys)
    write_stamp(options.repository, options.id, stamp)
    report.seconds["total"] = time.perf_counter() - started
    return report
