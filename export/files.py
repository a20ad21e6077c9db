"""Idempotent file writes: a file whose content is unchanged is not touched (its mtime stays)."""

from __future__ import annotations

import os
from pathlib import Path


def write_if_changed(path: Path, data: bytes | str) -> bool:
    """Write ``data`` to ``path`` unless the file already holds exactly that. Returns whether it wrote."""
    payload = data.encode() if isinstance(data, str) else data
    if path.is_file() and path.stat().st_size == len(payload) and path.read_bytes() == payload:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(payload)
    tmp.replace(path)
    return True


def copy_tree_if_changed(source: Path, destination: Path) -> list[Path]:
    """Mirror the regular files of ``source`` into ``destination``; returns the files it (re)wrote."""
    written = []
    for file in sorted(p for p in source.rglob("*") if p.is_file()):
        target = destination / file.relative_to(source)
        if write_if_changed(target, file.read_bytes()):
            written.append(target)
    return written
