"""/api/v1/models against fakes of Triton's repository API and of NVML (the logic of the API itself)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.support.fakes import MODEL_ID, FakeBackend, make_card, make_settings, wait_for, wait_until
from tests.support.system_fakes import TRITON_MODELS, FakeGpu, FakeModelControl
from visualizr.frontend.app import create_app

MODELS = "/api/v1/models"
MODEL = f"{MODELS}/{MODEL_ID}"
LIST_FIELDS = {
    "id",
    "name",
    "description",
    "type",
    "max_resolution",
    "max_duration_seconds",
    "supported_formats",
    "gpu_memory_required_gb",
    "average_generation_time_seconds",
}
DETAIL_FIELDS = {
    "id",
    "name",
    "description",
    "version",
    "type",
    "capabilities",
    "requirements",
    "parameters",
    "performance",
}
PIPELINE_GB = 1.5


@pytest.fixture
def control() -> FakeModelControl:
    return FakeModelControl()


@pytest.fixture
def gpu(control: FakeModelControl) -> FakeGpu:
    fake = FakeGpu(used_gb=2.0)

    def account(action: str, name: str) -> None:  # the pipeline model holds PIPELINE_GB while loaded
        if name == MODEL_ID:
            fake.used_gb += PIPELINE_GB if action == "load" else -PIPELINE_GB

    control.on_change = account
    return fake


@pytest.fixture
def client(tmp_path: Path, control: FakeModelControl, gpu: FakeGpu) -> Iterator[TestClient]:
    app = create_app(make_settings(tmp_path), backend=FakeBackend(), model_control=control, gpu=gpu)
    app.state.models.load_wait_seconds = 0.3
    with TestClient(app, timeout=10) as test_client:
        yield test_client
    control.hold.set()


def error_of(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"], error
    return error


def model_status(client: TestClient) -> str:
    return client.get(MODEL).json()["status"]


def test_list_has_the_reference_fields_and_live_status(client: TestClient) -> None:
    models = client.get(MODELS).json()["models"]
    assert [m["id"] for m in models] == [MODEL_ID]
    item = models[0]
    assert set(item) >= LIST_FIELDS
    card = make_card()
    assert item["max_resolution"] == card.capabilities.max_resolution
    assert item["supported_formats"] == card.capabilities.supported_formats
    assert item["gpu_memory_required_gb"] == card.requirements.gpu_memory_gb
    assert item["average_generation_time_seconds"] is None  # nothing measured yet
    assert item["status"] == "loaded" and item["loaded"] is True


def test_detail_is_the_card_plus_measured_performance(client: TestClient) -> None:
    body = client.get(MODEL).json()
    assert set(body) >= DETAIL_FIELDS
    card = make_card()
    assert body["version"] == card.version
    assert body["parameters"]["guidance_scale"]["default"] == 7.5
    assert body["capabilities"]["min_resolution"] == card.capabilities.min_resolution
    assert body["requirements"]["estimated_load_time_seconds"] == card.requirements.estimated_load_time_seconds
    assert body["performance"] == {
        "average_generation_time_seconds": None,
        "success_rate_percent": None,
        "total_generations": 0,
    }
    assert body["loaded_at"].endswith("Z") and body["load_error"] is None

    rid = client.post("/api/v1/generate/video", json={"prompt": "measure me"}).json()["request_id"]
    done = wait_for(client, rid, {"completed"})
    performance = client.get(MODEL).json()["performance"]
    assert performance["total_generations"] == 1 and performance["success_rate_percent"] == 100.0
    assert performance["average_generation_time_seconds"] == pytest.approx(done["processing_time_seconds"], abs=1e-3)
    listed = client.get(MODELS).json()["models"][0]
    assert listed["average_generation_time_seconds"] == performance["average_generation_time_seconds"]


@pytest.mark.parametrize("model_id", ["nope", "no.such", "a" * 300])
def test_unknown_model_is_404(client: TestClient, model_id: str) -> None:
    error_of(client.get(f"{MODELS}/{model_id}"), 404, "MODEL_NOT_FOUND")
    error_of(client.post(f"{MODELS}/{model_id}/load"), 404, "MODEL_NOT_FOUND")
    error_of(client.post(f"{MODELS}/{model_id}/unload"), 404, "MODEL_NOT_FOUND")


def test_unload_pipeline_first_and_measure_freed_memory(
    client: TestClient, control: FakeModelControl, gpu: FakeGpu
) -> None:
    gpu.used_gb += PIPELINE_GB  # loaded at start
    response = client.post(f"{MODEL}/unload")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_id"] == MODEL_ID and body["status"] == "unloaded" and body["unloaded_at"].endswith("Z")
    assert body["freed_memory_gb"] == pytest.approx(PIPELINE_GB)
    assert control.calls == [("unload", name) for name in reversed(TRITON_MODELS)]
    detail = client.get(MODEL).json()
    assert detail["status"] == "unloaded" and detail["loaded"] is False and detail["loaded_at"] is None
    # unloading again is harmless and frees nothing
    assert client.post(f"{MODEL}/unload").json()["freed_memory_gb"] == 0.0


def test_load_when_loaded_does_nothing(client: TestClient, control: FakeModelControl) -> None:
    body = client.post(f"{MODEL}/load").json()
    assert body["status"] == "loaded" and body["estimated_load_time_seconds"] == 0
    assert control.calls == []


def test_quick_load_answers_loaded_components_first(client: TestClient, control: FakeModelControl) -> None:
    client.post(f"{MODEL}/unload")
    control.calls.clear()
    body = client.post(f"{MODEL}/load").json()
    assert body["status"] == "loaded" and body["started_at"].endswith("Z")
    assert control.calls == [("load", name) for name in TRITON_MODELS]
    health = client.get("/api/v1/health").json()
    assert [m["id"] for m in health["loaded_models"]] == [MODEL_ID]
    assert health["loaded_models"][0]["memory_usage_gb"] == pytest.approx(PIPELINE_GB)


def test_slow_load_answers_loading_then_loaded(client: TestClient, control: FakeModelControl) -> None:
    client.post(f"{MODEL}/unload")
    control.hold.clear()
    body = client.post(f"{MODEL}/load").json()
    assert body["status"] == "loading"
    assert 0 < body["estimated_load_time_seconds"] <= make_card().requirements.estimated_load_time_seconds
    assert model_status(client) == "loading"
    again = client.post(f"{MODEL}/load").json()  # joins the running load
    assert again["status"] == "loading" and again["started_at"] == body["started_at"]
    control.hold.set()
    wait_until(lambda: model_status(client) == "loaded")
    assert [c for c in control.calls if c[0] == "load"] == [("load", n) for n in TRITON_MODELS]


def test_quick_load_failure_is_500_with_tritons_reason(client: TestClient, control: FakeModelControl) -> None:
    client.post(f"{MODEL}/unload")
    reason = "failed to load 'animatediff_unet': model.onnx: file not found"
    control.failures["animatediff_unet"] = reason
    error = error_of(client.post(f"{MODEL}/load"), 500, "MODEL_LOAD_FAILED")
    assert error["details"] == {"triton_model": "animatediff_unet", "reason": reason, "inference_server": "in-process"}
    detail = client.get(MODEL).json()
    assert detail["status"] == "failed" and detail["loaded"] is False
    assert detail["load_error"]["code"] == "MODEL_LOAD_FAILED" and detail["load_error"]["details"]["reason"] == reason
    # fixed on the Triton side: the next load retries and succeeds
    del control.failures["animatediff_unet"]
    assert client.post(f"{MODEL}/load").json()["status"] == "loaded"
    assert client.get(MODEL).json()["load_error"] is None


def test_slow_load_failure_shows_on_get(client: TestClient, control: FakeModelControl) -> None:
    client.post(f"{MODEL}/unload")
    control.failures[MODEL_ID] = "Python model 'animatediff' raised in initialize"
    control.hold.clear()
    assert client.post(f"{MODEL}/load").json()["status"] == "loading"
    control.hold.set()
    wait_until(lambda: model_status(client) == "failed")
    assert client.get(MODEL).json()["load_error"]["details"]["triton_model"] == MODEL_ID
    error_of(client.post(f"{MODEL}/load"), 500, "MODEL_LOAD_FAILED")  # retried, fails quickly now


def test_failure_reported_by_triton_itself_shows(client: TestClient, control: FakeModelControl) -> None:
    from visualizr.frontend.infra.control import UNAVAILABLE, ModelState

    control.states["animatediff_vae_decoder"] = ModelState(UNAVAILABLE, "invalid config: dims mismatch")
    detail = client.get(MODEL).json()
    assert detail["status"] == "failed"
    assert detail["load_error"]["details"] == {
        "triton_model": "animatediff_vae_decoder",
        "reason": "invalid config: dims mismatch",
    }


def test_generation_loads_an_unloaded_model_on_demand(client: TestClient, control: FakeModelControl) -> None:
    client.post(f"{MODEL}/unload")
    control.calls.clear()
    control.hold.clear()
    rid = client.post("/api/v1/generate/video", json={"prompt": "load me first"}).json()["request_id"]
    loading = wait_for(client, rid, {"processing"})
    wait_until(lambda: client.get(f"/api/v1/generate/status/{rid}").json()["current_step"] == "loading_model")
    assert loading["status"] == "processing"
    assert model_status(client) == "loading"
    control.hold.set()
    assert wait_for(client, rid, {"completed", "failed"})["status"] == "completed"
    assert control.calls == [("load", name) for name in TRITON_MODELS]
    assert model_status(client) == "loaded"


def test_generation_fails_clearly_when_the_on_demand_load_fails(client: TestClient, control: FakeModelControl) -> None:
    client.post(f"{MODEL}/unload")
    control.failures["animatediff_text_encoder"] = "failed to poll from model repository"
    rid = client.post("/api/v1/generate/video", json={"prompt": "cannot load"}).json()["request_id"]
    failed = wait_for(client, rid, {"failed", "completed"})
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "MODEL_LOAD_FAILED"
    assert "failed to poll from model repository" in failed["error"]["details"]


def test_triton_unreachable(client: TestClient, control: FakeModelControl) -> None:
    control.reachable = False
    assert client.get(MODELS).json()["models"][0]["status"] == "unknown"
    assert client.get(MODEL).json()["status"] == "unknown"
    error = error_of(client.post(f"{MODEL}/unload"), 500, "MODEL_LOAD_FAILED")
    assert "connect" in error["details"]["reason"]
    control.reachable = True
    wait_until(lambda: model_status(client) == "loaded")  # the endpoint's probe finds it back


def test_unload_keeps_components_another_loaded_model_needs(tmp_path: Path) -> None:
    from tests.support.fakes import write_repository
    from visualizr.model_card import write_model_card

    settings = make_settings(tmp_path)
    write_repository(settings.model_repository)
    other = make_card("animatediff_hd")
    other = type(other)(
        **{
            **{f: getattr(other, f) for f in other.__struct_fields__},
            "triton_models": ["animatediff_text_encoder", "animatediff_hd"],
        }
    )
    (settings.model_repository / other.id).mkdir()
    write_model_card(other, settings.model_repository / other.id / "model_card.json")
    control = FakeModelControl(names=[*TRITON_MODELS, "animatediff_hd"])
    app = create_app(settings, backend=FakeBackend(), model_control=control, gpu=FakeGpu(available=False))
    with TestClient(app, timeout=10) as client:
        body = client.post(f"{MODEL}/unload").json()
        assert body["freed_memory_gb"] == 0.0  # no GPU
        unloaded = [name for action, name in control.calls if action == "unload"]
        assert unloaded == ["animatediff", "animatediff_vae_decoder", "animatediff_unet"]
        assert client.get(f"{MODELS}/animatediff_hd").json()["status"] == "loaded"


def test_load_estimate_counts_down(client: TestClient, control: FakeModelControl) -> None:
    client.post(f"{MODEL}/unload")
    control.hold.clear()
    started = time.monotonic()
    body = client.post(f"{MODEL}/load").json()
    assert (
        body["estimated_load_time_seconds"]
        <= make_card().requirements.estimated_load_time_seconds - (time.monotonic() - started) + 0.2
    )
    control.hold.set()
