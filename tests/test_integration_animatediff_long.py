"""AnimateDiff clips longer than its context window over the real stack (REST/WebSocket -> API -> tritonserver):
every requested frame, in order, with progress that only goes up; a cancel stops the run within a step. 64x64 keeps
each job to seconds."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import websockets

from benchmarks.stack import ApiProcess
from tests.support.jobs import SMALL, decode_frames, download, submit, wait_running
from tests.support.triton_stats import assert_delete_stops_within_one_step, unet_inferences
from visualizr.launcher import TritonServer
from visualizr.model_card import MODEL_CARD_FILENAME, read_model_card
from visualizr.pipeline import GenerationRequest
from visualizr.pipeline.assets import load_pipeline
from visualizr.pipeline.onnx_components import OnnxComponents
from visualizr.pipeline_config import assets_dir

pytestmark = pytest.mark.integration

MODEL_ID = "animatediff"
# 23 frames: windows of 16 at 0 and 4, and one ending at the last frame for the 3 frames past them
LONG_CLIP = {**SMALL, "num_frames": 23, "fps": 8, "num_inference_steps": 3}


async def _follow(api: ApiProcess, body: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """Submit and collect the job's WebSocket messages up to its terminal one."""
    async with websockets.connect(api.base_url.replace("http", "ws", 1) + "/api/v1/ws/generation") as ws:
        request_id = submit(api, **body)["request_id"]
        await ws.send(json.dumps({"type": "subscribe", "request_id": request_id}))
        messages = []
        while not messages or messages[-1]["type"] not in {"completed", "failed", "cancelled"}:
            messages.append(json.loads(await asyncio.wait_for(ws.recv(), 120)))
        return request_id, messages


def test_long_clip_has_every_frame_in_order(api: ApiProcess, model_repository: Path) -> None:
    card = read_model_card(model_repository / MODEL_ID / MODEL_CARD_FILENAME)
    assert card.capabilities.native_num_frames < LONG_CLIP["num_frames"] <= card.parameter("num_frames").max
    body = {"prompt": "waves rolling onto a beach", "seed": 31, **LONG_CLIP}
    _, messages = asyncio.run(_follow(api, body))
    assert messages[-1]["type"] == "completed", messages[-1]
    progress = [m["progress"] for m in messages if m["type"] == "progress"]
    assert progress and progress == sorted(progress)

    video = download(api, messages[-1]["result"]["video_url"]).content
    frames, fps = decode_frames(video)
    assert len(frames) == LONG_CLIP["num_frames"] and fps == LONG_CLIP["fps"]
    # The same request in-process: each decoded frame is nearer the frame of its own index than its neighbours'
    # (H.264 is lossy; FreeNoise's shuffled noise makes frames a window apart alike), so none is repeated,
    # dropped or moved around the window borders.
    request = GenerationRequest(body["prompt"], 64, 64, LONG_CLIP["num_frames"], LONG_CLIP["num_inference_steps"],
                                LONG_CLIP["guidance_scale"], body["seed"])
    components = OnnxComponents.from_repository(model_repository, MODEL_ID, intra_op_num_threads=1)
    expected = asyncio.run(load_pipeline(assets_dir(model_repository / MODEL_ID))(request, components))
    distances = np.array([[np.abs(f.astype(np.float32) - e).mean() for e in expected] for f in frames])
    own = np.diag(distances)
    print("mean |decoded - in-process| per frame:", own.round(1).tolist())
    print("to the next frame:", np.diag(distances, 1).round(1).tolist())
    assert (own[:-1] < np.diag(distances, 1)).all() and (own[1:] < np.diag(distances, -1)).all(), distances.round(1)


def test_cancel_stops_a_long_clip_within_one_step(api: ApiProcess, triton: TritonServer) -> None:
    steps = 40
    body = {"prompt": "cancel a long clip", "seed": 2, **{**LONG_CLIP, "num_frames": 40, "num_inference_steps": steps}}
    request_id = submit(api, **body)["request_id"]
    wait_running(api, request_id)
    started = unet_inferences(triton, MODEL_ID)
    assert_delete_stops_within_one_step(api.base_url, triton, MODEL_ID, request_id)
    assert unet_inferences(triton, MODEL_ID) < started + 2 * steps
