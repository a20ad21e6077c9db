"""Every benchmark script runs, briefly, so a refactor cannot silently break it (its numbers are not checked:
speed lives in the benchmarks' own interleaved runs, never in tests)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
TINY = ["--rounds", "1", "--width", "64", "--height", "64", "--num-frames", "4", "--num-inference-steps", "2"]


@pytest.mark.integration
def test_pipeline_overhead_benchmark_runs(model_repository: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.pipeline_overhead", *TINY],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for line in ("in-process   median", "triton       median", "rest         median", "triton / in-process"):
        assert line in done.stdout, done.stdout
