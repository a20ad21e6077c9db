"""One large request: how long each phase takes and the peak memory, in-process or through Triton.

    python -m benchmarks.large_clip [--model animatediff] [--width 1024] [--height 1024] [--frames 40] [--steps N]
                                    [--triton]

In-process: the family's loop (visualizr.families) over the repository's ONNX files with onnxruntime, as the Triton
pipeline model runs it (the component models' onnxruntime threads); peak memory is the process's maximum resident
set (getrusage), the sessions included, and CPU seconds are printed beside the wall-clock ones (on a machine shared
with other work they say what the run itself cost). ``--triton``: a private tritonserver loading only the model,
the request streamed over gRPC; peak memory per Python-backend stub (VmHWM), i.e. per Triton model. The steps
default to the model card's.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import tempfile
import time
from pathlib import Path

from benchmarks.pipeline_overhead import component_threads
from benchmarks.stack import stack_settings
from visualizr import process_tree, stubs
from visualizr.launcher import TritonServer
from visualizr.model_card import MODEL_CARD_FILENAME, read_model_card
from visualizr.names import PHASE_FRAME_GENERATION
from visualizr.pipeline import GenerationRequest
from visualizr.pipeline.assets import load_pipeline
from visualizr.pipeline.onnx_components import OnnxComponents
from visualizr.pipeline_config import assets_dir
from visualizr.settings import Settings
from visualizr.triton.client import stream_generation

PROMPT = "a lighthouse on a cliff at dusk, waves below"
SEED = 7


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(repository: Path, model_id: str, request: GenerationRequest) -> dict[str, float]:
    """Wall seconds per phase (the denoising steps summed), the total, its CPU seconds and the peak RSS in MB."""
    pipeline = load_pipeline(assets_dir(repository / model_id))
    components = OnnxComponents.from_repository(repository, model_id, component_threads(repository, model_id))
    cpu_started, clock = _cpu_seconds(), PhaseClock()
    asyncio.run(pipeline(request, components, on_progress=clock))
    return {
        "phases": clock.seconds,
        "total": time.perf_counter() - clock.started,
        "cpu": _cpu_seconds() - cpu_started,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


class PhaseClock:
    """Wall seconds per progress phase (time since the previous event, summed per phase)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.started = self.last = time.perf_counter()

    def __call__(self, event) -> None:
        now = time.perf_counter()
        self.seconds[event.phase] = self.seconds.get(event.phase, 0.0) + now - self.last
        self.last = now


def stub_peaks_mb(server_pid: int) -> dict[str, float]:
    """The peak resident set (VmHWM) of each Python-backend stub of the server, by Triton model."""
    peaks = {}
    for child in process_tree.children(server_pid):
        if stubs.is_stub(child):
            status = Path(f"/proc/{child.pid}/status").read_text()
            kilobytes = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
            peaks[stubs.model_of(child)] = int(kilobytes) / 1024
    return peaks


def run_triton(repository: Path, model_id: str, request: GenerationRequest) -> dict:
    """The request through a private tritonserver that loads only ``model_id``."""
    import tritonclient.grpc.aio as grpcclient

    with tempfile.TemporaryDirectory() as data_dir:
        settings, _ = stack_settings(
            Path(data_dir), VISUALIZR_MODEL_REPOSITORY=str(repository), VISUALIZR_LOAD_MODELS=model_id
        )
        with TritonServer(settings) as triton:
            triton.wait_ready(300)
            clock = PhaseClock()

            async def stream() -> None:
                client = grpcclient.InferenceServerClient(settings.triton_grpc_url)
                try:
                    async for event in stream_generation(client, model_id, request, "large-clip"):
                        clock(event)
                finally:
                    await client.close()

            asyncio.run(stream())
            total = time.perf_counter() - clock.started
            return {"phases": clock.seconds, "total": total, "stub_peak_mb": stub_peaks_mb(triton.process.pid)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repository", type=Path, default=None, help="default: VISUALIZR_MODEL_REPOSITORY")
    parser.add_argument("--model", default="animatediff")
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--height", type=int, default=1024)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--steps", type=int, default=None, help="default: the model card's")
    parser.add_argument("--triton", action="store_true", help="through a private tritonserver")
    args = parser.parse_args(argv)
    repository = args.repository or Settings.from_env().model_repository
    card = read_model_card(repository / args.model / MODEL_CARD_FILENAME)
    steps = args.steps or int(card.parameter("num_inference_steps").default)
    guidance = float(card.parameter("guidance_scale").default)
    request = GenerationRequest(PROMPT, args.width, args.height, args.frames, steps, guidance, SEED)
    result = (run_triton if args.triton else run)(repository, args.model, request)
    phases = ", ".join(f"{phase} {value:.1f} s" for phase, value in result["phases"].items())
    per_step = result["phases"][PHASE_FRAME_GENERATION] / steps
    where = "through Triton" if args.triton else "in-process"
    if args.triton:
        memory = "peak RSS per stub " + ", ".join(f"{m} {mb:.0f} MB" for m, mb in result["stub_peak_mb"].items())
    else:
        memory = f"{result['cpu']:.1f} CPU s; peak RSS {result['peak_rss_mb']:.0f} MB"
    print(
        f"{args.model} {args.width}x{args.height}, {args.frames} frames, {steps} steps, {where}: "
        f"{result['total']:.1f} s ({phases}; {per_step:.2f} s per step); {memory}"
    )
    return result


if __name__ == "__main__":
    main()
