"""End to end through the real stack: REST/WebSocket -> API -> gRPC stream -> tritonserver (BLS pipeline over the
ONNX component models) -> PyAV -> files served back. Small shapes keep each job to a few seconds on 2 cores."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import numpy as np
import pytest
import websockets

from benchmarks.stack import ApiProcess
from tests.support.jobs import SMALL, decode_frames, download, submit, wait_terminal
from tests.support.triton_stats import assert_mid_run_delete_stops_within_one_step
from visualizr.launcher import TritonServer

pytestmark = pytest.mark.integration


def test_text_to_video_completes_with_playable_files(api: ApiProcess) -> None:
    accepted = submit(api, prompt="a red balloon over a quiet lake", seed=7, **SMALL)
    assert accepted["request_id"].startswith("video_req_")
    assert accepted["status"] in {"queued", "processing"}
    assert isinstance(accepted["queue_position"], int)
    assert accepted["estimated_time_seconds"] > 0
    assert accepted["created_at"].endswith("Z")

    final = wait_terminal(api, accepted["request_id"])
    assert final["status"] == "completed", final
    assert final["progress"] == 100
    assert final["processing_time_seconds"] > 0
    assert final["completed_at"].endswith("Z")
    result = final["result"]
    metadata = result["metadata"]
    assert metadata["resolution"] == "64x64"
    assert metadata["fps"] == SMALL["fps"]
    assert metadata["format"] == "mp4" and metadata["codec"] == "h264"
    assert metadata["duration_seconds"] == pytest.approx(SMALL["num_frames"] / SMALL["fps"], abs=0.01)

    video = download(api, result["video_url"])
    assert video.headers["content-type"].startswith("video/mp4")
    assert metadata["file_size_bytes"] == len(video.content)
    frames, fps = decode_frames(video.content)
    assert len(frames) == SMALL["num_frames"]
    assert fps == SMALL["fps"]
    assert frames[0].shape == (64, 64, 3)
    # faststart: the moov atom comes before mdat so players can start before the download ends
    assert video.content.find(b"moov") < video.content.find(b"mdat")

    assert download(api, result["thumbnail_url"]).headers["content-type"] == "image/jpeg"
    gif = download(api, result["preview_gif_url"])
    assert gif.headers["content-type"] == "image/gif" and gif.content[:6] in (b"GIF89a", b"GIF87a")


def test_same_seed_same_frames_other_seed_other_frames(api: ApiProcess) -> None:
    ids = [submit(api, prompt="determinism", seed=seed, **SMALL)["request_id"] for seed in (123, 123, 124)]
    videos = []
    for request_id in ids:
        final = wait_terminal(api, request_id)
        assert final["status"] == "completed", final
        videos.append(decode_frames(download(api, final["result"]["video_url"]).content)[0])
    assert all(np.array_equal(a, b) for a, b in zip(videos[0], videos[1], strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(videos[0], videos[2], strict=True))


def test_websocket_streams_progress_then_completion(api: ApiProcess) -> None:
    async def scenario() -> list[dict[str, Any]]:
        ws_url = api.base_url.replace("http", "ws", 1) + "/api/v1/ws/generation"
        async with websockets.connect(ws_url) as ws:
            await ws.send("this is not json")
            error = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert error["type"] == "error"
            request_id = submit(api, prompt="websocket", **{**SMALL, "num_inference_steps": 4})["request_id"]
            await ws.send(json.dumps({"type": "subscribe", "request_id": request_id}))
            messages = []
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), 120))
                assert message.get("request_id") == request_id, message
                messages.append(message)
                if message["type"] in {"completed", "failed", "cancelled"}:
                    return messages

    messages = asyncio.run(scenario())
    assert messages[-1]["type"] == "completed", messages[-1]
    assert messages[-1]["result"]["video_url"].endswith(".mp4")
    progress = [m for m in messages if m["type"] == "progress"]
    assert progress, messages
    assert [m["progress"] for m in progress] == sorted(m["progress"] for m in progress)
    assert {"frame_generation"} <= {m["current_step"] for m in progress} | {"queued"}


def test_cancel_running_job_stops_triton_within_one_step(api: ApiProcess, triton: TritonServer) -> None:
    steps = 40  # at 256x256 x 16 frames: seconds of denoising, so a poll sees it under way
    job = {**SMALL, "width": 256, "height": 256, "num_frames": 16, "num_inference_steps": steps}
    request_id = submit(api, prompt="cancel me", seed=1, **job)["request_id"]
    cancelled = assert_mid_run_delete_stops_within_one_step(api, triton, "animatediff", request_id, steps, 60)
    assert cancelled["cancelled_at"].endswith("Z")


def test_cancel_queued_and_unknown(api: ApiProcess) -> None:
    response = httpx.delete(f"{api.base_url}/api/v1/generate/video_req_does_not_exist", timeout=30)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "REQUEST_NOT_FOUND"


@pytest.mark.parametrize(
    ("body", "http_status", "code"),
    [
        ({"prompt": "   "}, 400, "INVALID_PROMPT"),
        ({}, 400, "INVALID_PARAMETERS"),
        ({"prompt": "x", "width": 100}, 400, "INVALID_PARAMETERS"),
        ({"prompt": "x", "num_frames": 100000}, 400, "INVALID_PARAMETERS"),
        ({"prompt": "x", "guidance_scale": "high"}, 400, "INVALID_PARAMETERS"),
        ({"prompt": "x", "model": "no-such-model"}, 404, "MODEL_NOT_FOUND"),
    ],
)
def test_bad_requests_get_the_error_body(api: ApiProcess, body: dict[str, Any], http_status: int, code: str) -> None:
    response = httpx.post(f"{api.base_url}/api/v1/generate/video", json=body, timeout=30)
    assert response.status_code == http_status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    assert "details" in error


def test_malformed_json_and_unknown_request(api: ApiProcess) -> None:
    response = httpx.post(
        f"{api.base_url}/api/v1/generate/video", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "INVALID_PARAMETERS"
    response = httpx.get(f"{api.base_url}/api/v1/generate/status/video_req_nope", timeout=30)
    assert response.status_code == 404 and response.json()["error"]["code"] == "REQUEST_NOT_FOUND"
