"""ONNX export of one network spec with the legacy (TorchScript) exporter, verified with onnxruntime.

The dynamo exporter of torch 2.13 mistranslates ``repeat_interleave`` with symbolic repeats (the UNets
repeat their conditioning per frame), hence ``dynamo=False``.
"""

from __future__ import annotations

import hashlib
import inspect
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from visualizr.export.files import write_if_changed
from visualizr.export.fingerprint import EXPORT_DIR, hash_files, hash_json
from visualizr.export.specs import NetworkSpec, ShapeCase

OPSET = 17
MAX_RELATIVE_ERROR = 1e-4
# Protobuf cannot hold more than 2 GiB: larger models keep their weights in one file next to model.onnx.
EXTERNAL_DATA_THRESHOLD_BYTES = 1_800_000_000
EXTERNAL_DATA_FILENAME = "model.onnx.data"


def trace_case(downsample_factor: int) -> ShapeCase:
    """Distinct, non-trivial sizes for tracing, so that no size is mistaken for another or for a constant.

    The latent height and width are deliberately NOT multiples of the UNet's downsampling factor: the UNet then
    takes its general path (upsampling to the skip connection's size instead of by a fixed factor 2), and that is
    the path the trace records, so the ONNX graph accepts every latent size, aligned or not."""
    return ShapeCase(batch=2, frames=5, latent_height=3 * downsample_factor + 1, latent_width=5 * downsample_factor + 1)


def verification_cases(downsample_factor: int) -> tuple[ShapeCase, ShapeCase]:
    """Two shapes at batch 2 and 3 that differ in every dynamic axis: one aligned to the UNet's downsampling
    factor, one not."""
    return (
        ShapeCase(batch=2, frames=4, latent_height=2 * downsample_factor, latent_width=4 * downsample_factor),
        ShapeCase(batch=3, frames=7, latent_height=5 * downsample_factor - 1, latent_width=3 * downsample_factor + 1),
    )


def state_dict_hash(network: Any) -> str:
    """Content hash of a network's weights (names, shapes, dtypes and bytes)."""
    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(network.state_dict().items()):
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def export_code_files(spec: NetworkSpec) -> list[Path]:
    """The code that shapes a spec's ONNX file: the shared specs, wrappers and exporter, and each module that
    defines the spec or a spec class it derives from, with that family's wrappers next to it."""
    spec_files = {
        Path(inspect.getfile(cls)).resolve() for cls in type(spec).__mro__ if issubclass(cls, NetworkSpec)
    }
    files = {EXPORT_DIR / n for n in ("specs.py", "wrappers.py", "onnx_export.py")} | spec_files
    return sorted(f for f in files | {f.parent / "wrappers.py" for f in spec_files} if f.is_file())


def onnx_cache_key(spec: NetworkSpec, network: Any) -> str:
    """Hash of the weights, the spec and the export code: equal keys mean an identical ONNX file."""
    code = hash_files(export_code_files(spec))
    return hash_json({"weights": state_dict_hash(network), "spec": spec.describe(), "code": code, "opset": OPSET})


def export_onnx(spec: NetworkSpec, network: Any, path: Path, case: ShapeCase) -> bool:
    """Export ``network`` through ``spec.wrapper`` to ``path`` (plus ``model.onnx.data`` when it is large).

    The export is deterministic; an unchanged file is left alone. Returns whether ``path`` was (re)written."""
    import onnx
    import torch

    wrapper = spec.wrapper(network).eval()
    inputs = spec.sample_inputs(case)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".onnx-export-") as tmp:
        exported = Path(tmp) / path.name
        with torch.no_grad():
            torch.onnx.export(
                wrapper,
                inputs,
                str(exported),
                input_names=spec.input_names,
                output_names=spec.output_names,
                dynamic_axes=spec.dynamic_axes(),
                opset_version=OPSET,
                do_constant_folding=True,
                dynamo=False,
            )
        files = list(Path(tmp).iterdir())
        if len(files) == 1 and exported.stat().st_size < EXTERNAL_DATA_THRESHOLD_BYTES:
            (path.parent / EXTERNAL_DATA_FILENAME).unlink(missing_ok=True)
            return write_if_changed(path, exported.read_bytes())
        # Large model: the exporter wrote one file per tensor; gather them into a single external data file.
        model = onnx.load(str(exported), load_external_data=True)
        onnx.save_model(
            model,
            str(path),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=EXTERNAL_DATA_FILENAME,
        )
    return True


def relative_error(actual: Any, expected: Any) -> float:
    """max|a - b| / max|b|."""
    import numpy as np

    scale = float(np.max(np.abs(expected)))
    return float(np.max(np.abs(actual - expected))) / (scale if scale > 0 else 1.0)


def verify_onnx(
    spec: NetworkSpec, network: Any, path: Path, cases: tuple[ShapeCase, ...], threads: int | None = None
) -> list[float]:
    """Relative error of onnxruntime against torch per case; raises if one exceeds ``MAX_RELATIVE_ERROR``."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(inputs: tuple[Any, ...]) -> Any:
        (output,) = session.run(None, {n: t.numpy() for n, t in zip(spec.input_names, inputs, strict=True)})
        return output

    return verify_against_torch(spec, network, cases, run, "ONNX")


def verify_against_torch(
    spec: NetworkSpec, network: Any, cases: tuple[ShapeCase, ...], run: Callable[[tuple[Any, ...]], Any], label: str
) -> list[float]:
    """Relative error of ``run`` (an exported file's output, numpy) against the eager wrapper per case, on the
    spec's sample inputs; raises AssertionError on another shape or an error above ``MAX_RELATIVE_ERROR``."""
    import torch

    wrapper = spec.wrapper(network).eval()
    errors = []
    for seed, case in enumerate(cases, start=1):
        inputs = spec.sample_inputs(case, seed=seed)
        with torch.no_grad():
            expected = wrapper(*inputs).numpy()
        actual = run(inputs)
        if actual.shape != expected.shape:
            raise AssertionError(f"{spec.component} {case}: {label} shape {actual.shape} != torch {expected.shape}")
        errors.append(relative_error(actual, expected))
        if errors[-1] > MAX_RELATIVE_ERROR:
            raise AssertionError(f"{spec.component} {case}: relative error {errors[-1]:.2e} > {MAX_RELATIVE_ERROR}")
    return errors
