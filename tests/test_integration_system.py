"""Models, health, metrics and API keys through the real stack: the API process talking to the real
tritonserver's repository API (explicit model-control mode).

The stack is shared with the other integration tests: a test that unloads a model loads it back before it ends,
and API-key tests start their own API process against the shared tritonserver."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from benchmarks.stack import ApiProcess, stack_settings, start_api
from tests.support.prometheus import parse_exposition
from visualizr.launcher import TritonServer
from visualizr.model_card import MODEL_CARD_FILENAME, read_model_card, write_model_card
from visualizr.settings import Settings

pytestmark = pytest.mark.integration

MODEL_ID = "animatediff"
SMALL = {"width": 64, "height": 64, "num_frames": 4, "fps": 4, "num_inference_steps": 2, "guidance_scale": 7.5}
KEY = "integration-key-123"


def triton_states(triton: TritonServer) -> dict[str, str]:
    index = httpx.post(f"http://{triton.settings.triton_http_url}/v2/repository/index", timeout=30).json()
    return {m["name"]: m.get("state", "") for m in index}


def restore(triton: TritonServer, names: list[str]) -> None:
    """Load every Triton model back (components first) so the shared stack is as the other tests expect."""
    for name in names:
        if triton_states(triton).get(name) != "READY":
            response = httpx.post(
                f"http://{triton.settings.triton_http_url}/v2/repository/models/{name}/load", timeout=300
            )
            assert response.status_code == 200, response.text


def get(api: ApiProcess, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.get(f"{api.base_url}{path}", timeout=60, **kwargs)


def post(api: ApiProcess, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{api.base_url}{path}", timeout=300, **kwargs)


def wait_status(api: ApiProcess, want: str, timeout_s: float = 180, **kwargs: Any) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = get(api, f"/api/v1/models/{MODEL_ID}", **kwargs).json()
        if body["status"] == want:
            return body
        time.sleep(0.2)
    raise AssertionError(f"model never {want}: {body}\n{api.log_tail()}")


@pytest.fixture
def card_models(model_repository: Path) -> list[str]:
    return read_model_card(model_repository / MODEL_ID / MODEL_CARD_FILENAME).triton_models


def test_health_is_the_reference_shape_with_real_triton(api: ApiProcess) -> None:
    response = get(api, "/api/v1/health")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "healthy"
    gpu = body["gpu_info"]
    assert gpu["count"] == len(gpu["devices"]) and gpu["available"] == bool(gpu["devices"])
    for device in gpu["devices"]:
        assert {"id", "name", "memory_total_gb", "memory_used_gb", "memory_free_gb"} <= set(device)
    assert MODEL_ID in [m["id"] for m in body["loaded_models"]]
    assert set(body["queue_status"]) == {"pending_requests", "processing_requests", "completed_today"}


def test_models_come_from_the_cards_and_triton(api: ApiProcess, model_repository: Path) -> None:
    card = read_model_card(model_repository / MODEL_ID / MODEL_CARD_FILENAME)
    listed = {m["id"]: m for m in get(api, "/api/v1/models").json()["models"]}
    assert (
        listed[MODEL_ID]["status"] == "loaded"
        and listed[MODEL_ID]["max_resolution"] == card.capabilities.max_resolution
    )
    detail = get(api, f"/api/v1/models/{MODEL_ID}").json()
    assert detail["version"] == card.version and detail["loaded"] is True
    assert set(detail["parameters"]) == set(card.parameters)
    assert get(api, "/api/v1/models/no-such-model").json()["error"]["code"] == "MODEL_NOT_FOUND"


def test_unload_load_on_demand_and_load_endpoint(api: ApiProcess, triton: TritonServer, card_models: list[str]) -> None:
    try:
        response = post(api, f"/api/v1/models/{MODEL_ID}/unload")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "unloaded" and body["freed_memory_gb"] >= 0 and body["unloaded_at"].endswith("Z")
        states = triton_states(triton)
        assert all(states[name] != "READY" for name in card_models), states
        assert get(api, f"/api/v1/models/{MODEL_ID}").json()["status"] == "unloaded"
        assert MODEL_ID not in [m["id"] for m in get(api, "/api/v1/health").json()["loaded_models"]]

        # a job on the unloaded model loads it first (current_step loading_model), then runs
        rid = post(api, "/api/v1/generate/video", json={"prompt": "load on demand", **SMALL}).json()["request_id"]
        steps, deadline = set(), time.monotonic() + 240
        while True:
            status = get(api, f"/api/v1/generate/status/{rid}").json()
            steps.add(status.get("current_step"))
            if status["status"] in {"completed", "failed", "cancelled"} or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert status["status"] == "completed", (status, api.log_tail())
        assert "loading_model" in steps, steps
        assert all(triton_states(triton)[name] == "READY" for name in card_models)

        # the load endpoint: unload again, load answers loading (or loaded if quick), then it is loaded
        post(api, f"/api/v1/models/{MODEL_ID}/unload")
        response = post(api, f"/api/v1/models/{MODEL_ID}/load")
        assert response.status_code == 200, response.text
        assert response.json()["status"] in {"loading", "loaded"} and response.json()["started_at"].endswith("Z")
        detail = wait_status(api, "loaded")
        assert detail["loaded_at"].endswith("Z") and detail["load_error"] is None
        assert post(api, f"/api/v1/models/{MODEL_ID}/load").json()["status"] == "loaded"
        assert all(triton_states(triton)[name] == "READY" for name in card_models)
    finally:
        restore(triton, card_models)


def test_metrics_and_prometheus_with_real_jobs(api: ApiProcess) -> None:
    rid = post(api, "/api/v1/generate/video", json={"prompt": "metrics", **SMALL}).json()["request_id"]
    deadline = time.monotonic() + 120
    while get(api, f"/api/v1/generate/status/{rid}").json()["status"] not in {"completed", "failed"}:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    body = get(api, "/api/v1/metrics").json()
    assert body["requests"]["total"] >= 1 and body["generation"]["fastest_time_seconds"] > 0
    assert body["storage"]["total_videos"] >= 1 and body["storage"]["available_space_gb"] > 0
    assert body["models"][MODEL_ID]["generations"] >= 1
    response = get(api, "/metrics")
    assert response.status_code == 200
    _, samples = parse_exposition(response.text)
    completed = [
        v for n, lab, v in samples if n == "visualizr_jobs_total" and lab == {"model": MODEL_ID, "outcome": "completed"}
    ]
    assert completed and completed[0] >= 1
    assert any(n == "visualizr_http_requests_total" and lab["route"] == "/api/v1/metrics" for n, lab, _ in samples)


@pytest.fixture
def keyed_api(tmp_path: Path, triton: TritonServer, model_repository: Path) -> Iterator[tuple[ApiProcess, Settings]]:
    """An API of our own with API keys, against the shared tritonserver, whose catalog also has a card "ghost"
    naming Triton models that the server's repository does not have (a real MODEL_LOAD_FAILED)."""
    repository = tmp_path / "cards"
    (repository / MODEL_ID).mkdir(parents=True)
    shutil.copy(model_repository / MODEL_ID / MODEL_CARD_FILENAME, repository / MODEL_ID / MODEL_CARD_FILENAME)
    card = read_model_card(model_repository / MODEL_ID / MODEL_CARD_FILENAME)
    fields = {f: getattr(card, f) for f in card.__struct_fields__}
    ghost = type(card)(**{**fields, "id": "ghost", "family": "ghost", "triton_models": ["ghost_text_encoder", "ghost"]})
    (repository / "ghost").mkdir()
    write_model_card(ghost, repository / "ghost" / MODEL_CARD_FILENAME)
    shared = triton.settings
    settings, env = stack_settings(
        tmp_path / "data",
        VISUALIZR_MODEL_REPOSITORY=str(repository),
        VISUALIZR_API_KEYS=f"other-key,{KEY}",
        VISUALIZR_TRITON_HTTP_PORT=str(shared.triton_http_port),
        VISUALIZR_TRITON_GRPC_PORT=str(shared.triton_grpc_port),
        VISUALIZR_TRITON_METRICS_PORT=str(shared.triton_metrics_port),
    )
    process = start_api(settings, env)
    try:
        yield process, settings
    finally:
        process.stop()


