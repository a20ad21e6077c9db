"""The SDK and the CLI (visualizr_client) against the REAL stack: tritonserver + the API process (the session
fixture ``api`` of tests/conftest.py). Small jobs (64x64, 4 frames, 2 steps) keep each to a few seconds.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from pathlib import Path
from typing import Any

import av
import pytest
import requests

from benchmarks.stack import ApiProcess
from tests.support.sdk_example import spec_sdk_example, split_example
from tests.support.stack import start_sibling_api
from visualizr.launcher import TritonServer
from visualizr.settings import Settings
from visualizr_client import (
    AsyncVisualizrClient,
    AuthenticationError,
    GenerationCancelledError,
    InvalidParametersError,
    InvalidPromptError,
    ModelNotFoundError,
    NotFoundError,
    RequestNotFoundError,
    VisualizrClient,
)
from visualizr_client import _cli as cli
from visualizr_client import models as m

pytestmark = pytest.mark.integration

SMALL: dict[str, Any] = {"width": 64, "height": 64, "num_frames": 4, "fps": 4, "num_inference_steps": 2}


def decode(path: Path) -> tuple[int, tuple[int, int], float]:
    """(frames, (width, height), fps) of an MP4 decoded with PyAV."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        return len(frames), (frames[0].width, frames[0].height), float(stream.average_rate)


@pytest.fixture
def client(api: ApiProcess) -> Any:
    with VisualizrClient(api.base_url) as c:
        yield c


def assert_small_completed(final: m.GenerationStatus) -> m.VideoResult:
    assert final.status == "completed" and final.progress == 100, final
    assert final.result is not None and final.result.metadata is not None
    meta = final.result.metadata
    assert (meta.resolution, meta.fps, meta.format, meta.codec) == ("64x64", 4, "mp4", "h264")
    assert final.processing_time_seconds is not None and final.processing_time_seconds > 0
    return final.result


# --- generation -------------------------------------------------------------------------------------------


def test_sync_generate_stream_download_decode(client: VisualizrClient, tmp_path: Path) -> None:
    accepted = client.generate_video("a red balloon over a quiet lake", seed=7, **SMALL)
    assert accepted.request_id.startswith("video_req_") and accepted.status in {"queued", "processing"}
    assert accepted.created_at and accepted.created_at.endswith("Z")

    messages = list(client.stream_progress(accepted.request_id, timeout=120))
    assert isinstance(messages[-1], m.CompletedMessage), messages[-1]
    assert messages[-1].result is not None and messages[-1].result.video_url.endswith(".mp4")
    progress = [x.progress for x in messages if isinstance(x, m.ProgressMessage)]
    assert progress == sorted(progress)

    final = client.wait_for_completion(accepted.request_id, timeout=30, poll_interval=0.2)
    result = assert_small_completed(final)
    path = client.download(result.video_url, tmp_path / "clip.mp4")
    assert result.metadata is not None and path.stat().st_size == result.metadata.file_size_bytes
    assert decode(path) == (4, (64, 64), 4.0)
    thumb = client.download(result.thumbnail_url or "", tmp_path)
    assert thumb.name.endswith("_thumb.jpg") and thumb.read_bytes()[:2] == b"\xff\xd8"


def test_async_generate_stream_download_decode(api: ApiProcess, tmp_path: Path) -> None:
    async def scenario() -> tuple[list[m.StreamMessage], m.GenerationStatus, Path]:
        async with AsyncVisualizrClient(api.base_url) as client:
            accepted = await client.generate_video("async lake", seed=3, **SMALL)
            messages = [x async for x in client.stream_progress(accepted.request_id, timeout=120)]
            final = await client.wait_for_completion(accepted.request_id, timeout=30, poll_interval=0.2)
            assert final.result is not None
            return messages, final, await client.download(final.result.video_url, tmp_path / "async.mp4")

    messages, final, path = asyncio.run(scenario())
    assert isinstance(messages[-1], m.CompletedMessage)
    assert_small_completed(final)
    assert decode(path) == (4, (64, 64), 4.0)


