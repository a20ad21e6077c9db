"""Image-to-video and character animation end to end through the real stack: multipart upload -> API -> gRPC
stream with the ``image``/``strength`` inputs -> tritonserver (VAE-encoded source image) -> PyAV -> files."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest

from benchmarks.stack import ApiProcess
from tests.support.images import gradient_png
from tests.support.jobs import decode_frames, download, wait_terminal

pytestmark = pytest.mark.integration

FORM = {
    "model": "animatediff",  # AnimateDiff's img2img (Stable Video Diffusion: test_integration_svd.py)
    "motion_prompt": "gentle swaying in the wind",
    "fps": "4",
    "duration_seconds": "1",
    "motion_strength": "0.6",
    "num_inference_steps": "4",
    "width": "64",
    "height": "64",
    "seed": "11",
}


def upload(api: ApiProcess, png: bytes, **changes: str) -> dict[str, Any]:
    response = httpx.post(
        f"{api.base_url}/api/v1/generate/video/from-image",
        data={**FORM, **changes},
        files={"image": ("gradient.png", png, "image/png")},
        timeout=30,
    )
    assert response.status_code == 202, response.text
    return response.json()


def completed_frames(api: ApiProcess, request_id: str) -> tuple[list[np.ndarray], dict[str, Any]]:
    final = wait_terminal(api, request_id)
    assert final["status"] == "completed", f"{final}\n{api.log_tail()}"
    frames, _ = decode_frames(download(api, final["result"]["video_url"]).content)
    return frames, final["result"]["metadata"]


def test_image_to_video_completes_and_depends_on_the_image(api: ApiProcess) -> None:
    accepted = upload(api, gradient_png())
    assert accepted["request_id"].startswith("video_req_")
    assert set(accepted) >= {"request_id", "status", "estimated_time_seconds", "created_at"}
    other = upload(api, gradient_png(invert=True))

    frames, metadata = completed_frames(api, accepted["request_id"])
    assert len(frames) == 4 and frames[0].shape == (64, 64, 3)
    assert (metadata["resolution"], metadata["fps"], metadata["num_frames"]) == ("64x64", 4, 4)
    other_frames, _ = completed_frames(api, other["request_id"])
    # same seed, prompt and strength; only the source image differs
    assert not all(np.array_equal(a, b) for a, b in zip(frames, other_frames, strict=True))


def test_image_to_video_rejects_a_non_image(api: ApiProcess) -> None:
    response = httpx.post(
        f"{api.base_url}/api/v1/generate/video/from-image",
        data=FORM,
        files={"image": ("notes.txt", b"not an image", "text/plain")},
        timeout=30,
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "INVALID_PARAMETERS" and error["details"]["field"] == "image"


def test_character_animation_completes(api: ApiProcess) -> None:
    body = {
        "character_id": "assistant",
        "action": "greeting",
        "emotion": "happy",
        "background": "office",
        "duration_seconds": 1,
        "resolution": "64x64",
        "animation_style": "natural",
    }
    response = httpx.post(f"{api.base_url}/api/v1/generate/character-animation", json=body, timeout=30)
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["request_id"].startswith("anim_req_") and accepted["character_id"] == "assistant"

    frames, metadata = completed_frames(api, accepted["request_id"])
    assert frames and frames[0].shape == (64, 64, 3)
    assert metadata["resolution"] == "64x64" and metadata["duration_seconds"] == pytest.approx(1.0, abs=0.01)

    too_big = httpx.post(
        f"{api.base_url}/api/v1/generate/character-animation", json={**body, "resolution": "2048x2048"}, timeout=30
    )
    assert too_big.status_code == 400
    assert too_big.json()["error"]["details"]["field"] == "resolution"