def test_api_keys_and_a_real_triton_load_failure(keyed_api: tuple[ApiProcess, Settings]) -> None:
    api, _ = keyed_api
    auth = {"Authorization": f"Bearer {KEY}"}
    assert get(api, "/api/v1/health").status_code == 200  # exempt
    denied = get(api, "/api/v1/models")
    assert denied.status_code == 401 and denied.json()["error"]["code"] == "UNAUTHORIZED"
    assert get(api, "/api/v1/models", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert get(api, "/metrics").status_code == 401
    assert get(api, "/api/v1/models", headers=auth).status_code == 200

    # Triton's repository has no "ghost_text_encoder": the load fails at once with Triton's own message
    response = post(api, "/api/v1/models/ghost/load", headers=auth)
    assert response.status_code == 500, response.text
    error = response.json()["error"]
    assert error["code"] == "MODEL_LOAD_FAILED" and error["details"]["triton_model"] == "ghost_text_encoder"
    assert "ghost_text_encoder" in error["details"]["reason"], error
    detail = httpx.get(f"{api.base_url}/api/v1/models/ghost", headers=auth, timeout=30).json()
    assert detail["status"] == "failed" and detail["load_error"]["code"] == "MODEL_LOAD_FAILED"

    # a job on it fails clearly with the same code (load on demand)
    rid = post(api, "/api/v1/generate/video", json={"prompt": "ghost", "model": "ghost", **SMALL}, headers=auth).json()[
        "request_id"
    ]
    deadline = time.monotonic() + 60
    while (status := get(api, f"/api/v1/generate/status/{rid}", headers=auth).json())["status"] not in {
        "failed",
        "completed",
    }:
        assert time.monotonic() < deadline, status
        time.sleep(0.1)
    assert status["status"] == "failed" and status["error"]["code"] == "MODEL_LOAD_FAILED", status

    async def websocket_checks() -> None:
        ws_url = api.base_url.replace("http", "ws", 1) + "/api/v1/ws/generation"
        with pytest.raises(websockets.InvalidStatus) as rejected:
            async with websockets.connect(ws_url):
                pass
        assert rejected.value.response.status_code == 401
        assert json.loads(rejected.value.response.body)["error"]["code"] == "UNAUTHORIZED"
        async with websockets.connect(f"{ws_url}?api_key={KEY}") as ws:
            await ws.send(json.dumps({"type": "subscribe", "request_id": rid}))
            message = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert message["type"] == "failed" and message["error"]["code"] == "MODEL_LOAD_FAILED"
        async with websockets.connect(ws_url, additional_headers=auth) as ws:
            await ws.send(json.dumps({"type": "subscribe", "request_id": rid}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 10))["request_id"] == rid

    asyncio.run(websocket_checks())
