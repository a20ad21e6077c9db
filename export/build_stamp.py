"""The repository's build stamp (``<repository>/.build-stamp.json``): what was built from which inputs.

Stdlib only, so that ``python -m visualizr.export`` can tell that everything is up to date without importing torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from visualizr.engines.manifest import DEFAULT_PRECISION
from visualizr.export.fingerprint import export_code_version, hash_json, tree_fingerprint
from visualizr.export.triton_config import BACKEND_TENSORRT

STAMP_FILENAME = ".build-stamp.json"
TINY_WEIGHTS = "tiny"
DEFAULT_FAMILY = "animatediff"


@dataclass(frozen=True)
class ExportOptions:
    repository: Path
    family: str = DEFAULT_FAMILY  # a name of visualizr.families.FAMILY_NAMES
    weights: str = TINY_WEIGHTS  # "tiny" or a local diffusers folder
    motion_adapter: Path | None = None  # AnimateDiff only
    keyframe_weights: Path | None = None  # Stable Video Diffusion only: a Stable Diffusion folder (keyframe stage)
    ip_adapter: Path | None = None  # AnimateDiff only: an h94/IP-Adapter-style folder (tiny: the demo's own)
    model_id: str | None = None  # default: the family's name
    model_name: str | None = None
    backend: str = "onnxruntime"
    precision: str = DEFAULT_PRECISION  # of the TensorRT engines
    instances_per_gpu: int = 1  # of each TensorRT component model
    force: bool = False

    @property
    def is_tiny(self) -> bool:
        return self.weights == TINY_WEIGHTS

    @property
    def id(self) -> str:
        """The public model id == the Triton name of the pipeline model."""
        return self.model_id or self.family

    def build_key(self) -> str:
        """Changes whenever the repository content for this model could change."""
        sources = [TINY_WEIGHTS] if self.is_tiny else [tree_fingerprint(Path(self.weights))]
        for folder in (self.keyframe_weights, self.ip_adapter):
            if folder is not None:
                sources.append(tree_fingerprint(folder))
        if self.motion_adapter is not None:
            sources.append(
                tree_fingerprint(self.motion_adapter)
                if self.motion_adapter.is_dir()
                else hash_json([str(self.motion_adapter), self.motion_adapter.stat().st_mtime_ns])
            )
        return hash_json(
            {
                "code": export_code_version(),
                "weights": sources,
                "family": self.family,
                "model_id": self.id,
                "model_name": self.model_name,
                "backend": self.backend,
                "precision": self.precision,
                "instances_per_gpu": self.instances_per_gpu,
            }
        )


@dataclass
class ModelStamp:
    key: str = ""
    files: list[str] = field(default_factory=list)  # relative to the repository
    onnx_keys: dict[str, str] = field(default_factory=dict)  # Triton model name -> ONNX cache key
    torchscript_keys: dict[str, str] = field(default_factory=dict)  # ... -> TorchScript cache key


def read_stamps(repository: Path) -> dict[str, ModelStamp]:
    path = repository / STAMP_FILENAME
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text())
        return {model_id: ModelStamp(**entry) for model_id, entry in raw.items()}
    except (ValueError, TypeError):
        return {}


def write_stamp(repository: Path, model_id: str, stamp: ModelStamp) -> None:
    stamps = read_stamps(repository)
    stamps[model_id] = stamp
    payload = {k: v.__dict__ for k, v in sorted(stamps.items())}
    (repository / STAMP_FILENAME).write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def is_up_to_date(options: ExportOptions) -> bool:
    stamp = read_stamps(options.repository).get(options.id)
    if stamp is None or stamp.key != options.build_key():
        return False
    if not all((options.repository / f).is_file() for f in stamp.files):
        return False
    return options.backend != BACKEND_TENSORRT or not _stale_engines(options)


def _stale_engines(options: ExportOptions) -> dict[str, list[str]]:
    """TensorRT engines that no longer fit this machine (a new GPU or TensorRT) or their ONNX files."""
    from visualizr.engines.check import stale_engines
    from visualizr.engines.environment import probe
    from visualizr.model_card import MODEL_CARD_FILENAME, read_model_card

    card = read_model_card(options.repository / options.id / MODEL_CARD_FILENAME)
    return stale_engines(options.repository, card, probe())
