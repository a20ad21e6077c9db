"""LTX-Video through the whole real stack (API process -> gRPC -> tritonserver -> PyAV): text-to-video on the
`ltx-video` demo (frame count and size; a count that is not 8k+1 is trimmed), the same seed giving the same video,
cancellation within one transformer step, and unload/load of the model."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from benchmarks.stack import ApiProcess
from tests.support.jobs import decode_frames, download, wait_terminal
from tests.support.triton_stats import assert_mid_run_delete_stops_within_one_step
from visualizr.launcher import TritonServer
from visualizr.model_card import MODEL_CARD_FILENAME, read_model_card

pytestmark = pytest.mark.integration

LTX = "ltx-video"
TEXT = {
    "prompt": "a paper boat on a stream",
    "model": LTX,
    "width": 64,
    "height": 96,
    "num_frames": 6,
    "fps": 24,
    "num_inference_steps": 3,
    "seed": 4,
}


def submit(api: ApiProcess, **changes: Any) -> str:
    response = httpx.post(f"{api.base_url}/api/v1/generate/video", json={**TEXT, **changes}, timeout=30)
    assert response.status_code == 202, response.text
    return response.json()["request_id"]


def video(api: ApiProcess, request_id: str) -> list[np.ndarray]:
    final = wait_terminal(api, request_id, timeout_s=300)
    assert final["status"] == "completed", f"{final}\n{api.log_tail()}"
    frames, _ = decode_frames(download(api, final["result"]["video_url"]).content)
    return frames


def test_text_to_video_has_the_frames_asked_for_and_the_same_seed_gives_the_same_video(api: ApiProcess) -> None:
    # submitted at once: their MP4s are encoded side by side (tests/test_mp4_determinism.py)
    request_ids = [submit(api, **changes) for changes in ({}, {}, {"seed": 5})]
    first, again, other = (video(api, request_id) for request_id in request_ids)
    assert len(first) == 6 and first[0].shape == (96, 64, 3)  # made as 9 frames, trimmed to the 6 asked for
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_cancel_stops_ltx_within_one_step(api: ApiProcess, triton: TritonServer) -> None:
    steps = 50
    request_id = submit(api, num_inference_steps=steps, width=256, height=256, num_frames=121)
    assert_mid_run_delete_stops_within_one_step(api, triton, LTX, request_id, steps)


def test_unload_and_load_ltx(api: ApiProcess, triton: TritonServer, model_repository: Path) -> None:
    models = read_model_card(model_repository / LTX / MODEL_CARD_FILENAME).triton_models
    listed = httpx.get(f"{api.base_url}/api/v1/models/{LTX}", timeout=30).json()
    assert listed["type"] == "text-to-video" and listed["status"] == "loaded"
    index_url = f"http://{triton.settings.triton_http_url}/v2/repository/index"

    def ready() -> dict[str, bool]:
        return {m["name"]: m.get("state") == "READY" for m in httpx.post(index_url, timeout=30).json()}

    try:
        response = httpx.post(f"{api.base_url}/api/v1/models/{LTX}/unload", timeout=300)
        assert response.status_code == 200 and response.json()["status"] == "unloaded", response.text
        assert not any(ready()[name] for name in models)
        response = httpx.post(f"{api.base_url}/api/v1/models/{LTX}/load", timeout=300)
        assert response.status_code == 200, response.text
        deadline = time.monotonic() + 240
        while httpx.get(f"{api.base_url}/api/v1/models/{LTX}", timeout=30).json()["status"] != "loaded":
            assert time.monotonic() < deadline, api.log_tail()
            time.sleep(0.2)
        assert len(video(api, submit(api, num_frames=2))) == 2
    finally:
        for name in models:  # leave the shared stack as the other tests expect it
            if not ready().get(name):
                httpx.post(f"http://{triton.settings.triton_http_url}/v2/repository/models/{name}/load", timeout=300)
