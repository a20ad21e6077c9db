"""One large request through the in-process ONNX loop: how long each phase takes and the process's peak memory.

    python -m benchmarks.large_clip [--model animatediff] [--width 1024] [--height 1024] [--frames 40] [--steps N]

The loop is the family's (visualizr.families) over the repository's ONNX files with onnxruntime, as the Triton
pipeline model runs it (the component models' onnxruntime threads); the steps default to the model card's. Peak
memory is the process's maximum resident set (getrusage), the sessions included. CPU seconds are printed beside
the wall-clock ones: on a machine shared with other work they say what the run itself cost.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import time
from pathlib import Path

from benchmarks.pipeline_overhead import component_threads
from visualizr.model_card import MODEL_CARD_FILENAME, read_model_card
from visualizr.names import PHASE_FRAME_GENERATION
from visualizr.pipeline import GenerationRequest
from visualizr.pipeline.assets import load_pipeline
from visualizr.pipeline.onnx_components import OnnxComponents
from visualizr.pipeline_config import assets_dir
from visualizr.settings import Settings

PROMPT = "a lighthouse on a cliff at dusk, waves below"
SEED = 7


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(repository: Path, model_id: str, request: GenerationRequest) -> dict[str, float]:
    """Wall seconds per phase (the denoising steps summed), the total, its CPU seconds and the peak RSS in MB."""
    pipeline = load_pipeline(assets_dir(repository / model_id))
    components = OnnxComponents.from_repository(repository, model_id, component_threads(repository, model_id))
    seconds: dict[str, float] = {}
    started, cpu_started = time.perf_counter(), _cpu_seconds()
    last = started

    def on_progress(event) -> None:
        nonlocal last
        now = time.perf_counter()
        seconds[event.phase] = seconds.get(event.phase, 0.0) + now - last
        last = now

    asyncio.run(pipeline(request, components, on_progress=on_progress))
    return {
        "phases": seconds,
        "total": time.perf_counter() - started,
        "cpu": _cpu_seconds() - cpu_started,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repository", type=Path, default=None, help="default: VISUALIZR_MODEL_REPOSITORY")
    parser.add_argument("--model", default="animatediff")
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--height", type=int, default=1024)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--steps", type=int, default=None, help="default: the model card's")
    args = parser.parse_args(argv)
    repository = args.repository or Settings.from_env().model_repository
    card = read_model_card(repository / args.model / MODEL_CARD_FILENAME)
    steps = args.steps or int(card.parameter("num_inference_steps").default)
    guidance = float(card.parameter("guidance_scale").default)
    request = GenerationRequest(PROMPT, args.width, args.height, args.frames, steps, guidance, SEED)
    result = run(repository, args.model, request)
    phases = ", ".join(f"{phase} {value:.1f} s" for phase, value in result["phases"].items())
    per_step = result["phases"][PHASE_FRAME_GENERATION] / steps
    print(
        f"{args.model} {args.width}x{args.height}, {args.frames} frames, {steps} steps: {result['total']:.1f} s "
        f"({result['cpu']:.0f} CPU s; {phases}; {per_step:.2f} s per step), peak RSS {result['peak_rss_mb']:.0f} MB"
    )
    return result


if __name__ == "__main__":
    main()
