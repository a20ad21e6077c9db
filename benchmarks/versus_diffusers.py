"""Visualizr against the plain diffusers script on the same CPU, side by side in one interleaved run.

For the same request (the model card's defaults unless told otherwise: 128x128, 16 frames, 20 steps, CFG 7.5 on
the demo) and the same weights (the exported model's diffusers folders), each round times:
  diffusers : diffusers' own ``AnimateDiffPipeline`` in this process with PyTorch (frames as numpy, no files),
              once with torch's default threads (one per core) and once single-threaded, which is faster on a
              loaded machine (OpenMP threads wait for each other when the cores are busy)
  rest      : a Visualizr job, POST /api/v1/generate/video until the WebSocket says ``completed`` (Triton ->
              frames -> MP4 + JPEG thumbnail + GIF preview on disk): what a user of the service waits for

    python -m benchmarks.versus_diffusers [--rounds 5] [--width 128 ...]

Prints medians, the spread (max/min) of each, and the ratio rest / diffusers against the faster of the two
diffusers settings (goal <= 1.0; stretch 0.8). The
machine is shared and noisy: rounds are interleaved so both sides see the same load; read the ratio, not the
absolute times.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from pathlib import Path

from benchmarks.pipeline_overhead import time_rest
from benchmarks.stack import private_stack
from visualizr.model_card import MODEL_CARD_FILENAME, read_model_card
from visualizr.pipeline_config import assets_dir
from visualizr.settings import REPO_ROOT, Settings

TINY_WEIGHTS = REPO_ROOT / "build" / "tiny-animatediff"
PARAMETERS = ("width", "height", "num_frames", "fps", "num_inference_steps", "guidance_scale")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="animatediff")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--weights", type=Path, default=TINY_WEIGHTS / "stable-diffusion",
                        help="the diffusers folder the model was exported from (default: the tiny demo's)")
    parser.add_argument("--motion-adapter", type=Path, default=TINY_WEIGHTS / "motion-adapter")
    for name in PARAMETERS[:-1]:
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, type=int, default=None)
    parser.add_argument("--guidance-scale", dest="guidance_scale", type=float, default=None)
    return parser.parse_args(argv)


def diffusers_pipeline(weights: Path, motion_adapter: Path, scheduler_dir: Path):
    """diffusers' AnimateDiffPipeline on the weights, with the scheduler the export wrote (the same work)."""
    import diffusers
    from diffusers import AnimateDiffPipeline, MotionAdapter

    diffusers.utils.logging.disable_progress_bar()
    scheduler_class = getattr(diffusers, diffusers.DDIMScheduler.load_config(str(scheduler_dir))["_class_name"])
    pipe = AnimateDiffPipeline.from_pretrained(
        str(weights),
        motion_adapter=MotionAdapter.from_pretrained(str(motion_adapter)),
        scheduler=scheduler_class.from_pretrained(str(scheduler_dir)),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def time_diffusers(pipe, prompt: str, params: dict, seed: int, threads: int) -> float:
    import torch

    torch.set_num_threads(threads)
    start = time.perf_counter()
    with torch.inference_mode():
        output = pipe(
            prompt=prompt,
            negative_prompt="",
            width=params["width"],
            height=params["height"],
            num_frames=params["num_frames"],
            num_inference_steps=params["num_inference_steps"],
            guidance_scale=params["guidance_scale"],
            generator=torch.Generator().manual_seed(seed),
            output_type="np",
        )
    elapsed = time.perf_counter() - start
    assert output.frames[0].shape[0] == params["num_frames"]
    return elapsed


def summary(name: str, samples: list[float]) -> float:
    median = statistics.median(samples)
    spread = max(samples) / min(samples)
    runs = ", ".join(f"{s:.3f}" for s in samples)
    print(f"  {name:<10} median {median:7.3f} s   spread {spread:4.2f}x   runs: {runs}")
    return median


async def run(args: argparse.Namespace) -> dict[str, float]:
    import torch

    base = Settings.from_env()
    card = read_model_card(base.model_repository / args.model / MODEL_CARD_FILENAME)
    params = {name: getattr(args, name) for name in PARAMETERS}
    params = {k: (v if v is not None else card.parameter(k).default) for k, v in params.items()}
    prompt, seed = "a benchmark prompt", 1234
    pipe = diffusers_pipeline(args.weights, args.motion_adapter, assets_dir(base.model_repository / args.model)
                              / "scheduler")
    print(f"model {args.model}, request {params}, torch threads {torch.get_num_threads()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    threads = {"diffusers": torch.get_num_threads(), "diffusers-1t": 1}
    samples: dict[str, list[float]] = {"diffusers": [], "diffusers-1t": [], "rest": []}
    with private_stack(base.model_repository) as (_, api, _):
        body = {"prompt": prompt, "seed": seed, "model": args.model, **params}
        time_diffusers(pipe, prompt, params, seed, 1)  # warm-up: lazy initialisation on both sides
        await time_rest(api.base_url, body)
        for index in range(args.rounds):  # rotate who goes first, so a load spike hits each side
            sides = list(samples)
            for side in sides[index % 3 :] + sides[: index % 3]:
                if side == "rest":
                    samples[side].append(await time_rest(api.base_url, body))
                else:
                    samples[side].append(time_diffusers(pipe, prompt, params, seed, threads[side]))
    print(f"{args.rounds} interleaved rounds after one warm-up round (load average now {os.getloadavg()[0]:.1f}):")
    medians = {name: summary(name, values) for name, values in samples.items()}
    best = min(("diffusers", "diffusers-1t"), key=medians.__getitem__)
    ratios = [r / d for r, d in zip(samples["rest"], samples[best], strict=True)]
    for side in ("diffusers", "diffusers-1t"):
        print(f"rest / {side:<12} = {medians['rest'] / medians[side]:.3f}")
    print(f"rest / diffusers = {medians['rest'] / medians[best]:.3f}   against the faster one ({best}; goal <= 1.0, "
          f"stretch 0.8; per-round ratios {min(ratios):.2f}..{max(ratios):.2f})")
    return medians


def main(argv: list[str] | None = None) -> None:
    asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    main()
