"""Visualizr's pipeline vs diffusers' own pipeline (AnimateDiffPipeline, LTXPipeline) on the same weights, in one
run on one GPU.

    python -m benchmarks.gpu                      # real sizes (SD1.5 UNet + v1.5-2 motion adapter, random), 16x512x512,
                                                  # 25 steps, CFG 7.5, fp16 on cuda
    python -m benchmarks.gpu --family ltx-video   # LTX-Video 0.9.5 (T5-XXL, 2B transformer, VAE; random),
                                                  # 121x512x768, 50 steps, CFG 3, bf16 on cuda
    python -m benchmarks.gpu --size tiny --device cpu --dtype fp32 --steps 2 --frames 4 --height 64 --width 64

Interleaved rounds, each timing both (alternating which goes first) on the SAME modules:
  diffusers  : diffusers' pipeline of the family(...)(prompt, ...), output_type "np"
  visualizr  : the family's loop with tensor I/O on the device over TorchComponents (the export's spec
               wrappers: the modules the ONNX/TensorRT engines are traced from), i.e. Visualizr's loop in-process
  triton     : with --triton-url, the pipeline model streamed over gRPC; only meaningful when that repository was
               exported from these weights (--save-weights DIR, then python -m visualizr.export --weights DIR)
Per stage (text encoder, the unet or transformer over all steps, vae decode, the rest: scheduler, guidance, copies,
Python; what each family times is in gpu_families) it prints
medians, the ratio to diffusers, and the FLOP floor: FLOPs (counted on the meta device) / the GPU's dense FP16 peak.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.gpu_families import FAMILIES, BenchFamily, fresh_scheduler
from benchmarks.gpu_models import save_components
from visualizr.export.build_stamp import ExportOptions
from visualizr.export.family import family_export
from visualizr.pipeline import GenerationRequest
from visualizr.pipeline.tensors import TensorPlacement
from visualizr.pipeline.torch_components import TorchComponents

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
# Dense FP16/BF16 tensor-core peaks (TFLOP/s, no sparsity) by a substring of the GPU's name.
PEAK_TFLOPS = {"H200": 989.4, "H100 PCIe": 756.0, "H100": 989.4, "A100": 312.0, "L40S": 362.1, "L4": 121.0}
PROMPT = "a corgi running on a beach at sunset, cinematic"


class StageTimer:
    """Wraps the shared modules' entry points once; both pipelines call them, so both are timed alike."""

    def __init__(self, device: torch.device, stages: tuple[str, ...]) -> None:
        self.device, self.stages = device, stages
        self.seconds: dict[str, float] = defaultdict(float)

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def wrap(self, owner: Any, attribute: str, stage: str) -> None:
        original = getattr(owner, attribute)

        def timed(*args: Any, **kwargs: Any) -> Any:
            self.sync()
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.sync()
                self.seconds[stage] += time.perf_counter() - started

        setattr(owner, attribute, timed)

    @contextmanager
    def run(self, results: dict[str, list[float]]):
        self.seconds.clear()
        self.sync()
        started = time.perf_counter()
        yield
        self.sync()
        total = time.perf_counter() - started
        for stage in self.stages:
            results[stage].append(self.seconds[stage])
        results["other"].append(total - sum(self.seconds[s] for s in self.stages))
        results["total"].append(total)


def _to_uint8(video: np.ndarray) -> np.ndarray:
    return (np.asarray(video, dtype=np.float32) * 255.0).round().clip(0, 255).astype(np.uint8)


