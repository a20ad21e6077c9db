"""The engine cache key and the manifest written beside every engine (``<model>/1/model.plan.json``)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Final

import msgspec

from visualizr.names import ONNX_FILENAME

PLAN_FILENAME: Final = "model.plan"
MANIFEST_FILENAME: Final = "model.plan.json"
ONNX_DATA_FILENAME: Final = "model.onnx.data"  # external weights of a large export
PRECISIONS: Final = ("fp16", "bf16", "fp8")
DEFAULT_PRECISION: Final = "fp16"

Profile = dict[str, list[list[int]]]  # input name -> [min shape, opt shape, max shape]


class Gpu(msgspec.Struct, frozen=True):
    name: str  # "NVIDIA H100 80GB HBM3"
    compute_capability: str  # "9.0"

    def __str__(self) -> str:
        return f"{self.name} (compute {self.compute_capability})"


class OnnxFingerprint(msgspec.Struct, frozen=True):
    """The ONNX an engine was parsed from: sha256 of model.onnx (+ model.onnx.data); size and mtime let a
    check skip re-hashing gigabytes when the files were not touched."""

    sha256: str
    size: int
    mtime_ns: int


class EngineKey(msgspec.Struct, frozen=True):
    """Everything that decides an engine's content: a different value means a different engine."""

    onnx_sha256: str
    profile: Profile
    precision: str
    tensorrt_version: str  # major.minor.patch
    gpu: Gpu

    def differences(self, wanted: EngineKey) -> list[str]:
        """What differs between this (built) key and ``wanted``, in words; empty when they are equal."""
        found = []
        if self.onnx_sha256 != wanted.onnx_sha256:
            found.append(
                f"the ONNX changed since the engine was built (sha256 {self.onnx_sha256[:12]} then, "
                f"{wanted.onnx_sha256[:12]} now)"
            )
        if self.profile != wanted.profile:
            found.append(f"optimisation profile {_profile_text(self.profile)} != {_profile_text(wanted.profile)}")
        if self.precision != wanted.precision:
            found.append(f"built in {self.precision}, {wanted.precision} wanted")
        if self.tensorrt_version != wanted.tensorrt_version:
            found.append(f"built by TensorRT {self.tensorrt_version}, this is TensorRT {wanted.tensorrt_version}")
        if self.gpu != wanted.gpu:
            found.append(f"built on {self.gpu}, this GPU is {wanted.gpu}")
        return found


class EngineManifest(msgspec.Struct, frozen=True):
    key: EngineKey
    onnx: OnnxFingerprint
    # The model-card ranges the profile covers: "width"/"height" (pixels), "num_frames" -> [min, max].
    covers: dict[str, list[int]]
    built_at: str  # ISO 8601, UTC
    build_seconds: float

    def uncovered(self, ranges: dict[str, list[int]]) -> list[str]:
        """Card parameters whose ``ranges`` ([min, max]) reach outside what this engine was built for."""
        found = []
        for name, (low, high) in sorted(ranges.items()):
            built = self.covers.get(name)
            if built is not None and not built[0] <= low <= high <= built[1]:
                found.append(f"the engine covers {name} {built[0]}..{built[1]}, the model card allows {low}..{high}")
        return found


def _profile_text(profile: Profile) -> str:
    return "; ".join(f"{name} {'/'.join('x'.join(map(str, s)) for s in shapes)}" for name, shapes in profile.items())


def onnx_files(version_dir: Path) -> list[Path]:
    return [p for p in (version_dir / ONNX_FILENAME, version_dir / ONNX_DATA_FILENAME) if p.is_file()]


def onnx_fingerprint(version_dir: Path, known: OnnxFingerprint | None = None) -> OnnxFingerprint:
    """Fingerprint of the ONNX files in ``version_dir``; ``known`` is returned unhashed when size and mtime
    still match it. FileNotFoundError without model.onnx."""
    files = onnx_files(version_dir)
    if not files or files[0].name != ONNX_FILENAME:
        raise FileNotFoundError(f"no {ONNX_FILENAME} in {version_dir}")
    stats = [p.stat() for p in files]
    size, mtime = sum(s.st_size for s in stats), max(s.st_mtime_ns for s in stats)
    if known is not None and (known.size, known.mtime_ns) == (size, mtime):
        return known
    digest = hashlib.sha256()
    for path in files:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return OnnxFingerprint(digest.hexdigest(), size, mtime)


def manifest_path(version_dir: Path) -> Path:
    return version_dir / MANIFEST_FILENAME


def read_manifest(version_dir: Path) -> EngineManifest | None:
    """The manifest beside ``version_dir/model.plan``; None when absent or unreadable."""
    try:
        return msgspec.json.decode(manifest_path(version_dir).read_bytes(), type=EngineManifest)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return None


def write_manifest(version_dir: Path, manifest: EngineManifest) -> Path:
    path = manifest_path(version_dir)
    path.write_bytes(msgspec.json.format(msgspec.json.encode(manifest), indent=2) + b"\n")
    return path
