"""LTX-Video through the whole real stack (API process -> gRPC -> tritonserver -> PyAV): text-to-video and
from-image on the `ltx-video` demo (frame count and size; a count that is not 8k+1 is trimmed), the same seed giving
the same video, the image's video being the loop's (held to diffusers' LTXImageToVideoPipeline in
tests/test_ltx_video_loop.py), cancellation within one transformer step, and unload/load of the model."""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from benchmarks.stack import ApiProcess
from tests.support.images import gradient_image
from tests.support.jobs import decode_frames, download, wait_terminal
from tests.support.triton_stats import assert_mid_run_delete_stops_within_one_step
from visualizr.launcher import TritonServer
from visualizr.model_card import MODEL_CARD_FILENAME, read_model_card
from visualizr.pipeline.assets import load_pipeline
from visualizr.pipeline.request import GenerationRequest
from visualizr.pipeline_config import assets_dir

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


FORM = {  # 0.24 s at 25 fps: 6 frames, made as 9
    "motion_prompt": "a paper boat drifting",
    "model": LTX,
    "duration_seconds": "0.24",
    "fps": "25",
    "width": "64",
    "height": "96",
    "num_inference_steps": "3",
    "guidance_scale": "3.0",
    "seed": "9",
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


def png(picture: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG")
    return buffer.getvalue()


def post_image(api: ApiProcess, picture: np.ndarray, end: np.ndarray | None = None, **changes: str) -> httpx.Response:
    files = {"image": ("source.png", png(picture), "application/octet-stream")}
    if end is not None:
        files["end_image"] = ("end.png", png(end), "application/octet-stream")
    url = f"{api.base_url}/api/v1/generate/video/from-image"
    return httpx.post(url, data={**FORM, **changes}, files=files, timeout=30)


def upload(api: ApiProcess, picture: np.ndarray, end: np.ndarray | None = None, **changes: str) -> str:
    response = post_image(api, picture, end, **changes)
    assert response.status_code == 202, response.text
    return response.json()["request_id"]


def loop_frames(model_repository: Path, picture: np.ndarray | None, end: np.ndarray | None = None) -> np.ndarray:
    """The frames the family's loop makes in this process for FORM (over the repository's ONNX files)."""
    from visualizr.pipeline.onnx_components import OnnxComponents

    request = GenerationRequest(
        prompt=FORM["motion_prompt"], width=64, height=96, num_frames=6, num_inference_steps=3,
        guidance_scale=3.0, seed=9, fps=25, image=picture, end_image=end,
    )  # fmt: skip
    pipeline = load_pipeline(assets_dir(model_repository / LTX))
    components = OnnxComponents.from_repository(model_repository, LTX, intra_op_num_threads=1)
    return asyncio.run(pipeline(request, components))


def through_the_codec(frames: np.ndarray, path: Path) -> np.ndarray:
    """``frames`` as the API's MP4 gives them back (the same encoder, decoded as the tests decode its videos)."""
    from visualizr.frontend.generation.running.encoding import write_mp4

    write_mp4(frames, 25, path)
    return np.asarray(decode_frames(path.read_bytes())[0])


def mean_difference(a: list[np.ndarray] | np.ndarray, b: list[np.ndarray] | np.ndarray) -> float:
    return float(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).mean())


def test_from_image_makes_the_loop_s_video_of_the_image(
    api: ApiProcess, model_repository: Path, tmp_path: Path
) -> None:
    """The image is the first frame's latent: the stack's video is the loop's for that image (through the MP4
    codec), far closer to it than another image's video is. The tiny VAE is random, so the decoded frames do not
    look like the picture; the loop's frames are diffusers' (tests/test_ltx_video_loop.py)."""
    picture = gradient_image(96, 64)
    request_ids = [upload(api, picture), upload(api, picture), upload(api, 255 - picture)]  # at once
    first, again, other = (video(api, request_id) for request_id in request_ids)
    assert len(first) == 6 and first[0].shape == (96, 64, 3)  # made as 9 frames, trimmed to the 6 asked for
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    expected = through_the_codec(loop_frames(model_repository, picture), tmp_path / "loop.mp4")
    from_loop, from_other = mean_difference(first, expected), mean_difference(first, other)
    print(f"mean difference from the loop's video: {from_loop:.2f}; from another image's: {from_other:.2f}")
    assert from_loop < 0.25 * from_other


def test_keyframes_make_the_loop_s_video_of_both_images(
    api: ApiProcess, model_repository: Path, tmp_path: Path
) -> None:
    """With an end_image the video is the loop's keyframe video (diffusers' LTXConditionPipeline,
    tests/test_ltx_video_loop.py) through the codec, far closer to it than to the from-image video."""
    picture = gradient_image(96, 64)
    keyframes = video(api, upload(api, picture, 255 - picture))
    assert len(keyframes) == 6 and keyframes[0].shape == (96, 64, 3)
    expected = through_the_codec(loop_frames(model_repository, picture, 255 - picture), tmp_path / "keyframes.mp4")
    from_image = through_the_codec(loop_frames(model_repository, picture), tmp_path / "image.mp4")
    from_loop, from_first_only = mean_difference(keyframes, expected), mean_difference(keyframes, from_image)
    print(f"mean difference from the loop's keyframe video: {from_loop:.2f}; from its from-image video: "
          f"{from_first_only:.2f}")  # fmt: skip
    assert from_loop < 0.25 * from_first_only


def test_end_image_is_refused_where_the_card_does_not_allow_it(api: ApiProcess) -> None:
    picture = gradient_image(96, 64)
    for model in ("stable-video-diffusion", "animatediff"):
        response = post_image(api, picture, picture, model=model, fps="8")
        assert response.status_code == 400, response.text
        assert response.json()["error"]["details"]["field"] == "end_image"


def test_cancel_stops_ltx_within_one_step(api: ApiProcess, triton: TritonServer) -> None:
    steps = 50
    request_id = submit(api, num_inference_steps=steps, width=256, height=256, num_frames=121)
    assert_mid_run_delete_stops_within_one_step(api, triton, LTX, request_id, steps)


def test_unload_and_load_ltx(api: ApiProcess, triton: TritonServer, model_repository: Path) -> None:
    models = read_model_card(model_repository / LTX / MODEL_CARD_FILENAME).triton_models
    listed = httpx.get(f"{api.base_url}/api/v1/models/{LTX}", timeout=30).json()
    assert listed["type"] == "text-to-video" and listed["status"] == "loaded"
    assert listed["capabilities"]["supports_image_to_video"] and listed["capabilities"]["supports_end_image"]
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