def build(args: argparse.Namespace) -> dict[str, Any]:
    family: BenchFamily = FAMILIES[args.family]
    device, dtype = torch.device(args.device), args.torch_dtype
    components = family.load(args)
    if args.save_weights:
        save_components(components, args.save_weights, family.subfolders)
    # the export's view of these networks: pipeline config, specs (whose wrappers the engines are traced from)
    model = family_export(family.name).describe(ExportOptions(Path("."), model_id="benchmark"), components)
    config = model.config
    wrappers = {s.component: s.wrapper(model.networks[s.component]) for s in model.specs}
    modules = {s.component: (s.input_names, wrappers[s.component]) for s in model.specs}
    torch_components = TorchComponents(modules, device=device, dtype=dtype)
    visualizr = family.visualizr_pipeline()(
        config, components.tokenizer, lambda: fresh_scheduler(components), TensorPlacement(device, tensors=True)
    )
    diffusers = family.diffusers_pipeline(components).to(device, dtype)
    diffusers.set_progress_bar_config(disable=True)
    timer = StageTimer(device, family.stages)
    for owner, attribute, stage in family.timed(components, wrappers):
        timer.wrap(owner, attribute, stage)
    return {"family": family, "components": components, "config": config,
            "visualizr": (visualizr, torch_components), "diffusers": diffusers, "timer": timer}


def run_diffusers(built: dict[str, Any], request: GenerationRequest) -> np.ndarray:
    output = built["diffusers"](
        **built["family"].diffusers_arguments(built["config"], request),
        prompt=request.prompt,
        negative_prompt=request.negative_prompt or None,
        num_frames=request.num_frames,
        height=request.height,
        width=request.width,
        num_inference_steps=request.num_inference_steps,
        guidance_scale=request.guidance_scale,
        generator=torch.Generator("cpu").manual_seed(request.seed),
        output_type="np",
    )
    return _to_uint8(output.frames[0][: request.num_frames])  # LTX makes 8k + 1 frames, Visualizr trims to them


def run_visualizr(built: dict[str, Any], request: GenerationRequest) -> np.ndarray:
    pipeline, components = built["visualizr"]
    return asyncio.run(pipeline(request, components))


def run_triton(
    url: str, model_id: str, request: GenerationRequest, stages: tuple[str, ...], results: dict[str, list[float]]
) -> np.ndarray:
    """One generation through Triton; stages from the arrival times of its progress responses."""
    import tritonclient.grpc.aio as grpcclient

    from visualizr.triton.client import stream_generation

    async def stream() -> tuple[list[tuple[str, float]], np.ndarray]:
        client = grpcclient.InferenceServerClient(url)
        try:
            started, marks, frames = time.perf_counter(), [], None
            async for event in stream_generation(client, model_id, request):
                marks.append((event.phase, time.perf_counter() - started))
                frames = event.frames if event.frames is not None else frames
            return marks, frames
        finally:
            await client.close()

    marks, frames = asyncio.run(stream())
    times = [t for _, t in marks]  # text_encoding, steps..., decoding, done
    text_encoder, denoiser, vae_decoder = stages
    results[text_encoder].append(times[0])
    results[denoiser].append(times[-3] - times[0])
    results[vae_decoder].append(times[-2] - times[-3])
    results["other"].append(times[-1] - times[-2])
    results["total"].append(times[-1])
    return frames


def peak_tflops(args: argparse.Namespace) -> float | None:
    if args.peak_tflops:
        return args.peak_tflops
    if args.device.startswith("cuda"):
        name = torch.cuda.get_device_name(torch.device(args.device))
        return next((peak for key, peak in PEAK_TFLOPS.items() if key in name), None)
    return None


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    built = build(args)
    family: BenchFamily = built["family"]
    request = GenerationRequest(
        PROMPT, args.width, args.height, args.frames, args.steps, args.guidance, args.seed, negative_prompt=""
    )
    ways = {"diffusers": lambda: run_diffusers(built, request), "visualizr": lambda: run_visualizr(built, request)}
    results: dict[str, dict[str, list[float]]] = {way: defaultdict(list) for way in ways}
    frames: dict[str, np.ndarray] = {}
    with torch.no_grad():
        for way in ways.values():  # warm-up: kernels, allocator, cuDNN autotuning
            way()
        if args.triton_url:  # warm-up of the server's models, then timed after the in-process ways each round
            run_triton(args.triton_url, args.model_id, request, family.stages, defaultdict(list))
            results["triton"] = defaultdict(list)
        for round_index in range(args.repeats):
            order = list(ways) if round_index % 2 == 0 else list(reversed(ways))
            for way in order:
                with built["timer"].run(results[way]):
                    frames[way] = ways[way]()
            if args.triton_url:
                frames["triton"] = run_triton(args.triton_url, args.model_id, request, family.stages, results["triton"])
    batch = 2 if request.do_classifier_free_guidance else 1
    flops = family.flops(built["components"], batch, args.frames, args.height, args.width)
    flops[family.denoiser] *= args.steps
    return report(args, family, results, frames, flops, peak_tflops(args))


