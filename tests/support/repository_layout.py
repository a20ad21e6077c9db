"""What a built model repository holds."""

from __future__ import annotations

from pathlib import Path


def model_dirs(repository: Path) -> list[str]:
    """The Triton models' folders of ``repository``, sorted (hidden folders, e.g. the built-in characters'
    pictures in ``.characters``, are not models)."""
    return sorted(p.name for p in repository.iterdir() if p.is_dir() and not p.name.startswith("."))
