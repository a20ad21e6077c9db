"""The CLI's conveniences: --no-wait, --json, absolute output paths, help with the model card's defaults and limits,
the connection-refused hint, a missing input file, animate --steps. HTTP is an httpx MockTransport, except where
the point is a refused connection (a closed port on 127.0.0.1)."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from visualizr_client import VisualizrClient
from visualizr_client import _cli as cli
from visualizr_client import _cli_options as options

Handler = Callable[[httpx.Request], httpx.Response]
MP4 = b"\x00\x00\x00\x18ftypmp42" * 100
RESULT = {
    "video_url": "/assets/video/video_1.mp4",
    "thumbnail_url": "/assets/video/video_1_thumb.jpg",
    "preview_gif_url": "/assets/video/video_1_preview.gif",
    "metadata": {"duration_seconds": 1.0, "fps": 4, "resolution": "64x64", "file_size_bytes": 1, "num_frames": 4},
}
CARD = {
    "id": "animatediff",
    "capabilities": {"min_duration_seconds": 0.067, "max_duration_seconds": 32.0, "styles": ["cinematic", "anime"]},
    "parameters": {
        "width": {"min": 64, "max": 512, "default": 128, "multiple_of": 8, "description": "Video width"},
        "height": {"min": 64, "max": 512, "default": 128, "multiple_of": 8, "description": "Video height"},
        "num_frames": {"min": 2, "max": 32, "default": 16, "description": "Frames"},
        "fps": {"min": 1, "max": 30, "default": 8, "description": "fps"},
        "num_inference_steps": {"min": 1, "max": 50, "default": 20, "description": "Steps"},
        "guidance_scale": {"min": 1.0, "max": 20.0, "default": 7.5, "description": "Guidance"},
    },
}

SVD = "stable-video-diffusion"
SVD_CARD = {
    "id": SVD,
    "capabilities": {"min_duration_seconds": 0.067, "max_duration_seconds": 9.333},
    "parameters": {
        **CARD["parameters"],
        "num_frames": {"min": 2, "max": 14, "default": 14, "description": "Frames"},
        "fps": {"min": 3, "max": 30, "default": 7, "description": "fps"},
    },
}


class Server:
    """Answers a job submission, its status (completed), the MP4 and the model card; records the requests."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.models: list[dict[str, Any]] = [{"id": "animatediff"}]
        self.videos: dict[str, Any] = {"videos": [], "total_count": 0, "has_more": False}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if request.method == "POST":
            return httpx.Response(202, json={"request_id": "video_req_1", "status": "queued", "queue_position": 0})
        if path.startswith("/api/v1/generate/status/"):
            return httpx.Response(
                200, json={"request_id": "video_req_1", "status": "completed", "progress": 100, "result": RESULT}
            )
        if path == RESULT["video_url"]:
            return httpx.Response(200, content=MP4, headers={"content-type": "video/mp4"})
        if path == "/api/v1/models":
            return httpx.Response(200, json={"models": self.models})
        if path == "/api/v1/assets/videos":
            return httpx.Response(200, json=self.videos)
        if path == "/api/v1/models/animatediff":
            return httpx.Response(200, json=CARD)
        if path == f"/api/v1/models/{SVD}":
            return httpx.Response(200, json=SVD_CARD)
        return httpx.Response(404, json={"error": {"code": "ROUTE_NOT_FOUND", "message": "no", "details": None}})

    def bodies(self) -> list[Any]:
        return [json.loads(r.content) for r in self.requests if r.method == "POST"]


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Server:
    handler = Server()

    def factory(*args: Any, **kwargs: Any) -> VisualizrClient:
        return VisualizrClient(*args, transport=httpx.MockTransport(handler), **kwargs)

    monkeypatch.setattr(cli, "VisualizrClient", factory)
    monkeypatch.setattr(options, "VisualizrClient", factory)
    return handler


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the block ends: connecting is refused


BASE = ["--url", "http://127.0.0.1:9"]
POLL = ["--no-websocket", "--poll-interval", "0.01"]


