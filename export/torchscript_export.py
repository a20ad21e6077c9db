"""TorchScript export of one network spec (the torch CPU engine's file): ``torch.jit.trace`` of the same wrapper
the ONNX export traces, checked against the eager wrapper at the ONNX verification shapes (batch and sizes it was
not traced at: a trace that baked one in fails there and the network has no torch candidate).

The file records its tensor names and input ranks (``TORCHSCRIPT_IO_RECORD``) so the engine needs no spec. A
second trace in one process is not byte-identical (TorchScript numbers the class names it mangles per process): the
file is reused by its cache key, not by comparing bytes.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from visualizr.export.files import write_if_changed
from visualizr.export.fingerprint import EXPORT_DIR, hash_files, hash_json
from visualizr.export.onnx_export import export_code_files, state_dict_hash, verify_against_torch
from visualizr.export.specs import NetworkSpec, ShapeCase
from visualizr.pipeline.cpu_engines import TORCHSCRIPT_IO_RECORD


def torchscript_cache_key(spec: NetworkSpec, network: Any) -> str:
    """Hash of the weights, the spec, the export code and torch's version: equal keys mean an identical file."""
    import torch

    code = hash_files([*export_code_files(spec), EXPORT_DIR / "torchscript_export.py"])
    return hash_json(
        {"weights": state_dict_hash(network), "spec": spec.describe(), "code": code, "torch": torch.__version__}
    )


def io_record(spec: NetworkSpec) -> str:
    """The input names in order with their ranks, and the output names."""
    return json.dumps({"inputs": [[t.name, len(t.axes)] for t in spec.inputs], "outputs": spec.output_names})


def export_torchscript(spec: NetworkSpec, network: Any, path: Path, case: ShapeCase) -> bool:
    """Trace ``spec.wrapper(network)`` at ``case`` and save it to ``path`` (left alone when unchanged).
    Returns whether ``path`` was (re)written."""
    import torch

    wrapper = spec.wrapper(network).eval()
    with torch.no_grad():
        traced = torch.jit.trace(wrapper, spec.sample_inputs(case), check_trace=False)
    buffer = io.BytesIO()
    torch.jit.save(traced, buffer, _extra_files={TORCHSCRIPT_IO_RECORD: io_record(spec)})
    return write_if_changed(path, buffer.getvalue())


def verify_torchscript(spec: NetworkSpec, network: Any, path: Path, cases: tuple[ShapeCase, ...]) -> list[float]:
    """Relative error of the saved trace against the eager wrapper per case; raises AssertionError if one exceeds
    ``MAX_RELATIVE_ERROR`` or a shape differs."""
    import torch

    loaded = torch.jit.load(str(path), map_location="cpu").eval()

    def run(inputs: tuple[Any, ...]) -> Any:
        with torch.inference_mode():
            return loaded(*inputs).numpy()

    return verify_against_torch(spec, network, cases, run, "TorchScript")
