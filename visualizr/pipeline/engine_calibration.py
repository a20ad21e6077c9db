"""Which CPU engine serves a component model: measured on the machine that serves, cached, overridable.

A component stub times every installed engine on its network at the card's default shapes (the export's
perf_analyzer data, ``build/perf_inputs/<model id>/``), and onnxruntime with the batch split across single-threaded
calls (``ONNXRUNTIME_BATCH_SPLIT``) where the batch allows it, interleaved, and serves with the fastest. The
measurement is cached in ``build/cpu_engines/<triton model>.json`` beside the repository with its key (processor,
flags, cores, engine versions and settings, shapes, threads, the size and time of the ONNX file and of the
TorchScript file beside it) and redone when any of those changes. ``VISUALIZR_CPU_ENGINE`` names one engine for
every network instead (``auto``: the measured choice). Stdlib and numpy only (a component stub imports it).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Final

import numpy as np

from visualizr.names import TORCHSCRIPT_FILENAME
from visualizr.pipeline.cpu_engines import (
    AUTO,
    CPU_ENGINES,
    ENGINE_OPTIONS,
    ONNXRUNTIME,
    ONNXRUNTIME_BATCH_SPLIT,
    OPENVINO,
    TORCH,
)

CPU_ENGINE_ENV: Final = "VISUALIZR_CPU_ENGINE"
CALIBRATION_ROUNDS: Final = 5
# A calibration stops starting rounds after this long (at least one): a model's first start on a machine waits for
# it (SVD's VAE decoder takes ~1 s per call at its defaults).
CALIBRATION_BUDGET_S: Final = 4.0
# Another engine replaces onnxruntime (the reference every export is checked with) only when it is at least this
# much faster: a measurement taken while other stubs load is noisy, and a coin toss should not change the engine.
SWITCH_MARGIN: Final = 0.10
LOCK_FILENAME: Final = ".calibrating.lock"
_DISTRIBUTIONS: Final = {ONNXRUNTIME: ("onnxruntime", "onnxruntime-gpu"), OPENVINO: ("openvino",), TORCH: ("torch",)}


def requested_engine(env: Mapping[str, str] | None = None) -> str:
    """``VISUALIZR_CPU_ENGINE`` (``auto`` when unset); ValueError for anything but an engine name or auto."""
    raw = (os.environ if env is None else env).get(CPU_ENGINE_ENV, "").strip().lower() or AUTO
    if raw != AUTO and raw not in CPU_ENGINES:
        raise ValueError(f"{CPU_ENGINE_ENV} must be one of {', '.join((*CPU_ENGINES, AUTO))}, got {raw!r}")
    return raw


def calibration_path(model_repository: Path, triton_model: str) -> Path:
    return Path(model_repository).resolve().parent / "build" / "cpu_engines" / f"{triton_model}.json"


def default_inputs(
    model_repository: Path, triton_model: str, dtypes: Mapping[str, np.dtype], batched: bool
) -> dict[str, np.ndarray] | None:
    """The request the export's perf_analyzer data makes to ``triton_model`` at the card's default shapes (its
    batch stacked when ``batched``: Triton's max_batch_size > 0); None where the export wrote none."""
    folder = Path(model_repository).resolve().parent / "build" / "perf_inputs"
    for manifest in sorted(folder.glob("*/manifest.json")):
        for model in json.loads(manifest.read_text())["models"]:
            if model["model"] == triton_model:
                profile = model["profiles"]["default"]
                feeds = _read_request(manifest.parent / profile["input_data"], dtypes)
                return {n: np.stack([a] * profile["batch_size"]) for n, a in feeds.items()} if batched else feeds
    return None


def _read_request(path: Path, dtypes: Mapping[str, np.dtype]) -> dict[str, np.ndarray]:
    """The first request of a perf_analyzer data file as numpy arrays (``content`` lists or ``b64`` bytes)."""
    request = json.loads(Path(path).read_text())["data"][0]
    feeds = {}
    for name, dtype in dtypes.items():
        tensor = request[name]
        if "b64" in tensor:
            array = np.frombuffer(base64.b64decode(tensor["b64"]), dtype=dtype)
        else:
            array = np.asarray(tensor["content"], dtype=dtype)
        feeds[name] = array.reshape(tensor["shape"]).copy()
    return feeds


def installed_engines() -> dict[str, str]:
    """Each installed engine's version, read from its distribution (nothing imported)."""
    versions = {}
    for engine, distributions in _DISTRIBUTIONS.items():
        for distribution in distributions:
            try:
                versions[engine] = metadata.version(distribution)
                break
            except metadata.PackageNotFoundError:
                continue
    return versions


def calibration_candidates(installed: Mapping[str, str], batched: bool, threads: int) -> list[str]:
    """What a calibration times: every installed engine, and onnxruntime's batch split across single-threaded calls
    where the network is batch-first (``batched``) and may use more than one thread."""
    split = batched and threads != 1 and ONNXRUNTIME in installed
    return [*installed, *([ONNXRUNTIME_BATCH_SPLIT] if split else [])]


def _processor() -> tuple[str, str]:
    """This processor's model name and a digest of its feature flags (empty where /proc/cpuinfo is absent)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return "", ""
    fields = dict(line.split(":", 1) for line in lines if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    flags = " ".join(sorted(fields.get("flags", "").split()))
    return fields.get("model name", ""), hashlib.sha256(flags.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class CalibrationKey:
    """What a measurement depends on; a cached measurement with another key is redone."""

    processor: str
    cpu_flags: str
    cores: int
    engines: dict[str, str]
    engine_options: dict[str, dict[str, str]]
    shapes: dict[str, list[int]]
    threads: int
    onnx_size: int
    onnx_mtime_ns: int
    torchscript_size: int = 0  # 0: no TorchScript file (no torch candidate)
    torchscript_mtime_ns: int = 0
    candidates: list[str] = field(default_factory=list)  # what was timed (``calibration_candidates``)

    @classmethod
    def here(cls, onnx_path: Path, feeds: Mapping[str, np.ndarray], threads: int, batched: bool) -> CalibrationKey:
        processor, flags = _processor()
        engines = installed_engines()
        stat = Path(onnx_path).stat()
        torchscript = Path(onnx_path).with_name(TORCHSCRIPT_FILENAME)
        traced = torchscript.stat() if torchscript.is_file() else None
        return cls(
            processor=processor,
            cpu_flags=flags,
            cores=len(os.sched_getaffinity(0)),
            engines=engines,
            engine_options=ENGINE_OPTIONS,
            shapes={name: list(array.shape) for name, array in sorted(feeds.items())},
            threads=threads,
            onnx_size=stat.st_size,
            onnx_mtime_ns=stat.st_mtime_ns,
            torchscript_size=traced.st_size if traced else 0,
            torchscript_mtime_ns=traced.st_mtime_ns if traced else 0,
            candidates=calibration_candidates(engines, batched, threads),
        )


@dataclass(frozen=True)
class Calibration:
    key: CalibrationKey
    ms: dict[str, float]  # milliseconds per call, per engine (``measure``)

    @property
    def fastest(self) -> str:
        return min(self.ms, key=self.ms.__getitem__)

    @property
    def chosen(self) -> str:
        """The fastest engine, where it beats onnxruntime by ``SWITCH_MARGIN``; else onnxruntime."""
        reference = self.ms.get(ONNXRUNTIME)
        fastest = self.fastest
        if reference is None or self.ms[fastest] <= reference * (1 - SWITCH_MARGIN):
            return fastest
        return ONNXRUNTIME

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Calibration:
        raw = json.loads(text)
        return cls(key=CalibrationKey(**raw["key"]), ms={k: float(v) for k, v in raw["ms"].items()})


def read_calibration(path: Path) -> Calibration | None:
    """The cached measurement at ``path``; None when missing or unreadable."""
    try:
        return Calibration.from_json(Path(path).read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_calibration(path: Path, calibration: Calibration) -> None:
    """Atomically (servers starting side by side may calibrate the same network)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(calibration.to_json())
    os.replace(temporary, path)


def measure(
    calls: Mapping[str, Callable[[], Any]], rounds: int = CALIBRATION_ROUNDS, budget_s: float = CALIBRATION_BUDGET_S
) -> dict[str, float]:
    """The fastest of each of ``calls``' timed calls, in ms, after one warm-up each, interleaved round by round in
    an order that rotates (a load that comes and goes, or an engine whose threads linger after its call, weighs on
    every engine alike); no round starts after ``budget_s`` but the first. The fastest call, not the median: a
    stub calibrates while the other stubs of its server start, and what is measured is what the engine can do."""
    started = time.perf_counter()
    for call in calls.values():
        call()
    names = list(calls)
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for round_ in range(rounds):
        if round_ and time.perf_counter() - started > budget_s:
            break
        for name in names[round_ % len(names):] + names[: round_ % len(names)]:
            start = time.perf_counter()
            calls[name]()
            samples[name].append((time.perf_counter() - start) * 1000)
    return {name: round(min(values), 3) for name, values in samples.items()}


def calibrate(
    key: CalibrationKey, cache: Path, calls: Callable[[], Mapping[str, Callable[[], Any]]]
) -> tuple[Calibration, bool]:
    """The cached calibration when its key is ``key``, else a new measurement of ``calls()`` (written to
    ``cache`` where it can be); the flag says whether it was measured now. One measurement at a time per cache
    folder (the stubs of a starting server load side by side and would time each other)."""
    cached = read_calibration(cache)
    if cached is not None and cached.key == key:
        return cached, False
    with _one_at_a_time(cache.parent / LOCK_FILENAME):
        cached = read_calibration(cache)  # measured meanwhile by a stub that held the lock
        if cached is not None and cached.key == key:
            return cached, False
        calibration = Calibration(key=key, ms=measure(calls()))
        with contextlib.suppress(OSError):  # a read-only repository: measured again at the next start
            write_calibration(cache, calibration)
    return calibration, True


@contextlib.contextmanager
def _one_at_a_time(lock_path: Path) -> Iterator[None]:
    """An exclusive lock on ``lock_path`` across processes (none where the folder cannot be written)."""
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(lock_path, "a")  # noqa: SIM115 - held for the block, closed below
    except OSError:
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def engine_for(requested: str, calibration: Calibration | None) -> str:
    """The engine to serve with: the one requested, else the measured choice (``Calibration.chosen``), else
    onnxruntime."""
    if requested != AUTO:
        return requested
    return calibration.chosen if calibration is not None else ONNXRUNTIME


def served_engine(model_repository: Path, triton_model: str, requested: str) -> tuple[str | None, dict[str, float]]:
    """What a component model of ``model_repository`` serves with, as far as the files tell (model details, the
    perf table): the requested engine, or the cached calibration's choice (None: not measured yet), and the
    calibration's ms per engine (empty when none)."""
    measured = read_calibration(calibration_path(model_repository, triton_model))
    engine = engine_for(requested, measured) if requested != AUTO or measured is not None else None
    return engine, dict(measured.ms) if measured is not None else {}