def test_cancel_through_the_sdk(client: VisualizrClient) -> None:
    accepted = client.generate_video("cancel me", seed=1, **{**SMALL, "num_inference_steps": 40})
    cancelled = client.cancel(accepted.request_id)
    assert cancelled.request_id == accepted.request_id and cancelled.status == "cancelled"
    assert cancelled.cancelled_at and cancelled.message
    with pytest.raises(GenerationCancelledError) as info:
        client.wait_for_completion(accepted.request_id, timeout=30, poll_interval=0.1)
    assert info.value.job is not None and info.value.job.status == "cancelled"
    messages = list(client.stream_progress(accepted.request_id, timeout=30))
    assert len(messages) == 1 and isinstance(messages[0], m.CancelledMessage)


def test_health(client: VisualizrClient) -> None:
    health = client.health()
    assert health.status in {"healthy", "degraded"} and health.version
    assert health.queue_status is not None and health.queue_status.pending_requests is not None


# --- errors from the real server --------------------------------------------------------------------------


def test_error_mapping_against_the_server(client: VisualizrClient, tmp_path: Path) -> None:
    with pytest.raises(InvalidPromptError) as prompt:
        client.generate_video("   ")
    assert prompt.value.status == 400 and prompt.value.message
    with pytest.raises(InvalidParametersError) as params:
        client.generate_video("x", width=100)
    assert params.value.status == 400 and params.value.details is not None
    with pytest.raises(ModelNotFoundError) as model:
        client.generate_video("x", model="no-such-model")
    assert model.value.status == 404
    with pytest.raises(RequestNotFoundError) as status:
        client.get_status("video_req_does_not_exist")
    assert status.value.status == 404 and status.value.code == "REQUEST_NOT_FOUND"
    with pytest.raises(RequestNotFoundError):
        client.cancel("video_req_does_not_exist")
    with pytest.raises(RequestNotFoundError) as ws:
        list(client.stream_progress("video_req_does_not_exist", timeout=30))
    assert ws.value.status is None  # reported over the WebSocket, not by an HTTP status
    with pytest.raises(NotFoundError):
        client.download("/assets/video/video_nope.mp4", tmp_path / "nope.mp4")
    assert list(tmp_path.iterdir()) == []


# --- CLI --------------------------------------------------------------------------------------------------


