"""Health, JSON metrics, Prometheus exposition, GPU-memory rules and the OpenAPI schema (fakes for Triton's
repository API, the pipeline and NVML)."""

from __future__ import annotations

import asyncio
import math
import re
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.support.fakes import MODEL_ID, FakeBackend, FakeStream, make_card, make_settings, wait_for, wait_until
from tests.support.prometheus import parse_exposition, value
from tests.support.system_fakes import FakeGpu, FakeModelControl
from visualizr import names
from visualizr.frontend.app import create_app
from visualizr.frontend.errors import InsufficientGpuMemoryError
from visualizr.frontend.infra.failures import OUT_OF_MEMORY, BackendError
from visualizr.frontend.infra.gpu import NO_GPU, NvmlReader, check_fits, is_out_of_memory, required_memory_gb
from visualizr.frontend.jobs.database import SqliteDatabase
from visualizr.frontend.jobs.record import GenerationParameters, JobRecord
from visualizr.frontend.jobs.store import JobStore
from visualizr.pipeline.progress import ProgressEvent as GenerationEvent
from visualizr.settings import Settings

GENERATE = "/api/v1/generate/video"
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def start(settings: Settings, **kwargs: Any) -> TestClient:
    kwargs.setdefault("backend", FakeBackend())
    kwargs.setdefault("model_control", FakeModelControl())
    kwargs.setdefault("gpu", FakeGpu())
    return TestClient(create_app(settings, **kwargs), timeout=10)


@pytest.fixture
def control() -> FakeModelControl:
    return FakeModelControl()


@pytest.fixture
def client(tmp_path: Path, control: FakeModelControl) -> Iterator[TestClient]:
    with start(make_settings(tmp_path), model_control=control) as test_client:
        yield test_client


# ---------------------------------------------------------------------------------------------- health


def test_health_has_the_reference_shape(client: TestClient) -> None:
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "status",
        "timestamp",
        "version",
        "uptime_seconds",
        "gpu_info",
        "loaded_models",
        "queue_status",
        "inference_servers",
        "models",
        "workers",
        "database",
        "storage",
        "object_store",
        "triton_supervisor",
        "problems",
        "replica",
    }
    assert body["status"] == "healthy" and ISO_Z.match(body["timestamp"]) and body["version"]
    assert body["problems"] == []
    assert body["inference_servers"] == [{"url": "in-process", "status": "up", "jobs_in_flight": 0, "problem": None}]
    assert body["models"] == [{"id": MODEL_ID, "status": "loaded", "serving": True, "problems": []}]
    assert body["workers"] == {"alive": 1, "configured": 1, "restarts": 0}
    assert body["triton_supervisor"] is None  # not under make serve
    assert body["database"] == {"engine": "sqlite", "status": "up", "events": None, "problem": None}
    assert body["replica"] == client.app.state.settings.replica_id
    assert body["storage"]["free_mb"] > body["storage"]["min_free_mb"] == 256
    data_dir = str(client.app.state.settings.data_dir)
    assert body["object_store"] == {"location": data_dir, "status": "up", "problem": None}
    assert isinstance(body["uptime_seconds"], int)
    assert body["gpu_info"] == {
        "available": True,
        "count": 1,
        "devices": [
            {
                "id": 0,
                "name": "NVIDIA Fake 24GB",
                "memory_total_gb": 24.0,
                "memory_used_gb": 2.0,
                "memory_free_gb": 22.0,
                "utilization_percent": 42,
                "temperature_celsius": 55,
            }
        ],
    }
    [loaded] = body["loaded_models"]
    assert loaded["id"] == MODEL_ID and ISO_Z.match(loaded["loaded_at"])
    assert loaded["memory_usage_gb"] is None  # loaded before we started: not measured by us
    assert body["queue_status"] == {"pending_requests": 0, "processing_requests": 0, "completed_today": 0}

    rid = client.post(GENERATE, json={"prompt": "count me"}).json()["request_id"]
    wait_for(client, rid, {"completed"})
    assert client.get("/api/v1/health").json()["queue_status"]["completed_today"] == 1


