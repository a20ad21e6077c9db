"""Stable Video Diffusion through the whole real stack (API process -> gRPC -> tritonserver -> PyAV): from-image
jobs on PNG and JPEG sources, determinism, cancellation within one step, text-to-video through the demo's keyframe
stage (the keyframe kept with the video), long clips made of segments (every frame there; cancelled in the second
segment), the models endpoints on both families independently, and the SDK/CLI with --model."""

from __future__ import annotations

import asyncio
import io
import json
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import websockets
from PIL import Image

from benchmarks.stack import ApiProcess
from tests.support.images import gradient_image
from tests.support.jobs import decode_frames, download, status, wait_terminal
from tests.support.triton_stats import assert_delete_stops_within_one_step, assert_mid_run_delete_stops_within_one_step
from visualizr.frontend.generation.running.progress import progress_of
from visualizr.frontend.jobs.naming import video_id_of
from visualizr.launcher import TritonServer
from visualizr.model_card import MODEL_CARD_FILENAME, read_model_card

pytestmark = pytest.mark.integration

SVD = "stable-video-diffusion"
FROM_IMAGE = "/api/v1/generate/video/from-image"
FORM = {
    "motion_prompt": "not used by SVD",
    "duration_seconds": "1.2",
    "fps": "5",
    "motion_strength": "0.5",
    "num_inference_steps": "3",
    "width": "96",
    "height": "64",
    "seed": "21",
}


def encoded(fmt: str, height: int = 90, width: int = 120) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(gradient_image(height, width)).save(buffer, format=fmt)
    return buffer.getvalue()


def upload(api: ApiProcess, image: bytes, filename: str = "source.png", **changes: str) -> str:
    response = httpx.post(
        f"{api.base_url}{FROM_IMAGE}",
        data={**FORM, **changes},
        files={"image": (filename, image, "application/octet-stream")},
        timeout=30,
    )
    assert response.status_code == 202, response.text
    return response.json()["request_id"]


def completed(api: ApiProcess, request_id: str) -> tuple[list[np.ndarray], dict[str, Any]]:
    final = wait_terminal(api, request_id, timeout_s=300)
    assert final["status"] == "completed", f"{final}\n{api.log_tail()}"
    frames, _ = decode_frames(download(api, final["result"]["video_url"]).content)
    return frames, final


def triton_ready(triton: TritonServer) -> dict[str, bool]:
    index = httpx.post(f"http://{triton.settings.triton_http_url}/v2/repository/index", timeout=30).json()
    return {m["name"]: m.get("state") == "READY" for m in index}


@pytest.mark.parametrize("fmt, filename", [("PNG", "source.png"), ("JPEG", "source.jpg")])
def test_png_and_jpeg_give_duration_times_fps_frames_at_the_requested_size(
    api: ApiProcess, fmt: str, filename: str
) -> None:
    request_id = upload(api, encoded(fmt), filename)  # no model: the image-to-video model, SVD
    frames, final = completed(api, request_id)
    assert len(frames) == 6 and all(f.shape == (64, 96, 3) for f in frames)  # 1.2 s x 5 fps
    metadata = final["result"]["metadata"]
    assert (metadata["resolution"], metadata["fps"], metadata["num_frames"]) == ("96x64", 5, 6)
    asset = httpx.get(f"{api.base_url}/api/v1/assets/videos/{video_id_of(request_id)}", timeout=30).json()
    assert asset["model"] == SVD  # and what SVD was conditioned on: motion_strength 0.5 is SVD's default
    assert (asset["parameters"]["motion_bucket_id"], asset["parameters"]["noise_aug_strength"]) == (127, 0.02)


