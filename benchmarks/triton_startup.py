"""How long tritonserver takes to become ready on the model repository (every model of its cards: each Python-backend
stub importing its adapter, loading its network or loop), this checkout's code against a baseline revision's, in
interleaved rounds.

    python -m benchmarks.triton_startup [--rounds 3] [--baseline main]

Each round starts one tritonserver per side on free ports (``TritonServer(settings).start()``, then
``wait_ready()``, timed in the side's own Python), then stops it. The baseline's tree is ``git archive``d into a
temporary folder; both sides serve the same model repository, whose model.py shims import the ``visualizr`` the
server's PYTHONPATH names: the side's own. The sides take turns going first. Prints medians and this checkout /
baseline. The machine is noisy: read the ratio of one run, not absolute times across runs.
"""

from __future__ import annotations

import argparse
import compileall
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks.stack import stack_settings
from visualizr.launcher import models_to_load
from visualizr.settings import REPO_ROOT, Settings

# Run by each side's Python: the stubs inherit its PYTHONPATH, so they import the side's code.
TIME_TO_READY = """
import time
from visualizr.launcher import TritonServer, find_triton
from visualizr.settings import Settings

server = TritonServer(Settings.from_env())
find_triton()  # copies the Python backend for this tree once, outside the timing
start = time.perf_counter()
server.start()
try:
    server.wait_ready(600)
    print(time.perf_counter() - start)
finally:
    server.stop()
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", help="a git revision whose code to compare with (default: none)")
    return parser.parse_args(argv)


@contextmanager
def revision_tree(revision: str) -> Iterator[Path]:
    """The files of ``revision`` in a temporary folder, byte-compiled as a used checkout's are."""
    archive = subprocess.run(["git", "archive", revision], cwd=REPO_ROOT, capture_output=True, check=True).stdout
    with tempfile.TemporaryDirectory(prefix="visualizr-baseline-") as folder:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(folder, filter="data")
        compileall.compile_dir(Path(folder) / "visualizr", quiet=1)
        yield Path(folder)


def time_to_ready(code: Path, repository: Path) -> float:
    """Seconds from start() to ready of a tritonserver whose stubs run ``code``'s visualizr."""
    with tempfile.TemporaryDirectory() as data_dir:
        _, env = stack_settings(Path(data_dir), VISUALIZR_MODEL_REPOSITORY=str(repository))
        python_path = os.pathsep.join(p for p in (str(code), os.environ.get("PYTHONPATH", "")) if p)
        done = subprocess.run(
            [sys.executable, "-c", TIME_TO_READY], cwd=code, env={**os.environ, **env, "PYTHONPATH": python_path},
            capture_output=True, text=True, timeout=900,
        )
    if done.returncode != 0:
        raise RuntimeError(f"tritonserver of {code} did not start:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    return float(done.stdout.split()[-1])


def report(name: str, samples: list[float]) -> float:
    median = statistics.median(samples)
    print(f"  {name:<26} median {median:7.3f} s   runs: {', '.join(f'{s:.3f}' for s in samples)}")
    return median


def run(args: argparse.Namespace, baseline: Path | None) -> None:
    repository = Settings.from_env().model_repository
    sides = {"this checkout": REPO_ROOT}
    if baseline is not None:
        sides[f"baseline {args.baseline}"] = baseline
    samples: dict[str, list[float]] = {name: [] for name in sides}
    for round_index in range(args.rounds):
        order = list(sides) if round_index % 2 == 0 else list(reversed(sides))
        for name in order:
            samples[name].append(time_to_ready(sides[name], repository))
    print(f"tritonserver start -> ready on {repository} ({len(models_to_load(repository))} models), "
          f"{args.rounds} interleaved rounds, {os.cpu_count()} CPUs:")
    medians = [report(name, values) for name, values in samples.items()]
    if baseline is not None:
        print(f"this checkout / baseline = {medians[0] / medians[1]:.3f}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.baseline is None:
        run(args, None)
        return
    with revision_tree(args.baseline) as baseline:
        run(args, baseline)


if __name__ == "__main__":
    main()