def test_cli_end_to_end(api: ApiProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "clip.mp4"
    argv = ["--url", api.base_url, "generate", "a cli balloon", "--out", str(out), "--width", "64", "--height", "64"]
    argv += ["--frames", "4", "--fps", "4", "--steps", "2", "--seed", "5", "--guidance", "7.5", "--negative", "blur"]
    assert cli.main([*argv, "--json"]) == 0
    captured = capsys.readouterr()
    final = json.loads(captured.out)
    request_id = final["request_id"]
    assert request_id.startswith("video_req_")
    assert final["output"] == str(out) and final["metadata"]["resolution"] == "64x64"
    assert "100%" in captured.err and "polling instead" not in captured.err  # the WebSocket drove the bar
    assert decode(out) == (4, (64, 64), 4.0)

    assert cli.main(["--url", api.base_url, "status", request_id]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "completed"
    assert cli.main(["--url", api.base_url, "health"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] in {"healthy", "degraded"}
    assert cli.main(["--url", api.base_url, "status", "video_req_nope"]) == 1
    assert "REQUEST_NOT_FOUND" in capsys.readouterr().err
    assert cli.main(["--url", api.base_url, "generate", " ", "--out", str(tmp_path / "x.mp4")]) == 1
    assert "INVALID_PROMPT" in capsys.readouterr().err


def test_cli_polls_without_the_websocket(api: ApiProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "polled.mp4"
    argv = ["--url", api.base_url, "generate", "polled", "--out", str(out), "--no-websocket", "--poll-interval", "0.2"]
    argv += ["--width", "64", "--height", "64", "--frames", "4", "--fps", "4", "--steps", "2"]
    assert cli.main(argv) == 0
    assert decode(out) == (4, (64, 64), 4.0)


def test_python_dash_m_entry_point(api: ApiProcess) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "visualizr_client", "--url", api.base_url, "health"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] in {"healthy", "degraded"}


# --- the spec's own SDK example, unchanged ----------------------------------------------------------------


def test_spec_sdk_example_runs_unchanged(api: ApiProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The ```python block of the spec's "SDK Example", verbatim: its class, then its usage lines (the only change:
    VisualizrClient's default base_url points at this test's server). The usage's prompt-only call runs on the
    model's defaults; a second call passes small parameters as kwargs and its MP4 is decoded."""
    source, origin = spec_sdk_example()
    definition, usage = split_example(source)
    namespace: dict[str, Any] = {"__name__": "spec_sdk_example"}
    exec(compile(definition, f"{origin} (class)", "exec"), namespace)
    spec_client_class = namespace["VisualizrClient"]
    namespace["VisualizrClient"] = functools.partial(spec_client_class, base_url=api.base_url)

    started = time.monotonic()
    exec(compile(usage, f"{origin} (usage)", "exec"), namespace)
    printed = capsys.readouterr().out
    assert printed.startswith("Video URL: /assets/video/") and printed.strip().endswith(".mp4"), printed
    assert time.monotonic() - started < 300

    client = namespace["client"]
    assert isinstance(client, spec_client_class)
    result = client.generate_video("A beautiful sunset over mountains", seed=42, **SMALL)
    final = client.wait_for_completion(result["request_id"])
    assert final["status"] == "completed" and final["result"]["metadata"]["resolution"] == "64x64"
    video = requests.get(f"{api.base_url}{final['result']['video_url']}", timeout=30)
    assert video.status_code == 200
    path = tmp_path / "spec.mp4"
    path.write_bytes(video.content)
    assert decode(path) == (4, (64, 64), 4.0)
    # the example's status call gives the same job our SDK sees
    with VisualizrClient(api.base_url) as sdk:
        assert sdk.get_status(result["request_id"]).result.video_url == final["result"]["video_url"]  # type: ignore[union-attr]


# --- API keys: a second API process on the same tritonserver, with VISUALIZR_API_KEYS set --------------------

API_KEY = "your-api-key"  # the key the spec's example sends, so the example runs unchanged against it too


@pytest.fixture(scope="module")
def secured_api(
    triton: TritonServer, stack_env: tuple[Settings, dict[str, str]], tmp_path_factory: pytest.TempPathFactory
) -> Any:
    data_dir = tmp_path_factory.mktemp("visualizr-secured")
    process = start_sibling_api(stack_env[1], data_dir, VISUALIZR_API_KEYS=f"{API_KEY},second-key")
    try:
        assert requests.get(f"{process.base_url}/api/v1/generate/status/video_req_x", timeout=30).status_code == 401
        yield process
    finally:
        process.stop()


def test_api_key_is_sent_on_http_websocket_and_downloads(secured_api: ApiProcess, tmp_path: Path) -> None:
    with VisualizrClient(secured_api.base_url) as anonymous:
        with pytest.raises(AuthenticationError) as missing:
            anonymous.generate_video("x", **SMALL)
        assert missing.value.status == 401 and missing.value.code == "UNAUTHORIZED"
        with pytest.raises(AuthenticationError):
            list(anonymous.stream_progress("video_req_x", timeout=30))
        assert anonymous.health().status in {"healthy", "degraded"}  # exempt: probes carry no key
    with VisualizrClient(secured_api.base_url, api_key="wrong") as wrong, pytest.raises(AuthenticationError):
        wrong.get_status("video_req_x")

    with VisualizrClient(secured_api.base_url, api_key="second-key") as client:
        accepted = client.generate_video("keyed", seed=2, **SMALL)
        messages = list(client.stream_progress(accepted.request_id, timeout=120))
        assert isinstance(messages[-1], m.CompletedMessage), messages[-1]
        final = client.wait_for_completion(accepted.request_id, timeout=30, poll_interval=0.2)
        result = assert_small_completed(final)
        assert decode(client.download(result.video_url, tmp_path / "keyed.mp4")) == (4, (64, 64), 4.0)
        with VisualizrClient(secured_api.base_url) as anonymous, pytest.raises(AuthenticationError):
            anonymous.download(result.video_url, tmp_path / "anonymous.mp4")


def test_cli_api_key_option_and_environment(
    secured_api: ApiProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli.main(["--url", secured_api.base_url, "status", "video_req_x"]) == 1
    assert "UNAUTHORIZED" in capsys.readouterr().err
    assert cli.main(["--url", secured_api.base_url, "--api-key", API_KEY, "status", "video_req_x"]) == 1
    assert "REQUEST_NOT_FOUND" in capsys.readouterr().err  # past the key check
    monkeypatch.setenv("VISUALIZR_URL", secured_api.base_url)
    monkeypatch.setenv("VISUALIZR_API_KEY", API_KEY)
    out = tmp_path / "env.mp4"
    argv = ["generate", "env key", "--out", str(out), "--width", "64", "--height", "64", "--frames", "4"]
    assert cli.main([*argv, "--fps", "4", "--steps", "2"]) == 0
    assert "polling instead" not in capsys.readouterr().err  # the key went on the WebSocket handshake too
    assert decode(out) == (4, (64, 64), 4.0)


def test_spec_sdk_example_with_its_api_key(secured_api: ApiProcess, capsys: pytest.CaptureFixture[str]) -> None:
    """The spec's usage sends api_key="your-api-key": against a server holding that key it works unchanged."""
    source, origin = spec_sdk_example()
    definition, _ = split_example(source)
    namespace: dict[str, Any] = {"__name__": "spec_sdk_example"}
    exec(compile(definition, f"{origin} (class)", "exec"), namespace)
    client = namespace["VisualizrClient"](base_url=secured_api.base_url, api_key=API_KEY)
    final = client.wait_for_completion(client.generate_video("keyed spec example", **SMALL)["request_id"])
    assert final["status"] == "completed" and final["result"]["video_url"].endswith(".mp4")
    anonymous = namespace["VisualizrClient"](base_url=secured_api.base_url)
    assert anonymous.get_status(final["request_id"])["error"]["code"] == "UNAUTHORIZED"


# --- models, assets, metrics, health ------------------------------------------------------------------------


def test_models_endpoints(api: ApiProcess, client: VisualizrClient) -> None:
    models = client.list_models()
    assert "animatediff" in {x.id for x in models}
    detail = client.get_model("animatediff")
    assert detail.id == "animatediff" and detail.type == "text-to-video" and detail.capabilities is not None
    assert "num_inference_steps" in detail.parameters
    assert detail.parameters["num_inference_steps"].max is not None
    with pytest.raises(ModelNotFoundError):
        client.get_model("no-such-model")
    loaded = client.load_model("animatediff")
    assert loaded.model_id == "animatediff" and loaded.status
    with pytest.raises(ModelNotFoundError):
        client.load_model("no-such-model")
    assert cli.main(["--url", api.base_url, "models"]) == 0
    assert cli.main(["--url", api.base_url, "models", "animatediff"]) == 0


def test_unload_then_generation_still_works(api: ApiProcess, client: VisualizrClient) -> None:
    unloaded = client.unload_model("animatediff")
    assert unloaded.model_id == "animatediff" and unloaded.status
    assert client.load_model("animatediff").model_id == "animatediff"
    final = client.wait_for_completion(client.generate_video("after reload", **SMALL).request_id, timeout=120)
    assert_small_completed(final)


def test_assets_endpoints(api: ApiProcess, client: VisualizrClient, tmp_path: Path) -> None:
    final = client.wait_for_completion(client.generate_video("asset me", seed=11, **SMALL).request_id, timeout=120)
    assert final.result is not None
    listing = client.list_videos(limit=100)
    assert listing.total_count >= 1 and listing.videos
    mine = next(v for v in listing.videos if v.url == final.result.video_url)
    assert client.list_videos(limit=1, offset=0).videos and len(client.list_videos(limit=1).videos) == 1
    assert all(v.model == "animatediff" for v in client.list_videos(model="animatediff").videos)
    assert client.list_videos(model="no-such-model").videos == []

    detail = client.get_video(mine.id)
    assert detail.id == mine.id and detail.prompt == "asset me"
    assert detail.parameters is not None and detail.parameters.seed == 11 and detail.parameters.num_frames == 4
    assert detail.generation_info is not None and detail.generation_info.request_id == final.request_id
    assert decode(client.download(detail.url, tmp_path / "asset.mp4")) == (4, (64, 64), 4.0)

    deleted = client.delete_video(mine.id)
    assert deleted.video_id == mine.id and deleted.status == "deleted"
    with pytest.raises(NotFoundError):
        client.get_video(mine.id)
    with pytest.raises(NotFoundError):
        client.download(detail.url, tmp_path / "gone.mp4")
    assert cli.main(["--url", api.base_url, "videos", "--limit", "5"]) == 0


def test_metrics_endpoint(api: ApiProcess, client: VisualizrClient) -> None:
    metrics = client.metrics()
    assert metrics.requests is not None and (metrics.requests.total or 0) >= 1
    assert metrics.queue is not None and metrics.storage is not None


def test_health_reports_gpu_and_loaded_models(api: ApiProcess, client: VisualizrClient) -> None:
    health = client.health()
    assert health.gpu_info is not None
    assert health.gpu_info.count == len(health.gpu_info.devices)
    assert isinstance(health.loaded_models, list)


def test_stream_of_a_finished_job_is_its_terminal_message(client: VisualizrClient) -> None:
    final = client.wait_for_completion(client.generate_video("finished", **SMALL).request_id, timeout=120)
    messages = list(client.stream_progress(final.request_id, timeout=30))
    assert len(messages) == 1 and isinstance(messages[0], m.CompletedMessage)
    assert messages[0].result is not None and final.result is not None
    assert messages[0].result.video_url == final.result.video_url


def test_image_to_video_and_character_animation(client: VisualizrClient, tmp_path: Path) -> None:
    from tests.support.images import gradient_png

    source = tmp_path / "source.png"
    source.write_bytes(gradient_png())
    job = client.generate_video_from_image(
        source,
        "gentle swaying",
        duration_seconds=1,
        fps=4,
        motion_strength=0.6,
        width=64,
        height=64,
        num_inference_steps=2,
    )
    assert job.request_id.startswith("video_req_")
    assert_small_completed(client.wait_for_completion(job.request_id, timeout=120))

    animation = client.generate_character_animation(
        "assistant", action="greeting", emotion="happy", duration_seconds=1, resolution="64x64"
    )
    assert animation.request_id.startswith("anim_req_") and animation.character_id == "assistant"
    final = client.wait_for_completion(animation.request_id, timeout=120)
    assert final.status == "completed" and final.result is not None
    assert decode(client.download(final.result.video_url, tmp_path / "anim.mp4"))[1] == (64, 64)
    with pytest.raises(InvalidParametersError):
        client.generate_character_animation("assistant", resolution="2048x2048")


def test_cli_from_image_and_animate(api: ApiProcess, tmp_path: Path) -> None:
    from tests.support.images import gradient_png

    source = tmp_path / "source.png"
    source.write_bytes(gradient_png())
    clip, hello = tmp_path / "clip.mp4", tmp_path / "hello.mp4"
    common = ["--steps", "2"]
    assert (
        cli.main(
            [
                "--url",
                api.base_url,
                "from-image",
                str(source),
                "gentle swaying",
                "--duration",
                "1",
                "--fps",
                "4",
                "--strength",
                "0.6",
                "--width",
                "64",
                "--height",
                "64",
                *common,
                "--out",
                str(clip),
            ]
        )
        == 0
    )
    assert decode(clip)[:2] == (4, (64, 64))
    assert (
        cli.main(
            [
                "--url",
                api.base_url,
                "animate",
                "assistant",
                "--action",
                "greeting",
                "--duration",
                "1",
                "--resolution",
                "64x64",
                "--out",
                str(hello),
            ]
        )
        == 0
    )
    assert decode(hello)[1] == (64, 64)
    assert cli.main(["--url", api.base_url, "animate", "nobody", "--resolution", "64x64"]) == 1
