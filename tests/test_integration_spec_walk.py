"""Walk every endpoint of the API reference against the real stack (tritonserver + API process) and check each
response against the reference's own JSON example (tests/support/spec_reference.py): every documented field present,
with a compatible type. The examples are read from the reference at test time, so a field added there and not
served here fails this test."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from benchmarks.stack import ApiProcess
from tests.support.images import gradient_png
from tests.support.spec_reference import (
    assert_matches,
    endpoint_examples,
    example,
)
from tests.support.stack import start_sibling_api
from visualizr.launcher import TritonServer
from visualizr.names import component_model_name
from visualizr.settings import Settings

pytestmark = pytest.mark.integration

MODEL = "animatediff"
SMALL = {"width": 64, "height": 64, "num_frames": 4, "fps": 4, "num_inference_steps": 2, "guidance_scale": 7.5}
STATUS = ("GET", "/api/v1/generate/status/{request_id}")


def call(api: ApiProcess, method: str, path: str, **kwargs: Any) -> Any:
    response = httpx.request(method, f"{api.base_url}{path}", timeout=300, **kwargs)
    assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text}"
    return response.json()


def wait_for(api: ApiProcess, request_id: str, statuses: set[str], timeout_s: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body = call(api, "GET", f"/api/v1/generate/status/{request_id}")
        if body["status"] in statuses:
            return body
        time.sleep(0.05)
    raise AssertionError(f"{request_id} never reached {statuses}: {body}")


# Every REST endpoint of the reference, each walked by a test below.
WALKED = {
    ("POST", "/api/v1/generate/video"),
    STATUS,
    ("DELETE", "/api/v1/generate/{request_id}"),
    ("GET", "/api/v1/models"),
    ("GET", "/api/v1/models/{model_id}"),
    ("POST", "/api/v1/models/{model_id}/load"),
    ("POST", "/api/v1/models/{model_id}/unload"),
    ("GET", "/api/v1/assets/videos"),
    ("GET", "/api/v1/assets/videos/{video_id}"),
    ("DELETE", "/api/v1/assets/videos/{video_id}"),
    ("GET", "/api/v1/health"),
    ("GET", "/api/v1/metrics"),
    ("POST", "/api/v1/generate/video/from-image"),
    ("POST", "/api/v1/generate/character-animation"),
}


def test_every_documented_endpoint_is_walked() -> None:
    documented = {key for key in endpoint_examples() if key[0] != "WS"}
    assert documented == WALKED


def test_generation_endpoints_match_the_reference(api: ApiProcess) -> None:
    accepted = call(api, "POST", "/api/v1/generate/video", json={"prompt": "spec walk", "seed": 3, **SMALL})
    assert_matches(accepted, example("POST", "/api/v1/generate/video"))

    slow = call(api, "POST", "/api/v1/generate/video", json={"prompt": "slow", **SMALL, "num_inference_steps": 30})
    processing = wait_for(api, slow["request_id"], {"processing"})
    wait_for(api, slow["request_id"], {"processing"})
    assert_matches(processing, example(*STATUS, "Response (Processing)"))
    cancelled = call(api, "DELETE", f"/api/v1/generate/{slow['request_id']}")
    assert_matches(cancelled, example("DELETE", "/api/v1/generate/{request_id}"))

    completed = wait_for(api, accepted["request_id"], {"completed", "failed"})
    assert completed["status"] == "completed", completed
    assert_matches(completed, example(*STATUS, "Response (Completed)"))


@pytest.fixture(scope="module")
def single_attempt_api(
    triton: TritonServer, stack_env: tuple[Settings, dict[str, str]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiProcess]:
    """An API that gives a job one run only, so an infrastructure failure fails it (by default it runs again)."""
    process = start_sibling_api(stack_env[1], tmp_path_factory.mktemp("single-attempt"), VISUALIZR_JOB_MAX_ATTEMPTS="1")
    try:
        yield process
    finally:
        process.stop()


def test_failed_generation_matches_the_reference(single_attempt_api: ApiProcess, triton: TritonServer) -> None:
    """A component model disappearing mid-job, with no run left, fails the job with the documented shape."""
    api = single_attempt_api
    unet = component_model_name(MODEL, "unet")
    triton_url = f"http://{triton.settings.triton_http_url}/v2/repository/models/{unet}"
    job = call(api, "POST", "/api/v1/generate/video", json={"prompt": "doomed", **SMALL, "num_inference_steps": 40})
    try:
        wait_for(api, job["request_id"], {"processing"})
        while call(api, "GET", f"/api/v1/generate/status/{job['request_id']}")["current_step"] != "frame_generation":
            time.sleep(0.02)
        httpx.post(f"{triton_url}/unload", timeout=60).raise_for_status()
        failed = wait_for(api, job["request_id"], {"failed", "completed"})
    finally:
        httpx.post(f"{triton_url}/load", timeout=300).raise_for_status()
    assert failed["status"] == "failed", failed
    assert failed["error"]["code"] == "GENERATION_FAILED"
    assert failed["error"]["details"].startswith("gave up after 1 attempt(s); the last one failed:"), failed
    assert_matches(failed, example(*STATUS, "Response (Failed)"))


def test_websocket_messages_match_the_reference(api: ApiProcess) -> None:
    async def scenario() -> list[dict[str, Any]]:
        ws_url = api.base_url.replace("http", "ws", 1) + "/api/v1/ws/generation"
        async with websockets.connect(ws_url) as ws:
            job = call(api, "POST", "/api/v1/generate/video", json={"prompt": "ws", **SMALL, "num_inference_steps": 6})
            subscribe = {**endpoint_examples()[("WS", "Subscribe to Updates")]["message"]}
            await ws.send(json.dumps({**subscribe, "request_id": job["request_id"]}))
            messages = []
            while not messages or messages[-1]["type"] not in {"completed", "failed", "cancelled"}:
                messages.append(json.loads(await asyncio.wait_for(ws.recv(), 120)))
            return messages

    messages = asyncio.run(scenario())
    progress = [m for m in messages if m["type"] == "progress"]
    assert progress and messages[-1]["type"] == "completed", messages
    for message in progress:
        assert_matches(message, endpoint_examples()[("WS", "Progress Update")]["message"])
    assert_matches(messages[-1], endpoint_examples()[("WS", "Completion Notification")]["message"])


def test_model_endpoints_match_the_reference(api: ApiProcess) -> None:
    assert_matches(call(api, "GET", "/api/v1/models"), example("GET", "/api/v1/models"))
    assert_matches(call(api, "GET", f"/api/v1/models/{MODEL}"), example("GET", "/api/v1/models/{model_id}"))
    unloaded = call(api, "POST", f"/api/v1/models/{MODEL}/unload")
    try:
        assert_matches(unloaded, example("POST", "/api/v1/models/{model_id}/unload"))
    finally:
        loading = call(api, "POST", f"/api/v1/models/{MODEL}/load")
        assert_matches(loading, example("POST", "/api/v1/models/{model_id}/load"))
        deadline = time.monotonic() + 300
        while call(api, "GET", f"/api/v1/models/{MODEL}")["status"] != "loaded":
            assert time.monotonic() < deadline, "model did not load back"
            time.sleep(0.2)


def test_asset_and_system_endpoints_match_the_reference(api: ApiProcess) -> None:
    job = call(api, "POST", "/api/v1/generate/video", json={"prompt": "asset walk", **SMALL})
    assert wait_for(api, job["request_id"], {"completed", "failed"})["status"] == "completed"
    videos = call(api, "GET", "/api/v1/assets/videos", params={"limit": 100})
    assert_matches(videos, example("GET", "/api/v1/assets/videos"))
    video_id = next(v["id"] for v in videos["videos"] if job["request_id"].endswith(v["id"].split("_", 1)[1]))
    detail = call(api, "GET", f"/api/v1/assets/videos/{video_id}")
    assert_matches(detail, example("GET", "/api/v1/assets/videos/{video_id}"))
    assert_matches(call(api, "GET", "/api/v1/health"), example("GET", "/api/v1/health"))
    assert_matches(call(api, "GET", "/api/v1/metrics"), example("GET", "/api/v1/metrics"), maps=frozenset({"$.models"}))
    deleted = call(api, "DELETE", f"/api/v1/assets/videos/{video_id}")
    assert_matches(deleted, example("DELETE", "/api/v1/assets/videos/{video_id}"))


def test_image_and_character_endpoints_match_the_reference(api: ApiProcess) -> None:
    from_image = call(
        api,
        "POST",
        "/api/v1/generate/video/from-image",
        data={
            "motion_prompt": "gentle swaying in the wind",
            "duration_seconds": "1",
            "fps": "4",
            "motion_strength": "0.7",
            "width": "64",
            "height": "64",
            "num_inference_steps": "2",
        },
        files={"image": ("source.png", gradient_png(), "image/png")},
    )
    assert_matches(from_image, example("POST", "/api/v1/generate/video/from-image"))
    animation = call(
        api,
        "POST",
        "/api/v1/generate/character-animation",
        json={
            "character_id": "assistant",
            "action": "greeting",
            "emotion": "happy",
            "background": "office",
            "duration_seconds": 1,
            "resolution": "64x64",
            "animation_style": "natural",
        },
    )
    assert_matches(animation, example("POST", "/api/v1/generate/character-animation"))
    assert animation["request_id"].startswith("anim_req_") and animation["character_id"] == "assistant"
    for job in (from_image, animation):
        final = wait_for(api, job["request_id"], {"completed", "failed"})
        assert final["status"] == "completed", final
        assert_matches(final, example(*STATUS, "Response (Completed)"))