def test_same_seed_same_frames_other_seed_other_frames(api: ApiProcess) -> None:
    png = encoded("PNG")
    request_ids = [upload(api, png, seed=seed) for seed in ("7", "7", "8")]  # at once, encoded side by side
    videos = [completed(api, request_id)[0] for request_id in request_ids]
    assert all(np.array_equal(a, b) for a, b in zip(videos[0], videos[1], strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(videos[0], videos[2], strict=True))


def test_cancel_mid_run_stops_svd_within_one_step(api: ApiProcess, triton: TritonServer) -> None:
    steps = 40
    request_id = upload(api, encoded("PNG"), num_inference_steps=str(steps), width="128", height="96")
    assert_mid_run_delete_stops_within_one_step(api, triton, SVD, request_id, steps)


TEXT = {"prompt": "a lighthouse on a cliff at dusk", "negative_prompt": "fog", "model": SVD, "width": 64,
        "height": 64, "num_frames": 16, "fps": 8, "num_inference_steps": 12, "seed": 5}


async def followed(api: ApiProcess, body: dict[str, Any]) -> list[dict[str, Any]]:
    """Submit ``body`` and collect its WebSocket messages until it ends."""
    async with websockets.connect(api.base_url.replace("http", "ws", 1) + "/api/v1/ws/generation") as ws:
        response = httpx.post(f"{api.base_url}/api/v1/generate/video", json=body, timeout=30)
        assert response.status_code == 202, response.text
        await ws.send(json.dumps({"type": "subscribe", "request_id": response.json()["request_id"]}))
        messages = []
        while not messages or messages[-1]["type"] not in {"completed", "failed", "cancelled"}:
            messages.append(json.loads(await asyncio.wait_for(ws.recv(), 300)))
        return messages


def test_text_to_video_on_svd_makes_a_keyframe_and_keeps_it(api: ApiProcess) -> None:
    messages = asyncio.run(followed(api, TEXT))
    assert messages[-1]["type"] == "completed", f"{messages[-1]}\n{api.log_tail()}"
    progress = [m for m in messages if m["type"] == "progress" and m["status"] == "processing"]
    percents = [m["progress"] for m in progress]
    assert percents == sorted(percents), percents  # over both stages and both segments (16 frames: 0-13, 12-15)
    steps_seen = [m["current_step"] for m in progress]
    assert "keyframe" in steps_seen and "frame_generation" in steps_seen
    assert steps_seen.index("keyframe") < steps_seen.index("frame_generation")
    result = messages[-1]["result"]
    frames, _ = decode_frames(download(api, result["video_url"]).content)
    assert len(frames) == 16 and all(f.shape == (64, 64, 3) for f in frames)
    keyframe = download(api, result["keyframe_url"])
    assert keyframe.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(keyframe.content)).size == (64, 64)
    video_id = result["video_url"].rsplit("/", 1)[1].removesuffix(".mp4")
    asset = httpx.get(f"{api.base_url}/api/v1/assets/videos/{video_id}", timeout=30).json()
    assert asset["keyframe_url"] == result["keyframe_url"] and asset["negative_prompt"] == "fog"


def test_a_long_clip_from_an_image_has_every_frame(api: ApiProcess) -> None:
    """The contract's from-image example's length: 3 s at 24 fps, 72 frames (six segments of 14 on the demo)."""
    request_id = upload(api, encoded("PNG"), duration_seconds="3", fps="24", num_inference_steps="2")
    frames, final = completed(api, request_id)
    assert len(frames) == 72 and all(f.shape == (64, 96, 3) for f in frames)
    assert (final["result"]["metadata"]["num_frames"], final["result"]["metadata"]["fps"]) == (72, 24)


def test_cancel_in_the_second_segment_stops_svd_within_one_step(api: ApiProcess, triton: TritonServer) -> None:
    steps = 30  # per segment; 20 frames are two segments
    form = {"duration_seconds": "4", "fps": "5", "num_inference_steps": str(steps), "width": "128", "height": "96"}
    request_id = upload(api, encoded("PNG"), **form)
    second_segment = progress_of("frame_generation", steps + 2, 2 * steps)[0]
    deadline = time.monotonic() + 240
    while (body := status(api, request_id))["progress"] < second_segment:
        assert body["status"] in {"queued", "processing"} and time.monotonic() < deadline, body
        time.sleep(0.02)
    assert_delete_stops_within_one_step(api.base_url, triton, SVD, request_id)
    assert status(api, request_id)["status"] == "cancelled"


