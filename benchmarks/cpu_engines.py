"""Every CPU engine on every component network: ms per call at the card's default shapes, side by side.

For each model of the repository (default: all) and each of its component models: the calibration's request (the
export's perf_analyzer data at the card's defaults, visualizr/pipeline/engine_calibration.py) run by the component
model's own code (visualizr/triton/component_model.py) on every installed engine, interleaved round by round, with
the intra-op threads of its config.pbtxt (``--threads`` overrides them: compare 1 and 2 per stub).

    python -m benchmarks.cpu_engines [--models animatediff,...] [--rounds 10] [--threads N]

Prints one row per network: the fastest call's ms per engine, each engine / onnxruntime, the fastest.
The machine is noisy: read the ratios of one run, not absolute times across runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from visualizr.names import INTRA_OP_THREADS_PARAMETER, ONNX_FILENAME
from visualizr.pipeline.cpu_engines import ONNXRUNTIME, ONNXRUNTIME_BATCH_SPLIT
from visualizr.pipeline.engine_calibration import calibration_candidates, default_inputs, installed_engines, measure
from visualizr.settings import Settings
from visualizr.triton.component_model import component_models, engine_calls, read_config


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", help="comma-separated model ids (default: every model of the repository)")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: each config's)")
    return parser.parse_args(argv)


def benchmark(repository: Path, model: str, rounds: int, threads: int | None) -> dict[str, float] | None:
    """The fastest call's ms per engine (``measure``); None without the export's default request for ``model``."""
    config = read_config(repository / model, threads)
    dtypes = {spec.name: spec.dtype for spec in config.inputs}
    feeds = default_inputs(repository, model, dtypes, config.max_batch_size > 0)
    if feeds is None:
        return None
    threads = config.int_parameter(INTRA_OP_THREADS_PARAMETER, 0)
    engines = calibration_candidates(installed_engines(), config.max_batch_size > 0, threads)
    calls = engine_calls(config, repository / model / "1" / ONNX_FILENAME, feeds, engines)
    return measure({name: call for name, (_, call) in calls.items()}, rounds, budget_s=float("inf"))


def table(results: dict[str, dict[str, float] | None], engines: list[str]) -> str:
    others = [e for e in engines if e != ONNXRUNTIME]
    header = f"{'network':<36}" + "".join(f"{e + ' ms':>15}" for e in engines)
    header += "".join(f"{e + ' / ort':>16}" for e in others) + "  fastest"
    lines = [header, "-" * len(header)]
    for model, ms in results.items():
        if ms is None:
            lines.append(f"{model:<36} (no default request: run the export)")
            continue
        row = f"{model:<36}" + "".join(f"{ms[e]:>15.2f}" if e in ms else f"{'-':>15}" for e in engines)
        row += "".join(
            f"{ms[e] / ms[ONNXRUNTIME]:>16.3f}" if e in ms and ONNXRUNTIME in ms else f"{'-':>16}" for e in others
        )
        lines.append(f"{row}  {min(ms, key=ms.__getitem__)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    repository = Settings.from_env().model_repository
    wanted = args.models.split(",") if args.models else None
    engines = [*installed_engines(), ONNXRUNTIME_BATCH_SPLIT]  # the columns (split: batch-first networks only)
    results = {m: benchmark(repository, m, args.rounds, args.threads) for m in component_models(repository, wanted)}
    threads = "each config's" if args.threads is None else str(args.threads)
    print(f"CPU engines, ms per call at the card's defaults ({args.rounds} interleaved rounds, {threads} threads)")
    print(table(results, engines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