def report(args, family: BenchFamily, results, frames, flops, peak) -> dict[str, Any]:
    medians = {way: {stage: statistics.median(v) for stage, v in stages.items()} for way, stages in results.items()}
    base = medians["diffusers"]
    device = torch.cuda.get_device_name(torch.device(args.device)) if args.device.startswith("cuda") else "cpu"
    print(f"{family.name}, {args.size} sizes, {args.frames}x{args.height}x{args.width}, {args.steps} steps, "
          f"CFG {args.guidance}, {args.dtype} on {device}, median of {args.repeats} interleaved rounds (seconds)")
    ways = list(medians)
    print(f"{'stage':<14}" + "".join(f"{w:>12}" for w in ways) + "".join(f"{w + '/diff':>16}" for w in ways[1:])
          + f"{'TFLOP':>10}{'floor s':>10}")
    floor: dict[str, float | None] = {}
    for stage in (*family.stages, "other", "total"):
        tflop = sum(flops.values()) / 1e12 if stage == "total" else flops.get(stage, 0) / 1e12
        floor[stage] = tflop / peak if peak and stage != "other" else None
        row = f"{stage:<14}" + "".join(f"{medians[w][stage]:>12.4f}" for w in ways)
        row += "".join(f"{medians[w][stage] / base[stage]:>16.3f}" if base[stage] else f"{'-':>16}" for w in ways[1:])
        row += f"{tflop:>10.2f}" + (f"{floor[stage]:>10.3f}" if floor[stage] is not None else f"{'-':>10}")
        print(row)
    differences = {w: int(np.abs(f.astype(int) - frames["diffusers"]).max()) for w, f in frames.items()}
    achieved = flops[family.denoiser] / 1e12 / medians["visualizr"][family.denoiser]
    print(f"visualizr {family.denoiser}: {achieved:.1f} TFLOP/s achieved" + (f" of {peak:.0f} peak" if peak else "")
          + f"; frames vs diffusers: max |difference| {differences}")
    result = {"medians": medians, "ratios": {w: medians[w]["total"] / base["total"] for w in ways},
              "flops": flops, "floor_seconds": floor, "frame_differences": differences, "device": device}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", choices=tuple(FAMILIES), default="animatediff")
    parser.add_argument("--size", choices=("real", "tiny"), default="real")
    parser.add_argument("--weights", type=Path, help="a local diffusers folder of the family instead of random weights")
    parser.add_argument("--motion-adapter", type=Path, help="AnimateDiff's, with --weights")
    parser.add_argument("--save-weights", type=Path, help="save the weights as a folder visualizr.export loads")
    parser.add_argument("--device", default="cuda")
    # the case's defaults are the family's (gpu_families)
    parser.add_argument("--dtype", choices=tuple(DTYPES))
    parser.add_argument("--frames", type=int)
    parser.add_argument("--height", type=int)
    parser.add_argument("--width", type=int)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--guidance", type=float)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--peak-tflops", type=float, help="the GPU's dense FP16 peak (default: by name)")
    parser.add_argument("--triton-url", help="also time the pipeline model on this Triton (gRPC host:port)")
    parser.add_argument("--model-id", help="the Triton-served model (default: the family's demo model)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    for name, value in FAMILIES[args.family].defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.model_id = args.model_id or args.family
    args.torch_dtype = DTYPES[args.dtype]
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    return benchmark(parse_args(argv))


if __name__ == "__main__":
    main()
