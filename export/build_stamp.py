"""The repository's build stamp (``<repository>/.build-stamp.json``): what was built from which inputs.

Stdlib only, so that ``python -m visualizr.export`` can tell that everything is up to date without importing torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from visualizr.export.fingerprint import export_code_version, hash_json, tree_fingerprint

STAMP_FILENAME = ".build-stamp.json"
TINY_WEIGHTS = "tiny"


@dataclass(frozen=True)
class ExportOptions:
    repository: Path
    weights: str = TINY_WEIGHTS  # "tiny" or a local diffusers folder
    motion_adapter: Path | None = None
    model_id: str = "animatediff"
    model_name: str | None = None
    backend: str = "onnxruntime"
    force: bool = False

    @property
    def is_tiny(self) -> bool:
        return self.weights == TINY_WEIGHTS

    def build_key(self) -> str:
        """Changes whenever the repository content for this model could change."""
        sources = [TINY_WEIGHTS] if self.is_tiny else [tree_fingerprint(Path(self.weights))]
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
                "model_id": self.model_id,
                "model_name": self.model_name,
                "backend": self.backend,
            }
        )


@dataclass
class ModelStamp:
    key: str = ""
    files: list[str] = field(default_factory=list)  # relative to the repository
    onnx_keys: dict[str, str] = field(default_factory=dict)  # Triton model name -> ONNX cache key


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
    stamp = read_stamps(options.repository).get(options.model_id)
    if stamp is None or stamp.key != options.build_key():
        return False
    return all((options.repository / f).is_file() for f in stamp.files)
