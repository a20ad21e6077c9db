"""What Triton and the API add on top of the denoising loop itself, measured side by side in one run.

For the model card's default request (a prompt-only request), interleaving the three ways each round:
  in-process : the same loop (visualizr.pipeline) over the same ONNX files with onnxruntime in this process
  triton     : the pipeline model in tritonserver (BLS -> component models), streamed over gRPC, as the API does
  rest       : POST /api/v1/generate/video and wait for the WebSocket `completed` message (includes PyAV encoding)
and PyAV encoding of the frames alone, so the API's overhead can be told apart from encoding.

    python -m benchmarks.pipeline_overhead [--rounds 3] [--width 128 --height 128 ...]

Prints medians and the ratios triton/in-process (goal <= 1.10) and rest/triton (goal <= 1.05 plus encoding).
The machine is noisy: read ratios from one run, not absolute times across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from pathlib import Path

import httpx
import websockets
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2
from tritonclient.grpc.aio import InferenceServerClient

from benchmarks.stack import private_stack
from visualizr.frontend.generation.encoding import encode_assets
from visualizr.model_card import MODEL_CARD_FILENAME, read_model_card
from visualizr.names import component_model_name
from visualizr.pipeline import GenerationRequest
from visualizr.pipeline.assets import assets_dir
from visualizr.pipeline.loop import TextToVideoPipeline
from visualizr.pipeline.onnx_components import OnnxComponents
from visualizr.settings import Settings
from visualizr.triton.client import stream_generation


def component_threads(repository: Path, family: str) -> int:
    """The onnxruntime intra-op threads the Triton component models use, so in-process runs use the same."""
    config = model_config_pb2.ModelConfig()
    text_format.Parse((repository / component_model_name(family, "unet") / "config.pbtxt").read_text(), config)
    return int(config.parameters["intra_op_num_threads"].string_value)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="animatediff")
    parser.add_argument("--rounds", type=int, default=3)
    for name in ("width", "height", "num_frames", "fps", "num_inference_steps"):
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, type=int, default=None)
    parser.add_argument("--guidance-scale", dest="guidance_scale", type=float, default=None)
    return parser.parse_args()


async def time_in_process(pipeline: TextToVideoPipeline, components: OnnxComponents, request: GenerationRequest):
    start = time.perf_counter()
    frames = await pipeline(request, components)
    return time.perf_counter() - start, frames


async def time_triton(client: InferenceServerClient, model: str, request: GenerationRequest) -> float:
    start = time.perf_counter()
    frames = None
    async for event in stream_generation(client, model, request, "bench"):
        frames = event.frames if event.frames is not None else frames
    elapsed = time.perf_counter() - start
    assert frames is not None, "no frames from Triton"
    return elapsed


async def time_rest(base_url: str, body: dict) -> float:
    ws_url = base_url.replace("http", "ws", 1) + "/api/v1/ws/generation"
    async with websockets.connect(ws_url, max_size=None) as ws, httpx.AsyncClient(base_url=base_url) as http:
        start = time.perf_counter()
        response = await http.post("/api/v1/generate/video", json=body, timeout=60)
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


async def run(args: argparse.Namespace) -> None:
    base = Settings.from_env()
    card = read_model_card(base.model_repository / args.model / MODEL_CARD_FILENAME)
    params = {name: getattr(args, name) for name in ("width", "height", "num_frames", "fps",
                                                      "num_inference_steps", "guidance_scale")}
    params = {k: (v if v is not None else card.parameter(k).default) for k, v in params.items()}
    seed = 1234
    request = GenerationRequest(prompt="a benchmark prompt", seed=seed, negative_prompt="",
                                **{k: v for k, v in params.items() if k != "fps"})
    threads = component_threads(base.model_repository, card.family)
    pipeline = TextToVideoPipeline.from_assets(assets_dir(base.model_repository / args.model))
    components = OnnxComponents.from_repository(base.model_repository, card.family, threads)
    print(f"model {args.model}, request {params}, onnxruntime intra-op threads {threads}, {os.cpu_count()} CPUs")

    with private_stack(base.model_repository) as (settings, api, data_dir):
        client = InferenceServerClient(settings.triton_grpc_url)
        try:
            body = {"prompt": request.prompt, "seed": seed, "model": args.model, **params}
            # warm-up: first calls pay for lazy initialisation in onnxruntime and Triton
            _, frames = await time_in_process(pipeline, components, request)
            await time_triton(client, args.model, request)
            await time_rest(api.base_url, body)
            samples: dict[str, list[float]] = {"in-process": [], "triton": [], "rest": [], "encoding": []}
            for _ in range(args.rounds):
                samples["in-process"].append((await time_in_process(pipeline, components, request))[0])
                samples["triton"].append(await time_triton(client, args.model, request))
                samples["rest"].append(await time_rest(api.base_url, body))
                start = time.perf_counter()
                encode_assets(frames, params["fps"], data_dir / "bench-encoding", "bench")
                samples["encoding"].append(time.perf_counter() - start)
        finally:
            await client.close()

    print(f"{args.rounds} interleaved rounds after one warm-up round:")
    medians = {name: report(name, values) for name, values in samples.items()}
    print(f"triton / in-process            = {medians['triton'] / medians['in-process']:.3f}   (goal <= 1.10)")
    print(f"rest / triton                  = {medians['rest'] / medians['triton']:.3f}")
    print(f"(rest - encoding) / triton     = {(medians['rest'] - medians['encoding']) / medians['triton']:.3f}"
          "   (goal <= 1.05)")


def main() -> None:
    asyncio.run(run(parse_args()))


if __name__ == "__main__":
    main()
