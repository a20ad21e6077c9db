"""Every Prometheus series the README documents exists after one job, on the real stack: the API's /metrics and
Triton's metrics port, both parsed with prometheus_client's own parser; the PromQL examples name real series."""

from __future__ import annotations

import asyncio
import json
import re

import httpx
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.stack import ApiProcess
from tests.support.readme_metrics import documented_series, promql_examples
from visualizr.launcher import TritonServer

pytestmark = pytest.mark.integration

SMALL = {"width": 64, "height": 64, "num_frames": 4, "fps": 4, "num_inference_steps": 2, "guidance_scale": 7.5}
PHASES = {"text_encoding", "frame_generation", "decoding", "encoding"}


def parse(text: str) -> dict[str, list]:
    """sample name -> samples, family name (as exposed) -> samples: every name a query could use."""
    names: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        # the parser names counters without _total (and their samples with it, whatever the text said)
        for exposed in {family.name, family.name + "_total"} if family.type == "counter" else {family.name}:
            names.setdefault(exposed, []).extend(family.samples)
        for sample in family.samples:
            names.setdefault(sample.name, []).append(sample)
    return names


async def job_with_websocket_open(api: ApiProcess) -> str:
    """Submit a job and follow it over a WebSocket until completed; scrape while the socket is still open."""
    ws_url = api.base_url.replace("http", "ws", 1) + "/api/v1/ws/generation"
    async with websockets.connect(ws_url, max_size=None) as ws, httpx.AsyncClient(base_url=api.base_url) as http:
        response = await http.post("/api/v1/generate/video", json={"prompt": "metrics", **SMALL}, timeout=60)
        request_id = response.json()["request_id"]
        await ws.send(json.dumps({"type": "subscribe", "request_id": request_id}))
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), 120))
            if message["type"] in {"completed", "failed", "cancelled"}:
                assert message["type"] == "completed", message
                break
        return (await http.get("/metrics", timeout=30)).text


def test_every_documented_series_exists_after_a_job(api: ApiProcess, triton: TritonServer) -> None:
    api_text = asyncio.run(job_with_websocket_open(api))
    triton_text = httpx.get(f"http://127.0.0.1:{triton.settings.triton_metrics_port}/metrics", timeout=30).text
    scraped = {"API": parse(api_text), "Triton": parse(triton_text)}
    documented = documented_series()
    assert len(documented) >= 20, documented
    for name, (endpoint, labels) in documented.items():
        assert name in scraped[endpoint], f"{name} is documented but not on the {endpoint} endpoint"
        for sample in scraped[endpoint][name]:
            assert labels <= set(sample.labels), (name, labels, sample.labels)

    api_samples = scraped["API"]
    assert api_samples["visualizr_websocket_connections"][0].value >= 1  # ours, still open at the scrape
    phases = {s.labels["phase"] for s in api_samples["visualizr_job_phase_duration_seconds_count"] if s.value > 0}
    # other tests' jobs on the session stack: image_encoding (SVD, characters), keyframe (SVD text-to-video)
    assert PHASES <= phases <= {*PHASES, "image_encoding", "keyframe"}, phases
    assert any(s.value >= 1 for s in api_samples["visualizr_job_end_to_end_seconds_count"])
    assert any(s.value >= 1 for s in api_samples["visualizr_job_queue_wait_seconds_count"])
    buckets = {float(s.labels["le"]) for s in api_samples["visualizr_http_request_duration_seconds_bucket"]}
    assert min(buckets) <= 0.001, "HTTP latency needs millisecond buckets"
    steps = scraped["Triton"]["visualizr_pipeline_step_duration_seconds_count"]
    assert any(s.labels.get("family") == "animatediff" and s.value >= 2 for s in steps), steps
    quantiles = {s.labels.get("quantile") for s in scraped["Triton"]["nv_inference_request_summary_us"]}
    assert {"0.5", "0.95", "0.99"} <= quantiles, quantiles

    for query in promql_examples():  # every series a PromQL example reads exists, with the labels it groups by
        for series in re.findall(r"\b((?:visualizr|nv)_[a-z_]+)\b", query):
            endpoint = "Triton" if series.startswith(("nv_", "visualizr_pipeline")) else "API"
            assert series in scraped[endpoint], (query, series)
            grouped = re.findall(r"by \(([^)]*)\)", query)
            for labels in grouped:
                wanted = {label.strip() for label in labels.split(",")}
                assert all(wanted <= set(s.labels) for s in scraped[endpoint][series]), (query, series)
