"""A stale TensorRT engine fails to load with a reason naming what differs, never silently, on the real stack:
the pipeline model's own check inside the real tritonserver, and the API's check before it asks Triton.

CPU Triton has no TensorRT backend, so the engine here is never deserialised: the unet is declared a
tensorrt_plan model whose manifest says it was built from another ONNX on an H200 with TensorRT 10.3.0."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from benchmarks.stack import ApiProcess, stack_settings, start_api
from visualizr import names
from visualizr.engines.manifest import EngineKey, EngineManifest, Gpu, OnnxFingerprint, write_manifest
from visualizr.launcher import TritonServer

pytestmark = pytest.mark.integration

MODEL_ID = "animatediff"
UNET = names.component_model_name(MODEL_ID, "unet")
TEXT_ENCODER = names.component_model_name(MODEL_ID, "text_encoder")


@pytest.fixture(scope="module")
def stale_repository(model_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("stale") / "repository"
    shutil.copytree(model_repository, copy)
    unet = copy / UNET
    config = (unet / "config.pbtxt").read_text()
    (unet / "config.pbtxt").write_text(config.replace('backend: "python"', 'platform: "tensorrt_plan"'))
    (unet / "1" / "model.plan").write_bytes(b"an engine of an older export")
    key = EngineKey("0" * 64, {}, "fp16", "10.3.0", Gpu("NVIDIA H200", "9.0"))
    write_manifest(unet / "1", EngineManifest(key, OnnxFingerprint("0" * 64, 1, 1), {}, "2025-01-01", 1.0))
    return copy


@pytest.fixture(scope="module")
def stale_stack(
    stale_repository: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TritonServer, ApiProcess]]:
    settings, env = stack_settings(
        tmp_path_factory.mktemp("stale-data"), VISUALIZR_MODEL_REPOSITORY=str(stale_repository)
    )
    server = TritonServer(settings, models=[TEXT_ENCODER])
    server.start()
    try:
        server.wait_ready(300)
        api = start_api(settings, env)
        try:
            yield server, api
        finally:
            api.stop()
    finally:
        server.stop()


def test_triton_refuses_the_pipeline_naming_the_stale_engine(stale_stack: tuple[TritonServer, ApiProcess]) -> None:
    server, _ = stale_stack
    url = f"http://{server.settings.triton_http_url}/v2/repository/models/{MODEL_ID}/load"
    response = httpx.post(url, timeout=300)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert f"stale TensorRT engine '{UNET}'" in error
    assert "model.onnx changed since the engine was built" in error
    assert "this server has no GPU" in error  # the check ran against the machine Triton runs on
    assert "python -m visualizr.export --backend tensorrt" in error


def test_the_api_refuses_before_triton_loads_anything(stale_stack: tuple[TritonServer, ApiProcess]) -> None:
    server, api = stale_stack
    response = httpx.post(f"{api.base_url}/api/v1/models/{MODEL_ID}/load", timeout=60)
    assert response.status_code == 500, response.text
    error = response.json()["error"]
    assert error["code"] == "MODEL_LOAD_FAILED"
    assert error["details"]["triton_model"] == UNET
    assert "model.onnx changed since the engine was built" in error["details"]["reason"]
    status = httpx.get(f"http://{server.settings.triton_http_url}/v2/models/{UNET}/ready", timeout=10)
    assert status.status_code != 200  # the stale engine was never handed to Triton
    detail = httpx.get(f"{api.base_url}/api/v1/models/{MODEL_ID}", timeout=10).json()
    assert detail["status"] == "failed" and detail["load_error"]["details"]["triton_model"] == UNET
