"""Live previews on the real stack: a WebSocket subscriber that asks for them gets ``preview`` messages of the
job's latents (through the SDK, typed), at most two a second; one that did not ask gets none (AnimateDiff and
LTX-Video; Stable Video Diffusion after a ``previews`` message)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import math
import time
from typing import Any

import httpx
import pytest
import websockets
from PIL import Image

from benchmarks.stack import ApiProcess
from tests.support.images import gradient_png
from tests.support.jobs import SMALL, submit
from visualizr.frontend.generation.reporting.previews import MAX_PREVIEW_SIDE, PREVIEWS_PER_SECOND
from visualizr_client import AsyncVisualizrClient, PreviewMessage

pytestmark = pytest.mark.integration

TERMINAL = {"completed", "failed", "cancelled"}
# > 1 s of denoising even on a quiet machine (8 frames of 64 px took 0.7 s for 40 steps once the CPU engines' threads
# stopped spinning); LTX-Video's tiny transformer is faster (40 steps of 25 frames of 256 px took 0.5 s): 512 px
# (30 ms a step in process), 25 frames (4 latent frames: 8k + 1), its card's fps (8 to 30)
PREVIEWED = {**SMALL, "width": 256, "height": 256, "num_frames": 16, "num_inference_steps": 40}
LTX = {"model": "ltx-video", "fps": 8}
JOBS = {  # model -> (the first job, the previewed one)
    "animatediff": (SMALL, PREVIEWED),
    "ltx-video": ({**SMALL, **LTX}, {**PREVIEWED, **LTX, "width": 512, "height": 512, "num_frames": 25}),
}


async def messages_until_terminal(ws: Any, request_id: str) -> list[dict[str, Any]]:
    messages = []
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 120))
        if message.get("request_id") == request_id:
            messages.append(message)
            if message["type"] in TERMINAL:
                return messages


@pytest.mark.parametrize("model", sorted(JOBS))
def test_previews_for_the_subscriber_that_asked_none_for_the_other(api: ApiProcess, model: str) -> None:
    first_job, previewed = JOBS[model]
    ws_url = api.base_url.replace("http", "ws", 1) + "/api/v1/ws/generation"

    async def scenario() -> tuple[list[Any], float, list[dict[str, Any]], list[dict[str, Any]]]:
        async with websockets.connect(ws_url) as primer, websockets.connect(ws_url) as plain:
            # a socket asks for previews (of a first job) before the second job starts: the rule that makes the
            # second job's pipeline compute them (README, Live previews)
            first = submit(api, prompt="previews: first", **first_job)["request_id"]
            await primer.send(json.dumps({"type": "subscribe", "request_id": first, "previews": True}))
            await plain.send(json.dumps({"type": "subscribe", "request_id": first}))
            not_asked_first = await messages_until_terminal(plain, first)
            request_id = submit(api, prompt="previews: a red balloon", **previewed)["request_id"]
            await plain.send(json.dumps({"type": "subscribe", "request_id": request_id}))
            async with AsyncVisualizrClient(api.base_url) as client:
                started = time.monotonic()
                typed = [m async for m in client.stream_progress(request_id, timeout=120, previews=True)]
                elapsed = time.monotonic() - started
            not_asked = await messages_until_terminal(plain, request_id)
            return typed, elapsed, not_asked_first, not_asked

    typed, elapsed, not_asked_first, not_asked = asyncio.run(scenario())
    assert type(typed[-1]).__name__ == "CompletedMessage", typed[-1]
    previews = [m for m in typed if isinstance(m, PreviewMessage)]
    assert 2 <= len(previews) <= math.ceil(elapsed * PREVIEWS_PER_SECOND) + 1, (len(previews), elapsed)
    assert [p.step for p in previews] == sorted({p.step for p in previews})
    assert all(p.total_steps == previewed["num_inference_steps"] and p.frames == 4 for p in previews)
    pictures = [Image.open(io.BytesIO(p.image_bytes)) for p in previews]
    assert all(max(pic.size) == MAX_PREVIEW_SIDE for pic in pictures)
    assert [pic.size for pic in pictures] == [(p.width, p.height) for p in previews]
    assert len({p.image for p in previews}) > 1  # the video forming, not one picture repeated
    assert base64.b64decode(previews[0].image.partition(",")[2])[:2] == b"\xff\xd8"
    assert [m for m in not_asked_first + not_asked if m["type"] == "preview"] == []
    assert not_asked[-1]["type"] == "completed"


def test_image_to_video_previews_after_a_previews_message(api: ApiProcess) -> None:
    """Stable Video Diffusion previews too; ``{"type": "previews"}`` before submitting is enough to have them."""
    ws_url = api.base_url.replace("http", "ws", 1) + "/api/v1/ws/generation"

    async def scenario() -> list[dict[str, Any]]:
        async with websockets.connect(ws_url) as ws:
            await ws.send(json.dumps({"type": "previews"}))
            # a socket's messages are handled in order: once this one is answered, "previews" has been taken
            await ws.send(json.dumps({"type": "subscribe", "request_id": "video_req_none"}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 30))["error"]["code"] == "REQUEST_NOT_FOUND"
            response = httpx.post(
                f"{api.base_url}/api/v1/generate/video/from-image",
                data={"motion_prompt": "-", "duration_seconds": "1", "fps": "6", "num_inference_steps": "12",
                      "width": "64", "height": "64", "model": "stable-video-diffusion"},
                files={"image": ("source.png", gradient_png(), "image/png")},
                timeout=30,
            )
            assert response.status_code == 202, response.text
            request_id = response.json()["request_id"]
            await ws.send(json.dumps({"type": "subscribe", "request_id": request_id, "previews": True}))
            return await messages_until_terminal(ws, request_id)

    messages = asyncio.run(scenario())
    assert messages[-1]["type"] == "completed", messages[-1]
    previews = [m for m in messages if m["type"] == "preview"]
    assert previews and all(1 <= m["frames"] <= 4 and m["step"] <= m["total_steps"] == 12 for m in previews)
