"""Talking to the real tritonserver in integration tests: streaming a generation, reading statistics, and the
cancellation check built on them."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import httpx
import tritonclient.grpc.aio as grpcclient

from benchmarks.stack import ApiProcess
from tests.support.jobs import status
from visualizr.families import get_family
from visualizr.launcher import TritonServer
from visualizr.names import component_model_name
from visualizr.pipeline import GenerationRequest, ProgressEvent
from visualizr.triton.client import stream_generation


async def collect_events(triton: TritonServer, model_id: str, request: GenerationRequest) -> list[ProgressEvent]:
    """Every progress event of one generation, streamed on a client of its own."""
    client = grpcclient.InferenceServerClient(triton.settings.triton_grpc_url)
    try:
        return [event async for event in stream_generation(client, model_id, request)]
    finally:
        await client.close()


def _unet_stats(triton: TritonServer, model_id: str) -> list[dict]:
    """Statistics of a demo model's batched denoiser (its unet; LTX-Video's transformer): the demo's models are
    named like their families."""
    denoiser = next(network.component for network in get_family(model_id).networks if network.batched)
    name = component_model_name(model_id, denoiser)
    url = f"http://{triton.settings.triton_http_url}/v2/models/{name}/stats"
    return httpx.get(url, timeout=10).json()["model_stats"]


def unet_executions(triton: TritonServer, model_id: str) -> int:
    """Successful requests to the model's unet (one per denoising step of a job)."""
    return sum(int(s["inference_stats"]["success"]["count"]) for s in _unet_stats(triton, model_id))


def unet_inferences(triton: TritonServer, model_id: str) -> int:
    """Samples the model's unet ran (two per step of a job with classifier-free guidance)."""
    return sum(int(s["inference_count"]) for s in _unet_stats(triton, model_id))


def assert_cancel_stops_within_one_step(
    triton: TritonServer, model_id: str, request: GenerationRequest, steps: int = 40, cancel_at: int = 3
) -> None:
    """Stream ``request`` with ``steps`` steps, leave the stream after step ``cancel_at`` (which cancels it on
    the server) and check with the unet's statistics that at most one more step ran."""
    request_id = f"cancel-test-{model_id}-{time.time_ns()}"
    cancelled_line = f"request {request_id}: cancelled after"

    async def run_and_cancel() -> int:
        client = grpcclient.InferenceServerClient(triton.settings.triton_grpc_url)
        try:
            events = stream_generation(client, model_id, replace(request, num_inference_steps=steps), request_id)
            async for event in events:
                if event.step == cancel_at:
                    break  # leaving the loop cancels the gRPC stream (stream_generation's finally)
            await events.aclose()
            return unet_executions(triton, model_id)
        finally:
            await client.close()

    before = unet_executions(triton, model_id)
    at_cancel = asyncio.run(run_and_cancel()) - before
    assert at_cancel >= cancel_at
    deadline = time.monotonic() + 10
    while cancelled_line not in triton.log_tail(200) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)  # any step that was going to run has run by now
    total = unet_executions(triton, model_id) - before
    assert total <= at_cancel + 1, f"{total} unet calls after cancelling at step {cancel_at} ({at_cancel} then)"
    assert total < steps
    assert cancelled_line in triton.log_tail(200)


def assert_delete_stops_within_one_step(base_url: str, triton: TritonServer, model_id: str, request_id: str) -> dict:
    """``DELETE`` a running job over REST and check with the unet's statistics that at most one more step (two
    samples: the guidance batch) ran after the answer; returns the answer's body."""
    started = unet_inferences(triton, model_id)
    response = httpx.delete(f"{base_url}/api/v1/generate/{request_id}", timeout=30)
    assert response.status_code == 200 and response.json()["status"] == "cancelled", response.text
    at_cancel = unet_inferences(triton, model_id)
    time.sleep(3)  # many steps' worth at the sizes the tests use
    after = unet_inferences(triton, model_id)
    assert after - at_cancel <= 2, (started, at_cancel, after)
    return response.json()


def assert_mid_run_delete_stops_within_one_step(
    api: ApiProcess, triton: TritonServer, model_id: str, request_id: str, steps: int, timeout_s: float = 120
) -> dict:
    """Wait until the job of ``steps`` denoising steps is denoising, ``DELETE`` it
    (``assert_delete_stops_within_one_step``), and check it ran fewer than all its steps and ends cancelled;
    returns the answer's body."""
    deadline = time.monotonic() + timeout_s
    while True:
        body = status(api, request_id)
        if body["status"] == "processing" and body.get("current_step") == "frame_generation":
            break
        assert body["status"] in {"queued", "processing"} and time.monotonic() < deadline, body
        time.sleep(0.02)
    started = unet_inferences(triton, model_id)
    cancelled = assert_delete_stops_within_one_step(api.base_url, triton, model_id, request_id)
    assert unet_inferences(triton, model_id) < started + 2 * steps
    assert status(api, request_id)["status"] == "cancelled"
    return cancelled
