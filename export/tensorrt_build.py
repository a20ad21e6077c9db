"""TensorRT engines from the exported ONNX files: one engine per component, one optimisation profile from the
model card's ranges (the spec classes' ``profiles``), FP16 by default, a timing cache shared by the builds, and a
manifest beside each engine (``visualizr.engines.manifest``).

Each engine is decided on its own, whether its ONNX was just exported or reused: it is rebuilt exactly when its
key (ONNX hash, profile, precision, TensorRT version, GPU) differs from the manifest's, and the reasons are
reported. ``tensorrt`` only exists on GPU machines (``pip install '.[tensorrt]'``); it is imported when needed.
"""

from __future__ import annotations

import datetime
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from visualizr.engines import environment as machine
from visualizr.engines.environment import Environment, normalise_version
from visualizr.engines.manifest import (
    PLAN_FILENAME,
    EngineKey,
    EngineManifest,
    Gpu,
    Profile,
    onnx_fingerprint,
    read_manifest,
    write_manifest,
)
from visualizr.export.specs import NetworkSpec, ShapeLimits
from visualizr.names import ONNX_FILENAME

WORKSPACE_BYTES = 8 << 30
# Builder flags per precision. FP8 keeps FP16 for the layers without FP8 quantisation.
PRECISION_FLAGS = {"fp32": (), "fp16": ("FP16",), "bf16": ("BF16",), "fp8": ("FP8", "FP16")}


def engine_profile(spec: NetworkSpec, limits: ShapeLimits) -> Profile:
    """Input name -> [min, opt, max] shapes of the one optimisation profile of an engine."""
    return {name: [list(shape) for shape in shapes] for name, shapes in spec.profiles(limits).items()}


def require_tensorrt() -> Any:
    """The tensorrt module, or a RuntimeError that says how to install it."""
    try:
        import tensorrt
    except ImportError as exc:
        raise RuntimeError("the tensorrt backend needs the tensorrt package: pip install '.[tensorrt]'") from exc
    return tensorrt


def build_gpu(environment: Environment) -> Gpu:
    """The GPU the builder tunes for: CUDA device 0, when every visible GPU is the same model."""
    if not environment.gpus:
        raise RuntimeError("building TensorRT engines needs an NVIDIA GPU; none is visible (NVML)")
    if len(set(environment.gpus)) > 1:
        kinds = ", ".join(sorted({str(g) for g in environment.gpus}))
        raise RuntimeError(f"GPUs of different kinds are visible ({kinds}): set CUDA_VISIBLE_DEVICES to one kind")
    return environment.gpus[0]


def builder_environment() -> Environment:
    """This machine as the builder sees it: the tensorrt module's version and NVML's GPUs."""
    return Environment(normalise_version(require_tensorrt().__version__), machine.visible_gpus())


def timing_cache_path(repository: Path, tensorrt_version: str, gpu: Gpu) -> Path:
    """One timing cache per TensorRT version and GPU, a file at the repository root (Triton ignores files)."""
    slug = re.sub(r"[^a-z0-9]+", "-", gpu.name.lower()).strip("-")
    return repository / f".tensorrt-timing-{tensorrt_version}-{slug}-sm{gpu.compute_capability}.cache"


@dataclass
class EngineOutcome:
    built: bool
    reasons: list[str] = field(default_factory=list)  # why it was (re)built; empty when reused
    manifest_written: bool = False
    seconds: float = 0.0


@dataclass(frozen=True)
class EngineBuilder:
    """Builds (or keeps) the engines of one export: same precision, card ranges and timing cache for all."""

    repository: Path
    precision: str
    covers: dict[str, list[int]]  # visualizr.engines.check.card_ranges of the model card
    environment: Environment
    force: bool = False

    def ensure(self, version_dir: Path, spec: NetworkSpec, limits: ShapeLimits) -> EngineOutcome:
        """Reuse ``version_dir/model.plan`` when its manifest's key is the wanted one, else build it."""
        started = time.perf_counter()
        gpu = build_gpu(self.environment)
        previous = read_manifest(version_dir)
        onnx = onnx_fingerprint(version_dir, previous.onnx if previous else None)
        version = self.environment.tensorrt_version or "unknown"
        precision = engine_precision(spec, self.precision)
        wanted = EngineKey(onnx.sha256, engine_profile(spec, limits), precision, version, gpu)
        plan = version_dir / PLAN_FILENAME
        if previous is None or not plan.is_file():
            reasons = ["no engine yet" if not plan.is_file() else "the engine has no readable manifest"]
        else:
            reasons = previous.key.differences(wanted) + (["--force"] if self.force else [])
        if not reasons:
            stale_manifest = previous.covers != self.covers or previous.onnx != onnx
            if stale_manifest:  # same engine; the card's ranges or the ONNX file's mtime moved
                write_manifest(
                    version_dir, EngineManifest(wanted, onnx, self.covers, previous.built_at, previous.build_seconds)
                )
            return EngineOutcome(False, manifest_written=stale_manifest, seconds=time.perf_counter() - started)
        cache = timing_cache_path(self.repository, version, gpu)
        build_engine(version_dir / ONNX_FILENAME, plan, wanted.profile, precision, cache)
        seconds = time.perf_counter() - started
        built_at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        write_manifest(version_dir, EngineManifest(wanted, onnx, self.covers, built_at, round(seconds, 3)))
        return EngineOutcome(True, reasons, manifest_written=True, seconds=seconds)


def engine_precision(spec: NetworkSpec, requested: str) -> str:
    """The precision ``spec``'s engine is built in when ``requested`` is asked for: a spec may name the precisions
    its network tolerates (``engine_precisions``, e.g. T5's fp32 and bf16: fp16 overflows), the first one
    replacing any other."""
    allowed = getattr(spec, "engine_precisions", None)
    return requested if allowed is None or requested in allowed else allowed[0]


def has_fp8_quantisation(onnx_path: Path) -> bool:
    """Whether the ONNX graph carries Q/DQ nodes (what TensorRT needs to run layers in FP8)."""
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    return any(node.op_type in ("QuantizeLinear", "DequantizeLinear") for node in graph.node)


def build_engine(onnx_path: Path, plan_path: Path, profile: Profile, precision: str, timing_cache: Path) -> Path:
    """Parse ``onnx_path``, build one engine with ``profile`` in ``precision`` and write it to ``plan_path``;
    the timing cache is read before and written back after the build."""
    if precision not in PRECISION_FLAGS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {tuple(PRECISION_FLAGS)}")
    if precision == "fp8" and not has_fp8_quantisation(onnx_path):
        raise RuntimeError(
            f"--precision fp8 needs an FP8-quantised ONNX (Q/DQ nodes, e.g. from NVIDIA ModelOpt); {onnx_path} has "
            "none, so the engine would silently be FP16: build with --precision fp16"
        )
    trt = require_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    for flag in PRECISION_FLAGS[precision]:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    cache = config.create_timing_cache(timing_cache.read_bytes() if timing_cache.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    optimisation_profile = builder.create_optimization_profile()
    for name, (low, opt, high) in profile.items():
        optimisation_profile.set_shape(name, low, opt, high)
    config.add_optimization_profile(optimisation_profile)
    engine = builder.build_serialized_network(network, config)
    if engine is None:
        raise RuntimeError(f"TensorRT failed to build an engine from {onnx_path}")
    plan_path.parent.mkdir(parents=True, exist_ok=True)
    plan_path.write_bytes(bytes(engine))
    timing_cache.write_bytes(bytes(config.get_timing_cache().serialize()))
    return plan_path
