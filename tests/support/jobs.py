"""Helpers of the integration tests: submit a small job, poll it, download and decode its files."""

from __future__ import annotations

import io
import time
from typing import Any

import av
import httpx
import numpy as np

from benchmarks.stack import ApiProcess

SMALL = {"width": 64, "height": 64, "num_frames": 4, "fps": 4, "num_inference_steps": 2, "guidance_scale": 7.5}
LONG = {**SMALL, "num_frames": 8, "num_inference_steps": 50}  # a few seconds: long enough to be hit mid-run


TERMINAL = {"completed", "failed", "cancelled"}


def submit(api: ApiProcess, **body: Any) -> dict[str, Any]:
    response = httpx.post(f"{api.base_url}/api/v1/generate/video", json=body, timeout=30)
    assert response.status_code == 202, response.text
    return response.json()


def status(api: ApiProcess, request_id: str) -> dict[str, Any]:
    response = httpx.get(f"{api.base_url}/api/v1/generate/status/{request_id}", timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def wait_terminal(api: ApiProcess, request_id: str, timeout_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body = status(api, request_id)
        if body["status"] in TERMINAL:
            return body
        time.sleep(0.2)
    raise AssertionError(f"{request_id} not terminal after {timeout_s}s: {body}\n{api.log_tail()}")


def wait_running(api: ApiProcess, request_id: str, timeout_s: float = 300) -> None:
    """Until the job generates frames (its run is under way on Triton)."""
    deadline = time.monotonic() + timeout_s
    while (body := status(api, request_id)).get("current_step") != "frame_generation":
        assert body["status"] not in TERMINAL and time.monotonic() < deadline, f"{request_id} never ran: {body}"
        time.sleep(0.05)


def metric(exposition: str, name: str) -> float:
    """The value of the one series ``name`` in a Prometheus text exposition, whatever its labels (a replica's own
    series carry ``replica``)."""
    values = [
        float(line.rsplit(" ", 1)[1]) for line in exposition.splitlines() if line.startswith((f"{name} ", name + "{"))
    ]
    assert len(values) == 1, f"{len(values)} series {name} in the exposition"
    return values[0]


def download(api: ApiProcess, url: str) -> httpx.Response:
    response = httpx.get(f"{api.base_url}{url}", timeout=30)
    assert response.status_code == 200, url
    return response


def decode_frames(data: bytes) -> tuple[list[np.ndarray], float]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        return frames, float(stream.average_rate)
