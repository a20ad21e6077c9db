"""The CPU engines a component model can run its network with, behind one interface.

``onnxruntime`` (always there), ``openvino`` (same ONNX file, fp32) and ``torch`` (the TorchScript trace the
export saves beside the ONNX file), each imported only when opened so a component stub pays for the engine it runs
and nothing else. Which engine serves a network is decided by measurement
(``visualizr.pipeline.engine_calibration``), not here.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from pathlib import Path
from typing import Final, Protocol

import numpy as np

from visualizr.names import TORCHSCRIPT_FILENAME

ONNXRUNTIME: Final = "onnxruntime"
OPENVINO: Final = "openvino"
TORCH: Final = "torch"
ENGINE_NAMES: Final = (ONNXRUNTIME, OPENVINO, TORCH)
# onnxruntime with a batch's samples split across single-threaded calls run at once (``BatchSplitEngine``): for
# networks whose every input and output is batch-first (Triton's max_batch_size > 0).
ONNXRUNTIME_BATCH_SPLIT: Final = "onnxruntime-batch-split"
CPU_ENGINES: Final = (*ENGINE_NAMES, ONNXRUNTIME_BATCH_SPLIT)  # what VISUALIZR_CPU_ENGINE may name
AUTO: Final = "auto"  # VISUALIZR_CPU_ENGINE's default: the engine the calibration measured fastest
# Each engine's settings (part of the calibration's key: measured again when they change).
ENGINE_OPTIONS: Final[dict[str, dict[str, str]]] = {
    # No busy-waiting between calls: a pipeline's stubs take turns on the same few cores, and a pool spinning after
    # its call starves the next one (the in-process loop ran ~4x slower with it on a loaded 2-core machine).
    ONNXRUNTIME: {"session.intra_op.allow_spinning": "0"},
    # fp32 also on CPUs with bf16 (outputs match onnxruntime's), one request at a time.
    OPENVINO: {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"},
    # The traced graph as it is (freezing or optimize_for_inference measured no faster and not bit-exact), no
    # autograd, and OpenMP threads that sleep between calls: spinning, torch's UNet took 180 ms a call instead of 25
    # on a loaded 2-core machine, and slowed the stubs beside it (set before torch first loads: TorchScriptEngine).
    TORCH: {"OMP_WAIT_POLICY": "PASSIVE", "grad": "inference_mode"},
}
# The TorchScript file's own record of the tensor names it was traced with (inputs in order, with their ranks).
TORCHSCRIPT_IO_RECORD: Final = "visualizr_io.json"


class Engine(Protocol):
    """One network opened by one engine: run it on numpy feeds, get numpy outputs in the order asked."""

    name: str
    input_ranks: Mapping[str, int]  # each ONNX input's rank
    output_names: frozenset[str]
    warm_up_calls: int  # calls before one is as fast as the next (what a calibration runs before timing)

    def run(self, outputs: Sequence[str], feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]: ...


def _require_file(path: Path) -> None:
    if not Path(path).is_file():
        raise FileNotFoundError(f"ONNX model not found: {path}")


class OnnxRuntimeEngine:
    name = ONNXRUNTIME
    warm_up_calls = 1

    def __init__(self, path: Path, threads: int = 0) -> None:
        """A CPU onnxruntime session; 0 threads lets onnxruntime choose."""
        import onnxruntime as ort

        _require_file(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        for key, value in ENGINE_OPTIONS[ONNXRUNTIME].items():
            options.add_session_config_entry(key, value)
        self.session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        self.input_ranks = {i.name: len(i.shape) for i in self.session.get_inputs()}
        self.output_names = frozenset(o.name for o in self.session.get_outputs())

    def run(self, outputs: Sequence[str], feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        return self.session.run(list(outputs), dict(feeds))


class OpenVinoEngine:
    """OpenVINO's CPU plugin over the same ONNX file, fp32 (no bf16 on CPUs that have it), tuned for latency."""

    name = OPENVINO
    warm_up_calls = 1

    def __init__(self, path: Path, threads: int = 0) -> None:
        import openvino as ov

        _require_file(path)
        config: dict[str, object] = dict(ENGINE_OPTIONS[OPENVINO])
        if threads > 0:
            config["INFERENCE_NUM_THREADS"] = threads
        self.compiled = ov.Core().compile_model(str(path), "CPU", config)
        # a port may carry several tensor names (the ONNX name and OpenVINO's own): every one of them is valid
        ranks = {n: p.get_partial_shape().rank.get_length() for p in self.compiled.inputs for n in p.get_names()}
        self.input_ranks = ranks
        self.output_names = frozenset(n for p in self.compiled.outputs for n in p.get_names())
        self._request = self.compiled.create_infer_request()
        self._lock = threading.Lock()  # one infer request, callers from several threads (in-process components)

    def run(self, outputs: Sequence[str], feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        with self._lock:
            results = self._request.infer(dict(feeds))
            return [np.array(results[self.compiled.output(name)]) for name in outputs]


class TorchScriptEngine:
    """torch running the TorchScript trace saved beside the ONNX file (``TORCHSCRIPT_FILENAME``) under
    ``torch.inference_mode``; FileNotFoundError where the export wrote none (a network it could not trace
    faithfully). torch's threads are per process: a stub serves one network. TorchScript's executor profiles the
    first call and optimizes the graph at the second (seconds for a UNet); later shapes run that graph."""

    name = TORCH
    warm_up_calls = 2

    def __init__(self, path: Path, threads: int = 0) -> None:
        path = Path(path).with_name(TORCHSCRIPT_FILENAME)
        if not path.is_file():
            raise FileNotFoundError(f"TorchScript model not found: {path}")
        if "torch" not in sys.modules:  # OpenMP reads it once, when torch loads it
            os.environ.setdefault("OMP_WAIT_POLICY", ENGINE_OPTIONS[TORCH]["OMP_WAIT_POLICY"])
        import torch

        if threads > 0:
            torch.set_num_threads(threads)
        record = {TORCHSCRIPT_IO_RECORD: ""}
        self.module = torch.jit.load(str(path), map_location="cpu", _extra_files=record).eval()
        io = json.loads(record[TORCHSCRIPT_IO_RECORD])
        self.input_ranks = dict(io["inputs"])
        self._outputs = list(io["outputs"])
        self.output_names = frozenset(self._outputs)
        self._torch = torch

    def run(self, outputs: Sequence[str], feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        torch = self._torch
        tensors = [torch.from_numpy(_writable(feeds[name])) for name in self.input_ranks]
        with torch.inference_mode():
            results = self.module(*tensors)
        by_name = dict(zip(self._outputs, results if isinstance(results, tuple) else (results,), strict=True))
        return [by_name[name].numpy() for name in outputs]


def _writable(array: np.ndarray) -> np.ndarray:
    """A C-contiguous array torch may share (Triton's inputs can be read-only views)."""
    array = np.ascontiguousarray(array)
    return array if array.flags.writeable else array.copy()


class BatchSplitEngine:
    """An engine whose batch is split into ``workers`` slices run at once, each call single-threaded, outputs joined
    along the batch: on two cores the demo AnimateDiff UNet's batch of two (CFG) ran 1.5-1.8x faster than as one
    call with two intra-op threads (its operators are too small to share out; samples are independent). A call
    whose inputs do not share one leading size of at least two runs whole."""

    warm_up_calls = 1

    def __init__(self, engine: Engine, name: str, workers: int) -> None:
        self.name = name
        self._engine = engine
        self.input_ranks = engine.input_ranks
        self.output_names = engine.output_names
        self._workers = max(1, workers)
        self._pool = ThreadPoolExecutor(self._workers - 1, thread_name_prefix=name) if self._workers > 1 else None

    def run(self, outputs: Sequence[str], feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        sizes = {array.shape[0] if array.ndim else 0 for array in feeds.values()}
        batch = sizes.pop() if len(sizes) == 1 else 0
        if self._pool is None or batch < 2:
            return self._engine.run(outputs, feeds)
        bounds = np.linspace(0, batch, min(self._workers, batch) + 1).round().astype(int)
        slices = [{name: array[lo:hi] for name, array in feeds.items()} for lo, hi in pairwise(bounds)]
        others = [self._pool.submit(self._engine.run, outputs, part) for part in slices[1:]]
        parts = [self._engine.run(outputs, slices[0]), *(future.result() for future in others)]
        return [np.concatenate([part[index] for part in parts]) for index in range(len(outputs))]


_ENGINES: Final = {ONNXRUNTIME: OnnxRuntimeEngine, OPENVINO: OpenVinoEngine, TORCH: TorchScriptEngine}


def open_engine(name: str, path: Path, threads: int = 0) -> Engine:
    """``path`` opened by the engine called ``name`` with ``threads`` intra-op threads (0: the engine's choice;
    ``ONNXRUNTIME_BATCH_SPLIT``: that many calls at once, 0 one per core)."""
    if name == ONNXRUNTIME_BATCH_SPLIT:
        workers = threads if threads > 0 else len(os.sched_getaffinity(0))
        return BatchSplitEngine(OnnxRuntimeEngine(path, 1), name, workers)
    if name not in _ENGINES:
        raise ValueError(f"unknown CPU engine {name!r}; one of {', '.join(CPU_ENGINES)}")
    return _ENGINES[name](path, threads)

