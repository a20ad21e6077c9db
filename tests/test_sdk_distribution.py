"""The SDK is its own lean distribution: `pip install ./sdk` in a fresh venv gives the `visualizr` CLI and the
client, with httpx, websockets and msgspec only, well under 100 MB."""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
MAX_VENV_BYTES = 100 * 1024 * 1024


def tree_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


@pytest.mark.slow
def test_pip_install_sdk_in_a_fresh_venv(tmp_path: Path) -> None:
    source = tmp_path / "sdk"  # a copy: building writes build/ and *.egg-info beside the sources
    shutil.copytree(REPO_ROOT / "sdk", source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    env_dir = tmp_path / "sdk-venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", str(source)],
        check=True,
        timeout=600,
    )
    names = subprocess.run(
        [python, "-m", "pip", "list", "--format=freeze"], check=True, capture_output=True, text=True
    ).stdout
    installed = {line.split("==")[0].lower() for line in names.splitlines()}
    assert "visualizr-client" in installed and {"httpx", "websockets", "msgspec"} <= installed
    assert not installed & {"torch", "numpy", "litestar", "tritonclient", "visualizr"}
    helped = subprocess.run([env_dir / "bin" / "visualizr", "--help"], capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0 and "generate" in helped.stdout
    imported = subprocess.run(
        [python, "-c", "import visualizr_client as v; print(v.VisualizrClient.__name__, sorted(v.__all__)[:1])"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,  # not the repository: the installed copy
    )
    assert imported.returncode == 0 and imported.stdout.startswith("VisualizrClient"), imported.stderr
    size = tree_size(env_dir)
    assert size < MAX_VENV_BYTES, f"{size / 2**20:.0f} MB"
    print(f"SDK venv: {size / 2**20:.1f} MB ({sys.version_info.major}.{sys.version_info.minor})")