def test_health_degraded_503_when_triton_is_unreachable(client: TestClient, control: FakeModelControl) -> None:
    control.reachable = False
    response = client.get("/api/v1/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded" and body["loaded_models"] == []


def test_health_without_gpu(tmp_path: Path) -> None:
    with start(make_settings(tmp_path), gpu=FakeGpu(available=False)) as client:
        body = client.get("/api/v1/health").json()
    assert body["gpu_info"] == {"available": False, "count": 0, "devices": []}
    assert body["loaded_models"][0]["memory_usage_gb"] == 0.0


def test_nvml_reader_without_driver_and_with_a_fake_pynvml(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("pynvml")

    class NVMLError(Exception):
        pass

    mib = 1024**2
    fake.NVMLError = NVMLError  # type: ignore[attr-defined]
    fake.NVML_TEMPERATURE_GPU = 0  # type: ignore[attr-defined]
    fake.nvmlInit = lambda: None  # type: ignore[attr-defined]
    fake.nvmlDeviceGetCount = lambda: 2  # type: ignore[attr-defined]
    fake.nvmlDeviceGetHandleByIndex = lambda i: i  # type: ignore[attr-defined]
    fake.nvmlDeviceGetName = lambda h: b"NVIDIA GeForce RTX 4090" if h == 0 else "NVIDIA H100"  # type: ignore[attr-defined]
    fake.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(  # type: ignore[attr-defined]
        total=24576 * mib, used=6348.8 * mib, free=18227.2 * mib
    )
    fake.nvmlDeviceGetUtilizationRates = lambda h: types.SimpleNamespace(gpu=75)  # type: ignore[attr-defined]

    def temperature(handle: int, sensor: int) -> int:
        if handle == 1:
            raise NVMLError("not supported")
        return 65

    fake.nvmlDeviceGetTemperature = temperature  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    info = asyncio.run(NvmlReader().snapshot())
    assert info.available and info.count == 2
    first, second = info.devices
    assert (first.id, first.name, first.memory_total_gb, first.memory_used_gb) == (
        0,
        "NVIDIA GeForce RTX 4090",
        24.0,
        6.2,
    )
    assert first.memory_free_gb == 17.8 and first.utilization_percent == 75 and first.temperature_celsius == 65
    assert second.name == "NVIDIA H100" and second.temperature_celsius is None

    def no_library() -> None:
        raise NVMLError("NVML Shared Library Not Found")

    fake.nvmlInit = no_library  # type: ignore[attr-defined]
    assert NvmlReader().read() == NO_GPU


# ---------------------------------------------------------------------------------------------- GPU memory


def test_required_memory_scales_with_the_request() -> None:
    card = make_card()  # gpu_memory_gb 1 = vram_usage_gb 1: no working memory modelled -> weights only
    assert required_memory_gb(card, 256, 256, 24, loaded=False) == 1.0
    assert required_memory_gb(card, 256, 256, 24, loaded=True) == 0.0
    big = type(card)(
        **{
            **{f: getattr(card, f) for f in card.__struct_fields__},
            "requirements": type(card.requirements)(gpu_memory_gb=8, vram_usage_gb=6, estimated_load_time_seconds=1),
        }
    )
    # largest request (256x256 x 24 frames) needs everything; a quarter of the pixels, a quarter of the working set
    assert required_memory_gb(big, 256, 256, 24, loaded=False) == 8.0
    assert required_memory_gb(big, 128, 128, 24, loaded=True) == 0.5
    assert required_memory_gb(big, 128, 128, 24, loaded=False) == 6.5


def test_check_fits_with_fake_nvml_readings() -> None:
    tight = asyncio.run(FakeGpu(total_gb=8.0, used_gb=7.5).snapshot())
    with pytest.raises(InsufficientGpuMemoryError) as raised:
        check_fits(tight, 1.0)
    assert raised.value.http_status == 507 and raised.value.details == {"required_gb": 1.0, "available_gb": 0.5}
    check_fits(tight, 0.5)
    check_fits(NO_GPU, 1000.0)  # no GPU: never refused


def test_request_that_cannot_fit_is_507(tmp_path: Path, control: FakeModelControl) -> None:
    gpu = FakeGpu(total_gb=8.0, used_gb=7.9)
    control.states = {name: type(st)("UNAVAILABLE", "unloaded") for name, st in control.states.items()}
    with start(make_settings(tmp_path), model_control=control, gpu=gpu) as client:
        response = client.post(GENERATE, json={"prompt": "too big"})
        assert response.status_code == 507, response.text
        error = response.json()["error"]
        assert error["code"] == "INSUFFICIENT_GPU_MEMORY" and error["details"]["available_gb"] == 0.1
        gpu.used_gb = 1.0
        assert client.post(GENERATE, json={"prompt": "fits now"}).status_code == 202


@pytest.mark.parametrize(
    ("text", "oom"),
    [
        ("CUDA out of memory. Tried to allocate 2.00 GiB", True),
        ("onnxruntime: Failed to allocate memory for requested buffer", True),
        ("[TensorRT] OOM while building", True),
        ("invalid request: width must be a multiple of 8", False),
        ("", False),
    ],
)
def test_out_of_memory_messages(text: str, oom: bool) -> None:
    assert is_out_of_memory(text) is oom


class OomBackend(FakeBackend):
    def stream(self, endpoint: Any, request: Any) -> FakeStream:
        stream = OomStream(self, request)
        self.streams.append(stream)
        return stream


class OomStream(FakeStream):
    async def _events(self):  # type: ignore[override]
        yield GenerationEvent(names.PHASE_TEXT_ENCODING, 0, 1)
        details = "127.0.0.1:8001: CUDA out of memory. Tried to allocate 3.1 GiB"
        raise BackendError("Video generation failed", details, OUT_OF_MEMORY)


def test_job_that_runs_out_of_gpu_memory_fails_with_insufficient_gpu_memory(tmp_path: Path) -> None:
    with start(make_settings(tmp_path), backend=OomBackend()) as client:
        rid = client.post(GENERATE, json={"prompt": "oom"}).json()["request_id"]
        failed = wait_for(client, rid, {"failed", "completed"})
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "INSUFFICIENT_GPU_MEMORY"
    assert "CUDA out of memory" in failed["error"]["details"]


# ---------------------------------------------------------------------------------------------- JSON metrics


def _job(
    rid: str, status: str, created: float, started: float | None, end: float | None, model: str = MODEL_ID
) -> JobRecord:
    params = GenerationParameters(64, 48, 6, 8, 4, 7.5, 1)
    fields: dict[str, Any] = {}
    if status == "completed":
        fields = {"completed_at": end, "processing_time_seconds": end - started}  # type: ignore[operator]
    elif status == "failed":
        fields = {"failed_at": end, "error_code": "GENERATION_FAILED"}
    elif status == "cancelled":
        fields = {"cancelled_at": end}
    return JobRecord(rid, model, "p", "", None, params, status, 0, "done", created, started_at=started, **fields)


def seed_jobs(settings: Settings, now: float) -> None:
    async def write() -> None:
        store = JobStore(SqliteDatabase(settings.database_path))
        await store.open()
        for job in [
            _job("video_req_a", "completed", now - 60, now - 59, now - 58),  # 1 s, waited 1 s
            _job("video_req_b", "completed", now - 50, now - 47, now - 45),  # 2 s, waited 3 s
            _job("video_req_c", "completed", now - 40, now - 40, now - 30, "other"),  # 10 s, waited 0 s
            _job("video_req_d", "failed", now - 20, now - 18, now - 16),  # ran 2 s, waited 2 s
            _job("video_req_e", "cancelled", now - 10, None, now - 9),  # never started
            _job("video_req_old", "completed", now - 3 * 86400, now - 3 * 86400, now - 3 * 86400 + 4),  # 4 s
        ]:
            await store.insert(job)
        await store.close()

    asyncio.run(write())


def test_metrics_from_the_job_history_and_the_disk(tmp_path: Path) -> None:
    import time as _time

    settings = make_settings(tmp_path)
    now = _time.time()
    if now % 86400 < 120:  # the seeded jobs must fall on the same UTC day
        _time.sleep(120 - now % 86400)
        now = _time.time()
    seed_jobs(settings, now)
    settings.assets_dir.mkdir(parents=True, exist_ok=True)
    (settings.assets_dir / "video_a.mp4").write_bytes(b"\0" * 3_000_000)
    (settings.assets_dir / "video_a_thumb.jpg").write_bytes(b"\0" * 1_000_000)
    with start(settings) as client:
        body = client.get("/api/v1/metrics").json()
    assert set(body) == {"requests", "generation", "queue", "storage", "models"}
    requests = body["requests"]
    assert requests["total"] == 6 and requests["today"] == 5
    assert requests["success_rate_percent"] == 80.0  # 4 completed, 1 failed; cancelled is not a generation
    assert 0 < requests["per_hour"] <= 5
    assert body["generation"] == {
        "average_time_seconds": pytest.approx((1 + 2 + 10 + 4) / 4),
        "median_time_seconds": pytest.approx(3.0),  # (2 + 4) / 2
        "fastest_time_seconds": pytest.approx(1.0),
        "slowest_time_seconds": pytest.approx(10.0),
    }
    assert body["queue"]["current_length"] == 0
    assert body["queue"]["average_wait_time_seconds"] == pytest.approx((1 + 3 + 0 + 2 + 0) / 5)
    storage = body["storage"]
    assert storage["total_videos"] == 1 and storage["total_size_gb"] == round(4_000_000 / 1024**3, 3)
    assert storage["available_space_gb"] > 0
    assert body["models"] == {
        MODEL_ID: {"generations": 4, "success_rate": 75.0, "average_time_seconds": pytest.approx(7 / 3, abs=1e-3)},
        "other": {"generations": 1, "success_rate": 100.0, "average_time_seconds": 10.0},
    }


def test_empty_metrics_are_null_not_invented(client: TestClient) -> None:
    body = client.get("/api/v1/metrics").json()
    assert body["requests"] == {"total": 0, "today": 0, "per_hour": 0.0, "success_rate_percent": None}
    assert set(body["generation"].values()) == {None}
    assert body["models"] == {MODEL_ID: {"generations": 0, "success_rate": None, "average_time_seconds": None}}


def test_max_queue_length_today_is_tracked_and_survives_a_restart(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, workers=1, queue_size=4)
    hold = FakeBackend(hold_at_step=1)
    with start(settings, backend=hold) as client:
        ids = [client.post(GENERATE, json={"prompt": f"q{i}"}).json()["request_id"] for i in range(4)]
        wait_until(lambda: len(hold.streams) == 1)
        queue = client.get("/api/v1/metrics").json()["queue"]
        assert queue["current_length"] == 3 and queue["max_length_today"] == 3
        for rid in ids[1:]:
            client.delete(f"/api/v1/generate/{rid}")
        queue = client.get("/api/v1/metrics").json()["queue"]
        assert queue["current_length"] == 0 and queue["max_length_today"] == 3
        hold.release.set()
        wait_for(client, ids[0], {"completed"})
    with start(settings) as client:
        assert client.get("/api/v1/metrics").json()["queue"]["max_length_today"] == 3


# ---------------------------------------------------------------------------------------------- Prometheus


def test_prometheus_exposition(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    failing = FakeBackend(fail_at_step=2)
    with start(settings, backend=failing) as client:
        rid = client.post(GENERATE, json={"prompt": "fails"}).json()["request_id"]
        wait_for(client, rid, {"failed"})
        client.get("/api/v1/models/nope")
        client.get("/api/v1/models/animatediff")
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    types_, samples = parse_exposition(response.text)
    assert types_ == {
        "visualizr_http_requests_total": "counter",
        "visualizr_http_request_duration_seconds": "histogram",
        "visualizr_queue_length": "gauge",
        "visualizr_jobs_processing": "gauge",
        "visualizr_workers_alive": "gauge",
        "visualizr_worker_restarts_total": "counter",
        "visualizr_inference_server_up": "gauge",
        "visualizr_inference_server_outages_total": "counter",
        "visualizr_inference_server_jobs_in_flight": "gauge",
        "visualizr_triton_restarts_total": "counter",
        "visualizr_model_heals_total": "counter",
        "visualizr_heal_escalations_total": "counter",
        "visualizr_jobs_total": "counter",
        "visualizr_job_duration_seconds": "histogram",
        "visualizr_job_failures_total": "counter",
        "visualizr_job_queue_wait_seconds": "histogram",
        "visualizr_job_end_to_end_seconds": "histogram",
        "visualizr_job_phase_duration_seconds": "histogram",
        "visualizr_eta_first_estimate_relative_error": "histogram",
        "visualizr_websocket_connections": "gauge",
        "visualizr_websocket_connections_total": "counter",
        "visualizr_webhook_deliveries_total": "counter",
    }
    route = "/api/v1/models/{model_id}"
    assert value(samples, "visualizr_http_requests_total", method="GET", route=route, status="404") == 1
    assert value(samples, "visualizr_http_requests_total", method="GET", route=route, status="200") == 1
    assert value(samples, "visualizr_http_requests_total", method="POST", route=GENERATE, status="202") == 1
    buckets = [
        (float(lab["le"]), v)
        for n, lab, v in samples
        if n == "visualizr_http_request_duration_seconds_bucket" and lab["route"] == route
    ]
    counts = [v for _, v in sorted(buckets)]
    assert counts == sorted(counts) and sorted(buckets)[-1][0] == math.inf and counts[-1] == 2
    assert value(samples, "visualizr_http_request_duration_seconds_count", method="GET", route=route) == 2
    assert value(samples, "visualizr_queue_length") == 0
    assert value(samples, "visualizr_workers_alive") == 1 and value(samples, "visualizr_worker_restarts_total") == 0
    assert value(samples, "visualizr_inference_server_up", url="in-process") == 1
    assert value(samples, "visualizr_inference_server_outages_total", url="in-process") == 0
    assert value(samples, "visualizr_model_heals_total") == value(samples, "visualizr_heal_escalations_total") == 0
    assert value(samples, "visualizr_jobs_total", model=MODEL_ID, outcome="failed") == 1
    assert value(samples, "visualizr_job_duration_seconds_count", model=MODEL_ID, outcome="failed") == 1
    assert value(samples, "visualizr_job_duration_seconds_bucket", model=MODEL_ID, outcome="failed", le="+Inf") == 1
    assert value(samples, "visualizr_job_failures_total", model=MODEL_ID) == 1
    # this replica's own series carry its name; the shared queue and the job table's series do not
    assert {name for name, labels, _ in samples if "replica" not in labels} == {
        "visualizr_queue_length",
        "visualizr_jobs_processing",
        "visualizr_jobs_total",
        "visualizr_job_failures_total",
        *(f"visualizr_job_duration_seconds_{part}" for part in ("bucket", "sum", "count")),
    }
    assert {labels["replica"] for _, labels, _ in samples if "replica" in labels} == {settings.replica_id}


def test_prometheus_counts_jobs_from_history(tmp_path: Path) -> None:
    import time as _time

    settings = make_settings(tmp_path)
    seed_jobs(settings, _time.time())
    with start(settings) as client:
        _, samples = parse_exposition(client.get("/metrics").text)
    assert value(samples, "visualizr_jobs_total", model=MODEL_ID, outcome="completed") == 3
    assert value(samples, "visualizr_jobs_total", model=MODEL_ID, outcome="cancelled") == 1
    # the cancelled job never started: counted, but has no duration
    assert value(samples, "visualizr_job_duration_seconds_count", model=MODEL_ID, outcome="cancelled") == 0
    assert value(samples, "visualizr_job_duration_seconds_sum", model=MODEL_ID, outcome="completed") == 7
    assert value(samples, "visualizr_job_duration_seconds_bucket", model=MODEL_ID, outcome="completed", le="1.0") == 1
    assert value(samples, "visualizr_job_duration_seconds_bucket", model=MODEL_ID, outcome="completed", le="3.0") == 2


# ---------------------------------------------------------------------------------------------- OpenAPI


def test_openapi_schema_lists_the_endpoints(client: TestClient) -> None:
    paths = client.get("/schema/openapi.json").json()["paths"]
    for path in [
        "/api/v1/generate/video",
        "/api/v1/generate/status/{request_id}",
        "/api/v1/models",
        "/api/v1/models/{model_id}",
        "/api/v1/models/{model_id}/load",
        "/api/v1/models/{model_id}/unload",
        "/api/v1/health",
        "/api/v1/metrics",
        "/metrics",
    ]:
        assert path in paths, path
    for viewer in ("/schema", "/schema/swagger", "/schema/redoc"):
        response = client.get(viewer)
        assert response.status_code == 200 and "<html" in response.text.lower(), viewer
