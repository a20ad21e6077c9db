"""What Triton and the API add on top of the denoising loop itself, measured side by side in one run.

For each model (default: every model of the repository) and its model card's default request (a source image
for image-to-video models), interleaving the ways each round:
  in-process : the same loop (the family's, visualizr.families) over the same ONNX files with onnxruntime here
  triton     : the pipeline model in tritonserver (BLS -> component models), streamed over gRPC as the API does
  rest       : POST /api/v1/generate/video (image-to-video models: POST .../from-image with the same picture
               as a PNG of the requested size, motion_strength 0.5: SVD's default conditioning) and wait for the
               WebSocket `completed` message (includes PyAV encoding)
and PyAV encoding of the frames alone, so the API's overhead can be told apart from encoding.

    python -m benchmarks.pipeline_overhead [--rounds 3] [--models animatediff,...] [--width 128 ...]

Prints medians and the ratios triton/in-process (goal <= 1.10) and rest/triton (goal <= 1.05 plus encoding).
The machine is noisy: read ratios from one run, not absolute times across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import statistics
import time
from pathlib import Path

import httpx
import numpy as np
import torch
import tritonclient.grpc.aio as grpcclient
import websockets
from google.protobuf import text_format
from PIL import Image
from tritonclient.grpc import model_config_pb2

from benchmarks.stack import private_stack
from visualizr.families import get_family
from visualizr.frontend.generation.running.encoding import encode_assets
from visualizr.model_card import MODEL_CARD_FILENAME, ModelCard, read_model_card
from visualizr.names import component_model_name
from visualizr.pipeline import GenerationRequest
from visualizr.pipeline.assets import load_pipeline
from visualizr.pipeline.onnx_components import OnnxComponents
from visualizr.pipeline.tensors import CPU_LOOP_THREADS
from visualizr.pipeline_config import assets_dir
from visualizr.settings import Settings
from visualizr.triton.client import stream_generation

PARAMETERS = ("width", "height", "num_frames", "fps", "num_inference_steps", "guidance_scale")
SEED = 1234
MOTION_STRENGTH = 0.5  # from-image: SVD's own default conditioning (motion bucket 127, noise augmentation 0.02)


def component_threads(repository: Path, model_id: str) -> int:
    """The intra-op threads the Triton component models use (their batched denoiser's), so in-process runs use the
    same."""
    card = read_model_card(repository / model_id / MODEL_CARD_FILENAME)
    denoiser = next(network.component for network in get_family(card.family).networks if network.batched)
    config = model_config_pb2.ModelConfig()
    text_format.Parse((repository / component_model_name(card.id, denoiser) / "config.pbtxt").read_text(), config)
    return int(config.parameters["intra_op_num_threads"].string_value)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", help="comma-separated model ids (default: every model of the repository)")
    parser.add_argument("--rounds", type=int, default=3)
    for name in PARAMETERS[:-1]:
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, type=int, default=None)
    parser.add_argument("--guidance-scale", dest="guidance_scale", type=float, default=None)
    return parser.parse_args(argv)


def source_image(height: int, width: int) -> np.ndarray:
    """A deterministic uint8 [H, W, 3] picture: two coloured halves crossed by a gradient."""
    y, x = np.mgrid[0:height, 0:width]
    halves = np.where(x[..., None] < width // 2, np.array([230, 40, 40]), np.array([20, 60, 220]))
    return np.clip(halves + (255 * y // max(1, height))[..., None] - 64, 0, 255).astype(np.uint8)


def benchmark_request(card: ModelCard, args: argparse.Namespace) -> tuple[GenerationRequest, dict]:
    params = {name: getattr(args, name) for name in PARAMETERS}
    params = {k: (v if v is not None else card.parameter(k).default) for k, v in params.items()}
    image = None
    if get_family(card.family).kind == "image-to-video":
        image = source_image(int(params["height"]), int(params["width"]))
    request = GenerationRequest(prompt="a benchmark prompt", seed=SEED, image=image, **params)
    return request, params


async def time_in_process(pipeline, components: OnnxComponents, request: GenerationRequest):
    start = time.perf_counter()
    frames = await pipeline(request, components)
    return time.perf_counter() - start, frames


async def time_triton(client: grpcclient.InferenceServerClient, model: str, request: GenerationRequest) -> float:
    start = time.perf_counter()
    frames = None
    async for event in stream_generation(client, model, request, "bench"):
        frames = event.frames if event.frames is not None else frames
    elapsed = time.perf_counter() - start
    assert frames is not None, "no frames from Triton"
    return elapsed


def rest_body(model: str, request: GenerationRequest, params: dict) -> tuple[dict, bytes | None]:
    """What a REST client sends for the same generation: a JSON body, or for an image the from-image form
    (``duration_seconds`` = num_frames / fps gives back num_frames) and the picture as a PNG."""
    if request.image is None:
        return {"prompt": request.prompt, "seed": SEED, "model": model, **params}, None
    form = {"motion_prompt": request.prompt, "seed": SEED, "model": model, "motion_strength": MOTION_STRENGTH,
            "duration_seconds": params["num_frames"] / params["fps"]}
    form |= {name: params[name] for name in PARAMETERS if name != "num_frames"}
    png = io.BytesIO()
    Image.fromarray(request.image).save(png, format="PNG")
    return {name: str(value) for name, value in form.items()}, png.getvalue()


async def time_rest(base_url: str, body: dict, image_png: bytes | None = None) -> float:
    """One job through the API until its WebSocket says completed: the JSON route, or from-image with a PNG."""
    ws_url = base_url.replace("http", "ws", 1) + "/api/v1/ws/generation"
    async with websockets.connect(ws_url, max_size=None) as ws, httpx.AsyncClient(base_url=base_url) as http:
        start = time.perf_counter()
        if image_png is None:
            response = await http.post("/api/v1/generate/video", json=body, timeout=60)
        else:
            files = {"image": ("source.png", image_png, "image/png")}
            response = await http.post("/api/v1/generate/video/from-image", data=body, files=files, timeout=60)
        response.raise_for_status()
        request_id = response.json()["request_id"]
        await ws.send(json.dumps({"type": "subscribe", "request_id": request_id}))
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == "completed":
                return time.perf_counter() - start
            if message["type"] in {"failed", "cancelled", "error"}:
                raise RuntimeError(f"job ended with {message}")


def report(name: str, samples: list[float]) -> float:
    median = statistics.median(samples)
    print(f"  {name:<12} median {median:7.3f} s   runs: {', '.join(f'{s:.3f}' for s in samples)}")
    return median


async def bench_model(model: str, repository: Path, client, api_url: str, data_dir: Path, rounds: int, args) -> None:
    card = read_model_card(repository / model / MODEL_CARD_FILENAME)
    request, params = benchmark_request(card, args)
    threads = component_threads(repository, model)
    pipeline = load_pipeline(assets_dir(repository / model))
    components = OnnxComponents.from_repository(repository, model, threads)
    torch.set_num_threads(CPU_LOOP_THREADS)  # the loop's own torch work, as in a CPU pipeline instance
    print(f"model {model} ({card.family}), request {params}, onnxruntime intra-op threads {threads}, "
          f"{os.cpu_count()} CPUs")
    body, image_png = rest_body(model, request, params)
    # warm-up: first calls pay for lazy initialisation in onnxruntime and Triton
    _, frames = await time_in_process(pipeline, components, request)
    await time_triton(client, model, request)
    await time_rest(api_url, body, image_png)
    samples: dict[str, list[float]] = {"in-process": [], "triton": [], "rest": [], "encoding": []}
    for _ in range(rounds):
        samples["in-process"].append((await time_in_process(pipeline, components, request))[0])
        samples["triton"].append(await time_triton(client, model, request))
        samples["rest"].append(await time_rest(api_url, body, image_png))
        start = time.perf_counter()
        encode_assets(frames, int(params["fps"]), data_dir / "bench-encoding", "bench")
        samples["encoding"].append(time.perf_counter() - start)

    print(f"{model}: {rounds} interleaved rounds after one warm-up round:")
    medians = {name: report(name, values) for name, values in samples.items()}
    print(f"{model}: triton / in-process            = {medians['triton'] / medians['in-process']:.3f}"
          "   (goal <= 1.10)")
    print(f"{model}: rest / triton                  = {medians['rest'] / medians['triton']:.3f}")
    print(f"{model}: (rest - encoding) / triton     = "
          f"{(medians['rest'] - medians['encoding']) / medians['triton']:.3f}   (goal <= 1.05)")


async def run(args: argparse.Namespace) -> None:
    base = Settings.from_env()
    repository = base.model_repository
    models = args.models.split(",") if args.models else sorted(
        p.parent.name for p in repository.glob(f"*/{MODEL_CARD_FILENAME}")
    )
    with private_stack(repository) as (settings, api, data_dir):
        client = grpcclient.InferenceServerClient(settings.triton_grpc_url)
        try:
            for model in models:
                await bench_model(model, repository, client, api.base_url, data_dir, args.rounds, args)
        finally:
            await client.close()


def main(argv: list[str] | None = None) -> None:
    asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    main()
