"""Each CPU component network's engine, measured (``visualizr.pipeline.engine_calibration``; cached, once per machine
and export) and printed with every candidate's ms per call: what the export runs after it builds.

    python -m visualizr.export.calibrate REPOSITORY [MODEL_ID ...]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from visualizr.triton.component_model import calibrate_components


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m visualizr.export.calibrate", description=__doc__)
    parser.add_argument("repository", type=Path)
    parser.add_argument("models", nargs="*", help="model ids (default: every model of the repository)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    for model, measured in calibrate_components(args.repository.resolve(), args.models or None).items():
        if measured is not None:
            timings = ", ".join(f"{engine} {ms:.2f}" for engine, ms in sorted(measured.ms.items()))
            print(f"  CPU engine of {model}: {measured.chosen} (ms per call: {timings})", flush=True)
    print(f"export: CPU engines measured or confirmed in {time.perf_counter() - started:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