def test_models_list_and_unload_load_each_family_independently(
    api: ApiProcess, triton: TritonServer, model_repository: Path
) -> None:
    listed = {m["id"]: m for m in httpx.get(f"{api.base_url}/api/v1/models", timeout=30).json()["models"]}
    assert {"animatediff", SVD} <= set(listed)
    assert listed[SVD]["type"] == "image-to-video" and listed[SVD]["status"] == "loaded"
    detail = httpx.get(f"{api.base_url}/api/v1/models/{SVD}", timeout=30).json()
    assert detail["capabilities"]["supports_negative_prompt"] is True  # the keyframe stage's
    assert detail["capabilities"]["text_to_video_via_keyframe"] is True
    svd_models = read_model_card(model_repository / SVD / MODEL_CARD_FILENAME).triton_models
    other_models = read_model_card(model_repository / "animatediff" / MODEL_CARD_FILENAME).triton_models
    try:
        response = httpx.post(f"{api.base_url}/api/v1/models/{SVD}/unload", timeout=300)
        assert response.status_code == 200 and response.json()["status"] == "unloaded", response.text
        ready = triton_ready(triton)
        assert not any(ready[name] for name in svd_models) and all(ready[name] for name in other_models), ready
        # the other family keeps serving
        text = httpx.post(
            f"{api.base_url}/api/v1/generate/video",
            json={"prompt": "still serving", "width": 64, "height": 64, "num_frames": 2, "num_inference_steps": 1},
            timeout=30,
        )
        assert text.status_code == 202, text.text
        assert completed(api, text.json()["request_id"])[1]["status"] == "completed"

        response = httpx.post(f"{api.base_url}/api/v1/models/{SVD}/load", timeout=300)
        assert response.status_code == 200 and response.json()["status"] in {"loading", "loaded"}, response.text
        deadline = time.monotonic() + 240
        while httpx.get(f"{api.base_url}/api/v1/models/{SVD}", timeout=30).json()["status"] != "loaded":
            assert time.monotonic() < deadline, api.log_tail()
            time.sleep(0.2)
        assert all(triton_ready(triton)[name] for name in svd_models)
        frames, _ = completed(api, upload(api, encoded("PNG"), model=SVD))
        assert len(frames) == 6
    finally:
        for name in svd_models:  # leave the shared stack as the other tests expect it
            if not triton_ready(triton).get(name):
                httpx.post(f"http://{triton.settings.triton_http_url}/v2/repository/models/{name}/load", timeout=300)


def test_sdk_and_cli_take_the_model(api: ApiProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from visualizr_client import VisualizrClient
    from visualizr_client import _cli as cli

    source = tmp_path / "source.png"
    source.write_bytes(encoded("PNG"))
    with VisualizrClient(api.base_url) as client:
        job = client.generate_video_from_image(
            source, "ignored", model=SVD, duration_seconds=1, fps=4, width=64, height=64, num_inference_steps=2
        )
        final = client.wait_for_completion(job.request_id, timeout=300)
        assert final.status == "completed"
        video = client.get_video(video_id_of(job.request_id))
        assert video.model == SVD and video.parameters is not None and video.parameters.motion_bucket_id == 178
    assert cli.main(["--url", api.base_url, "models", "--json"]) == 0  # `visualizr models` lists both families' models
    listed = {m["id"]: m["type"] for m in json.loads(capsys.readouterr().out)["models"]}
    assert listed["animatediff"] == "text-to-video" and listed[SVD] == "image-to-video"
    clip = tmp_path / "clip.mp4"
    argv = ["--url", api.base_url, "from-image", str(source), "ignored", "--model", SVD, "--duration", "1",
            "--fps", "4", "--width", "64", "--height", "64", "--steps", "2", "--out", str(clip)]
    assert cli.main(argv) == 0
    frames, _ = decode_frames(clip.read_bytes())
    assert len(frames) == 4 and frames[0].shape == (64, 64, 3)
