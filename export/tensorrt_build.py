"""TensorRT engines from the exported ONNX files, with the spec classes' optimisation profiles.

``tensorrt`` only exists on GPU machines (``pip install '.[tensorrt]'``); it is imported when needed.
"""

from __future__ import annotations

from pathlib import Path

from visualizr.export.specs import NetworkSpec, ShapeLimits

WORKSPACE_BYTES = 8 << 30


def engine_profiles(spec: NetworkSpec, limits: ShapeLimits) -> dict[str, tuple[tuple[int, ...], ...]]:
    """Input name -> (min, opt, max) shapes of the one optimisation profile of an engine."""
    return spec.profiles(limits)


def require_tensorrt():
    """The tensorrt module, or a RuntimeError that says how to install it."""
    try:
        import tensorrt
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise RuntimeError("the tensorrt backend needs the tensorrt package: pip install '.[tensorrt]'") from exc
    return tensorrt


def build_engine(onnx_path: Path, plan_path: Path, spec: NetworkSpec, limits: ShapeLimits, fp16: bool = True) -> Path:
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
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    for name, (low, opt, high) in engine_profiles(spec, limits).items():
        profile.set_shape(name, low, opt, high)
    config.add_optimization_profile(profile)
    engine = builder.build_serialized_network(network, config)
    if engine is None:
        raise RuntimeError(f"TensorRT failed to build an engine from {onnx_path}")
    plan_path.parent.mkdir(parents=True, exist_ok=True)
    plan_path.write_bytes(bytes(engine))
    return plan_path