def test_no_wait_prints_the_request_id_and_exits(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([*BASE, "generate", "a cat", "--no-wait"]) == 0
    assert capsys.readouterr().out == "video_req_1\n"
    assert [r.method for r in server.requests] == ["POST"]  # no polling, no download
    assert cli.main([*BASE, "--json", "generate", "a cat", "--no-wait"]) == 0
    assert json.loads(capsys.readouterr().out)["request_id"] == "video_req_1"


def test_json_is_one_object_with_an_absolute_path(
    server: Server, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main([*BASE, "generate", "a cat", "--out", "clips/cat.mp4", *POLL, "--json"]) == 0
    final = json.loads(capsys.readouterr().out)
    assert final["output"] == str(tmp_path / "clips" / "cat.mp4") and os.path.isabs(final["output"])
    assert (tmp_path / "clips" / "cat.mp4").read_bytes() == MP4


def test_default_output_is_a_summary_with_the_absolute_path(
    server: Server, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main([*BASE, "generate", "a cat", *POLL]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "request_id: video_req_1"
    assert lines[1].startswith(f"saved {tmp_path / 'video_req_1.mp4'} (") and "64x64, 4 frames at 4 fps" in lines[1]


def test_animate_sends_steps(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([*BASE, "animate", "robot", "--steps", "3", "--resolution", "64x64", "--no-wait"]) == 0
    assert server.bodies() == [{"character_id": "robot", "resolution": "64x64", "num_inference_steps": 3}]


def test_help_shows_the_card_limits_and_defaults(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([*BASE, "generate", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "64-512, a multiple of 8; default 128" in text
    assert "frames to generate (2-32; default 16)" in text
    assert "1-20; default 7.5" in text and "default: random" in text and "(default 600)" in text
    assert "Limits and defaults are those of model 'animatediff'" in text
    assert "(one of cinematic, anime; default: none)" in text  # --style: the card's styles
    assert cli.main([*BASE, "from-image", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "0.067-32 s; default 2 s (16 frames)" in text and "at most 1; default 0.7" in text
    assert cli.main([*BASE, "animate", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "width 64-512, a multiple of 8, height 64-512, a multiple of 8; default 128x128" in text
    assert "--steps N" in text and "(one of cinematic, anime; default: none)" in text


def test_from_image_help_shows_the_image_to_video_models_limits(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --model from-image runs on the server's image-to-video model: its help shows that card's limits."""
    server.models = [{"id": "animatediff", "type": "text-to-video"}, {"id": SVD, "type": "image-to-video"}]
    assert cli.main([*BASE, "from-image", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert f"Limits and defaults are those of model '{SVD}'" in text
    assert "0.067-9.333 s; default 2 s (14 frames)" in text and "(3-30; default 7)" in text  # 14 frames at 7 fps
    assert cli.main([*BASE, "generate", "--help"]) == 0
    assert "those of model 'animatediff'" in " ".join(capsys.readouterr().out.split())


def test_help_without_a_server_says_where_the_limits_are(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--url", f"http://127.0.0.1:{closed_port()}", "generate", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "The server did not answer" in text and "--url (VISUALIZR_URL)" in text
    assert "frames to generate (limits and default: see the model card)" in text


def test_connection_refused_names_url_and_variable(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    assert cli.main(["--url", url, "health"]) == 1
    err = capsys.readouterr().err
    assert "Connection refused" in err and url in err and "VISUALIZR_URL" in err and "--url" in err


def test_missing_image_is_a_one_line_usage_error(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([*BASE, "from-image", "no/such/photo.png", "swaying"]) == 2
    err = capsys.readouterr().err
    assert err == "usage error: image file not found: no/such/photo.png\n"
    assert server.requests == []  # nothing was sent


def test_models_and_videos_print_aligned_tables_or_json(server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    server.models = [
        {"id": "animatediff", "type": "text-to-video", "status": "loaded", "max_resolution": "128x128",
         "max_duration_seconds": 2.0, "gpu_memory_required_gb": 0.5},
        {"id": SVD, "type": "image-to-video", "status": "unloaded"},
    ]  # fmt: skip
    assert cli.main([*BASE, "models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "TYPE", "STATUS", "MAX", "RESOLUTION", "MAX", "DURATION", "GPU", "MEMORY",
                                "AVERAGE", "TIME"]  # fmt: skip
    assert lines[1].split()[:5] == ["animatediff", "text-to-video", "loaded", "128x128", "2"]
    assert lines[2].split() == [SVD, "image-to-video", "unloaded", "-", "-", "-", "-"]
    assert lines[0].index("TYPE") == lines[1].index("text-to-video") == lines[2].index("image-to-video")  # aligned
    assert lines[0].index("STATUS") == lines[1].index("loaded") == lines[2].index("unloaded")
    assert cli.main([*BASE, "models", "--json"]) == 0
    assert [m["id"] for m in json.loads(capsys.readouterr().out)["models"]] == ["animatediff", SVD]

    server.videos = {
        "videos": [{"id": "video_1", "url": "/assets/video/video_1.mp4", "model": "animatediff",
                    "prompt": "a red balloon drifting over a calm lake at dawn, in soft golden light, 35 mm film",
                    "metadata": RESULT["metadata"], "created_at": "2026-01-02T03:04:05Z"}],
        "total_count": 3,
        "has_more": True,
    }  # fmt: skip
    assert cli.main([*BASE, "videos", "--limit", "1"]) == 0
    header, row, footer = capsys.readouterr().out.splitlines()
    assert header.split() == ["ID", "MODEL", "RESOLUTION", "DURATION", "CREATED", "PROMPT"]
    assert row.split()[:5] == ["video_1", "animatediff", "64x64", "1", "s"] and row.endswith("…")
    assert row.index("animatediff") == header.index("MODEL") and footer.startswith("1 of 3 video(s)")
    assert cli.main([*BASE, "videos", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total_count"] == 3
    server.videos = {"videos": [], "total_count": 0, "has_more": False}
    assert cli.main([*BASE, "videos"]) == 0
    assert capsys.readouterr().out == "no videos (of 0)\n"


def test_generate_sends_the_webhook_fields_json_form_and_cli(server: Server, tmp_path: Path) -> None:
    with VisualizrClient("http://127.0.0.1:9", transport=httpx.MockTransport(server)) as client:
        client.generate_video("a cat", webhook_url="https://hooks.example/x", webhook_events=["completed", "progress"])
        image = tmp_path / "a.png"
        image.write_bytes(b"png")
        client.generate_video_from_image(image, "sway", webhook_url="https://hooks.example/x",
                                         webhook_events=["failed", "cancelled"])  # fmt: skip
    assert cli.main([*BASE, "animate", "robot", "--webhook-url", "https://hooks.example/y", "--no-wait"]) == 0
    sent_json, sent_form, sent_cli = server.requests[0], server.requests[1], server.requests[2]
    assert json.loads(sent_cli.content)["webhook_url"] == "https://hooks.example/y"
    assert json.loads(sent_json.content)["webhook_events"] == ["completed", "progress"]
    assert b'name="webhook_events"\r\n\r\nfailed,cancelled\r\n' in sent_form.content
