"""Cheap, stdlib-only fingerprints for the build stamps (no torch: the up-to-date check is fast)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

EXPORT_DIR = Path(__file__).resolve().parent
REPO_ROOT = EXPORT_DIR.parent


def hash_json(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def hash_files(paths: Iterable[Path]) -> str:
    """Content hash of a set of files, keyed by their paths relative to the repository when possible."""
    digest = hashlib.sha256()
    for path in sorted(Path(p).resolve() for p in paths):
        try:
            label = str(path.relative_to(REPO_ROOT))
        except ValueError:
            label = str(path)
        digest.update(label.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def export_code_version() -> str:
    """Hash of everything that shapes the exported repository: the export package, its data, the families'
    descriptions and the shared contract modules (names, model card, pipeline config)."""
    contract = [REPO_ROOT / "visualizr" / name for name in ("names.py", "model_card.py", "pipeline_config.py")]
    sources = [
        p
        for root in (EXPORT_DIR, REPO_ROOT / "visualizr" / "families")
        for p in root.rglob("*")
        if p.is_file() and p.suffix in {".py", ".txt"} and "__pycache__" not in p.parts
    ]
    return hash_files(sources + [p for p in contract if p.is_file()])


def tree_fingerprint(root: Path) -> str:
    """Fingerprint of a weights folder from file names, sizes and mtimes (hashing gigabytes would be slow)."""
    root = Path(root).resolve()
    entries = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        stat = path.stat()
        entries.append((str(path.relative_to(root)), stat.st_size, stat.st_mtime_ns))
    return hash_json({"root": str(root), "files": entries})
