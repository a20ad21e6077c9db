"""Units of the SDK (visualizr_client): request building, answer parsing, error mapping, waiting, WebSocket
messages, downloads and the CLI's plumbing. The server is an httpx.MockTransport (or a local websockets server)
here; tests/test_integration_sdk.py runs the same SDK against the real stack."""

from __future__ import annotations

import asyncio
import inspect
import io
import json
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.sync.server import ServerConnection, serve

from tests.support.spec_reference import spec_text
from visualizr_client import (
    AsyncVisualizrClient,
    AuthenticationError,
    GenerationCancelledError,
    GenerationFailedError,
    IdempotencyKeyReusedError,
    InsufficientGpuMemoryError,
    InsufficientStorageError,
    InvalidParametersError,
    InvalidPromptError,
    ModelLoadFailedError,
    ModelNotFoundError,
    QueueFullError,
    RequestNotFoundError,
    RouteNotFoundError,
    UnexpectedResponseError,
    VisualizrAPIError,
    VisualizrClient,
    VisualizrConnectionError,
    _core,
)
from visualizr_client import _cli as cli
from visualizr_client import models as m
from visualizr_client._errors import error_from_response
from visualizr_client._progress import ProgressBar

BASE = "http://visualizr.test:8002"

Handler = Callable[[httpx.Request], httpx.Response]


def err_body(code: str, message: str = "nope", details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def client_for(handler: Handler, **kwargs: Any) -> VisualizrClient:
    return VisualizrClient(BASE, transport=httpx.MockTransport(handler), **kwargs)


def async_client_for(handler: Handler, **kwargs: Any) -> AsyncVisualizrClient:
    return AsyncVisualizrClient(BASE, transport=httpx.MockTransport(handler), **kwargs)


class Recorder:
    """A MockTransport handler answering a fixed JSON body, remembering the requests."""

    def __init__(self, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.body, self.status, self.headers = body, status, headers or {}
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status, json=self.body, headers=self.headers)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


# --- request building -------------------------------------------------------------------------------------


def test_generate_builds_the_spec_body_without_nones() -> None:
    rec = Recorder({"request_id": "video_req_1", "status": "queued", "queue_position": 0})
    with client_for(rec) as client:
        accepted = client.generate_video("a cat", width=64, seed=None, guidance_scale=7.5, negative_prompt="blur")
    assert accepted == m.GenerationAccepted(request_id="video_req_1", status="queued", queue_position=0)
    assert rec.last.method == "POST" and rec.last.url.path == "/api/v1/generate/video"
    assert json.loads(rec.last.content) == {
        "prompt": "a cat",
        "width": 64,
        "guidance_scale": 7.5,
        "negative_prompt": "blur",
    }
    assert rec.last.headers["content-type"] == "application/json"
    assert "authorization" not in rec.last.headers


GENERATE_CALLS: list[Callable[[Any, str | None], Any]] = [
    lambda c, key: c.generate_video("a cat", idempotency_key=key, seed=1),
    lambda c, key: c.generate_video_from_image(b"png", "sway", idempotency_key=key, fps=4),
    lambda c, key: c.generate_character_animation("robot", idempotency_key=key, action="waving"),
]


def test_from_image_sends_an_end_image_only_when_given() -> None:
    rec = Recorder({"request_id": "video_req_1", "status": "queued", "queue_position": 0})
    with client_for(rec) as client:
        client.generate_video_from_image(b"first", "sway", end_image=b"last-frame-png", model="ltx-video")
        client.generate_video_from_image(b"first", "sway")
    with_end, without = (r.content for r in rec.requests)
    assert b'name="end_image"' in with_end and b"last-frame-png" in with_end and b'name="model"' in with_end
    assert b'name="end_image"' not in without


@pytest.mark.parametrize("call", GENERATE_CALLS)
def test_generate_sends_the_idempotency_key_only_when_given(call: Callable[[Any, str | None], Any]) -> None:
    rec = Recorder({"request_id": "video_req_1", "status": "queued", "queue_position": 0})
    with client_for(rec) as client:
        call(client, "order-42")
        call(client, None)
    assert [r.headers.get("idempotency-key") for r in rec.requests] == ["order-42", None]
    assert b"idempotency" not in rec.requests[0].content  # a header, never a body field


@pytest.mark.parametrize("call", GENERATE_CALLS)
def test_async_generate_sends_the_idempotency_key(call: Callable[[Any, str | None], Any]) -> None:
    rec = Recorder({"request_id": "video_req_1", "status": "queued", "queue_position": 0})

    async def run() -> None:
        async with async_client_for(rec) as client:
            await call(client, "order-42")

    asyncio.run(run())
    assert rec.last.headers["idempotency-key"] == "order-42"


@pytest.mark.parametrize(
    ("call", "method", "path"),
    [
        (lambda c: c.get_status("video_req_1"), "GET", "/api/v1/generate/status/video_req_1"),
        (lambda c: c.cancel("video_req_1"), "DELETE", "/api/v1/generate/video_req_1"),
        (lambda c: c.list_models(), "GET", "/api/v1/models"),
        (lambda c: c.get_model("animatediff"), "GET", "/api/v1/models/animatediff"),
        (lambda c: c.load_model("animatediff"), "POST", "/api/v1/models/animatediff/load"),
        (lambda c: c.unload_model("animatediff"), "POST", "/api/v1/models/animatediff/unload"),
        (lambda c: c.list_videos(), "GET", "/api/v1/assets/videos"),
        (lambda c: c.get_video("video_1"), "GET", "/api/v1/assets/videos/video_1"),
        (lambda c: c.delete_video("video_1"), "DELETE", "/api/v1/assets/videos/video_1"),
        (lambda c: c.health(), "GET", "/api/v1/health"),
        (lambda c: c.metrics(), "GET", "/api/v1/metrics"),
    ],
)
def test_every_endpoint_hits_the_spec_route(call: Callable[[VisualizrClient], Any], method: str, path: str) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(404, json=err_body("REQUEST_NOT_FOUND"))

    with client_for(handler) as client, pytest.raises(VisualizrAPIError):
        call(client)
    assert (seen[0].method, seen[0].url.raw_path.decode()) == (method, path)


def test_ids_are_one_path_segment() -> None:
    assert _core.get_status("../../etc/passwd?x=1").path == "/api/v1/generate/status/..%2F..%2Fetc%2Fpasswd%3Fx%3D1"
    with pytest.raises(ValueError):
        _core.get_model("")


def test_list_videos_query_leaves_out_unset_filters() -> None:
    call = _core.list_videos(10, 0, "animatediff", "2024-01-01T00:00:00Z", None)
    assert call.params == {"limit": 10, "offset": 0, "model": "animatediff", "start_date": "2024-01-01T00:00:00Z"}
    assert _core.list_videos(None, None, None, None, None).params == {}


def test_settings_urls_and_headers() -> None:
    settings = _core.Settings("https://host:9000/prefix/", api_key="k")
    assert settings.base_url == "https://host:9000/prefix"
    assert settings.ws_url == "wss://host:9000/prefix/api/v1/ws/generation"
    assert _core.Settings("http://h:1").ws_url == "ws://h:1/api/v1/ws/generation"
    assert settings.ws_headers == {"Authorization": "Bearer k"}
    assert _core.Settings().ws_headers == {}
    assert settings.absolute("/assets/video/a.mp4") == "https://host:9000/prefix/assets/video/a.mp4"
    assert settings.absolute("http://cdn/x.mp4") == "http://cdn/x.mp4"
    with pytest.raises(ValueError):
        _core.Settings("localhost:8002")


def test_bearer_key_goes_to_the_server_only() -> None:
    rec = Recorder({"status": "healthy"})
    with client_for(rec, api_key="secret") as client:
        client.health()
        assert rec.last.headers["authorization"] == "Bearer secret"
        client._http.get("http://elsewhere.test/x")
        assert "authorization" not in rec.last.headers


def test_sync_and_async_clients_have_the_same_api() -> None:
    def api(cls: type) -> dict[str, list[str]]:
        return {
            name: list(inspect.signature(fn).parameters)
            for name, fn in inspect.getmembers(cls, inspect.isfunction)
            if not name.startswith("_") and name not in ("close", "aclose")
        }

    assert api(VisualizrClient) == api(AsyncVisualizrClient)
    assert inspect.isasyncgenfunction(AsyncVisualizrClient.stream_progress)
    assert inspect.isgeneratorfunction(VisualizrClient.stream_progress)


# --- parsing ----------------------------------------------------------------------------------------------

COMPLETED = {
    "request_id": "video_req_123",
    "status": "completed",
    "progress": 100,
    "result": {
        "video_url": "/assets/video/video_123.mp4",
        "thumbnail_url": "/assets/video/video_123_thumb.jpg",
        "preview_gif_url": "/assets/video/video_123_preview.gif",
        "metadata": {
            "duration_seconds": 3.0,
            "fps": 24,
            "resolution": "1024x1024",
            "file_size_bytes": 2048576,
            "format": "mp4",
            "codec": "h264",
            "num_frames": 72,
            "something_new": True,
        },
    },
    "created_at": "2024-01-15T10:30:00Z",
    "completed_at": "2024-01-15T10:30:35Z",
    "processing_time_seconds": 35,
    "a_future_field": {"x": 1},
}
FAILED = {
    "request_id": "video_req_123",
    "status": "failed",
    "error": {"code": "GENERATION_FAILED", "message": "boom", "details": "The prompt contains unsupported content"},
    "created_at": "2024-01-15T10:30:00Z",
    "failed_at": "2024-01-15T10:30:15Z",
}


def test_status_shapes_parse_and_tolerate_extra_fields() -> None:
    done = msgspec.json.decode(json.dumps(COMPLETED), type=m.GenerationStatus)
    assert done.is_terminal and done.result is not None and done.result.metadata is not None
    assert done.result.metadata.fps == 24 and done.result.metadata.num_frames == 72
    assert done.processing_time_seconds == 35
    failed = msgspec.json.decode(json.dumps(FAILED), type=m.GenerationStatus)
    assert failed.error == m.ErrorInfo("GENERATION_FAILED", "boom", "The prompt contains unsupported content")
    queued = msgspec.convert(
        {"request_id": "r", "status": "queued", "progress": 0, "current_step": "queued", "queue_position": 3},
        m.GenerationStatus,
    )
    assert not queued.is_terminal and queued.queue_position == 3 and queued.result is None
    assert "a_future_field" not in done.to_dict() and done.to_dict()["result"]["metadata"]["codec"] == "h264"


def test_wrong_shaped_success_body_is_an_unexpected_response() -> None:
    handler: Handler = lambda r: httpx.Response(200, json={"nothing": 1})  # noqa: E731
    with client_for(handler) as client, pytest.raises(UnexpectedResponseError) as info:
        client.get_status("r")
    assert info.value.status == 200 and "GenerationStatus" in info.value.message


# Each "**Response" JSON block of the spec, by section heading, parsed by the SDK's type for it.
SPEC_SECTIONS: dict[str, type] = {
    "Generate Video from Text": m.GenerationAccepted,
    "Get Generation Status": m.GenerationStatus,
    "Cancel Generation": m.CancelResult,
    "List Available Models": m.ModelList,
    "Get Model Details": m.ModelDetail,
    "Load Model": m.ModelLoadResult,
    "Unload Model": m.ModelUnloadResult,
    "List Generated Videos": m.VideoList,
    "Get Video Details": m.VideoDetail,
    "Delete Video": m.VideoDeleteResult,
    "Health Check": m.HealthStatus,
    "System Metrics": m.Metrics,
}


def spec_response_blocks() -> Iterator[tuple[str, str]]:
    """(heading, JSON text) of every response example in the spec."""
    text = spec_text()
    for section in re.split(r"^### ", text, flags=re.M)[1:]:
        heading = section.splitlines()[0].strip()
        for match in re.finditer(r"\*\*Response[^\n]*\n```json\n(.*?)```", section, flags=re.S):
            yield heading, match.group(1)


def test_every_response_example_of_the_spec_parses() -> None:
    seen = set()
    for heading, block in spec_response_blocks():
        if heading not in SPEC_SECTIONS:
            continue
        seen.add(heading)
        value = msgspec.json.decode(block, type=SPEC_SECTIONS[heading])
        assert msgspec.to_builtins(value)
    assert seen == set(SPEC_SECTIONS)


def test_spec_websocket_examples_parse() -> None:
    text = spec_text()
    section = text[text.index("### WebSocket Message Types") :]
    blocks = re.findall(r"```json\n(.*?)```", section, flags=re.S)
    messages = [_core.parse_ws_message(b, "video_req_123") for b in blocks]
    assert [type(x) for x in messages] == [type(None), m.ProgressMessage, m.CompletedMessage]  # subscribe: ignored


# --- error mapping ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (400, "INVALID_PROMPT", InvalidPromptError),
        (400, "INVALID_PARAMETERS", InvalidParametersError),
        (404, "MODEL_NOT_FOUND", ModelNotFoundError),
        (404, "REQUEST_NOT_FOUND", RequestNotFoundError),
        (507, "INSUFFICIENT_GPU_MEMORY", InsufficientGpuMemoryError),
        (507, "INSUFFICIENT_STORAGE", InsufficientStorageError),
        (409, "IDEMPOTENCY_KEY_REUSED", IdempotencyKeyReusedError),
        (404, "ROUTE_NOT_FOUND", RouteNotFoundError),
        (500, "MODEL_LOAD_FAILED", ModelLoadFailedError),
        (500, "GENERATION_FAILED", GenerationFailedError),
        (503, "QUEUE_FULL", QueueFullError),
        (401, "UNAUTHORIZED", AuthenticationError),
        (401, "INVALID_PARAMETERS", AuthenticationError),
        (403, "FORBIDDEN", AuthenticationError),
        (418, "TEAPOT", VisualizrAPIError),
    ],
)
def test_error_codes_map_to_classes(status: int, code: str, cls: type) -> None:
    exc = error_from_response(status, {}, json.dumps(err_body(code, "msg", {"field": "x"})).encode())
    assert type(exc) is cls
    assert (exc.status, exc.code, exc.message, exc.details) == (status, code, "msg", {"field": "x"})
    assert code in str(exc) and "msg" in str(exc)


def test_queue_full_carries_retry_after() -> None:
    body = json.dumps(err_body("QUEUE_FULL", "full", {"retry_after_seconds": 9})).encode()
    assert error_from_response(503, httpx.Headers({"Retry-After": "4"}), body).retry_after == 4
    assert error_from_response(503, {}, body).retry_after == 9


def test_non_spec_error_bodies_still_map_by_status() -> None:
    exc = error_from_response(404, {}, b"<html>Not Found</html>")
    assert isinstance(exc, VisualizrAPIError) and exc.status == 404 and exc.code == "HTTP_404"
    assert "Not Found" in exc.message
    assert isinstance(error_from_response(401, {}, b""), AuthenticationError)
    assert isinstance(error_from_response(503, {}, b"busy"), QueueFullError)


def test_errors_raise_from_the_client() -> None:
    rec = Recorder(err_body("INVALID_PROMPT", "Prompt must not be empty", {"field": "prompt"}), status=400)
    with client_for(rec) as client, pytest.raises(InvalidPromptError) as info:
        client.generate_video("   ")
    assert info.value.details == {"field": "prompt"}


def test_transport_failures_are_connection_errors() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with client_for(refuse) as client, pytest.raises(VisualizrConnectionError):
        client.health()


# --- waiting ----------------------------------------------------------------------------------------------


def sequence(*bodies: dict[str, Any]) -> Handler:
    items = list(bodies)

    def handler(request: httpx.Request) -> httpx.Response:
        body = items.pop(0) if len(items) > 1 else items[0]
        return httpx.Response(200, json=body)

    return handler


RUNNING = {"request_id": "video_req_123", "status": "processing", "progress": 40, "current_step": "frame_generation"}
CANCELLED = {"request_id": "video_req_123", "status": "cancelled", "progress": 10, "cancelled_at": "x"}


def test_wait_returns_the_completed_status() -> None:
    with client_for(sequence(RUNNING, RUNNING, COMPLETED)) as client:
        done = client.wait_for_completion("video_req_123", timeout=5, poll_interval=0.001)
    assert done.status == "completed" and done.result is not None


def test_wait_raises_on_failed_with_the_error_object() -> None:
    with client_for(sequence(RUNNING, FAILED)) as client, pytest.raises(GenerationFailedError) as info:
        client.wait_for_completion("video_req_123", poll_interval=0.001)
    assert info.value.error == m.ErrorInfo("GENERATION_FAILED", "boom", "The prompt contains unsupported content")
    assert info.value.job is not None and info.value.job.failed_at == FAILED["failed_at"]
    assert info.value.status is None


def test_wait_raises_on_cancelled_and_on_timeout() -> None:
    with client_for(sequence(CANCELLED)) as client, pytest.raises(GenerationCancelledError):
        client.wait_for_completion("video_req_123", poll_interval=0.001)
    with client_for(sequence(RUNNING)) as client, pytest.raises(TimeoutError):
        client.wait_for_completion("video_req_123", timeout=0.05, poll_interval=0.01)


def test_async_client_waits_and_maps_errors() -> None:
    async def scenario() -> None:
        async with async_client_for(sequence(RUNNING, COMPLETED)) as client:
            done = await client.wait_for_completion("video_req_123", poll_interval=0.001)
            assert done.result is not None and done.result.video_url.endswith(".mp4")
        async with async_client_for(sequence(FAILED)) as client:
            with pytest.raises(GenerationFailedError):
                await client.wait_for_completion("video_req_123", poll_interval=0.001)
        rec = Recorder(err_body("MODEL_NOT_FOUND"), status=404)
        async with async_client_for(rec) as client:
            with pytest.raises(ModelNotFoundError):
                await client.generate_video("x", model="nope")
        async with async_client_for(sequence(RUNNING)) as client:
            with pytest.raises(TimeoutError):
                await client.wait_for_completion("video_req_123", timeout=0.03, poll_interval=0.01)

    asyncio.run(scenario())


# --- WebSocket messages -----------------------------------------------------------------------------------


def test_ws_messages_parse_filter_and_raise() -> None:
    rid = "video_req_1"
    progress = _core.parse_ws_message(
        json.dumps({"type": "progress", "request_id": rid, "status": "queued", "progress": 0, "queue_position": 2}),
        rid,
    )
    assert isinstance(progress, m.ProgressMessage) and progress.queue_position == 2
    assert not _core.is_terminal(progress)
    completed = {"type": "completed", "request_id": rid, "result": COMPLETED["result"]}
    done = _core.parse_ws_message(json.dumps(completed), rid)
    assert isinstance(done, m.CompletedMessage) and _core.is_terminal(done)
    failed = _core.parse_ws_message(json.dumps({"type": "failed", "request_id": rid, "error": FAILED["error"]}), rid)
    assert isinstance(failed, m.FailedMessage) and failed.error is not None and failed.error.message == "boom"
    assert _core.parse_ws_message(json.dumps({"type": "progress", "request_id": "other", "progress": 1}), rid) is None
    assert _core.parse_ws_message(json.dumps({"type": "pong"}), rid) is None
    assert _core.parse_ws_message("not json", rid) is None
    with pytest.raises(RequestNotFoundError):
        _core.parse_ws_message(json.dumps({"type": "error", "request_id": rid, **err_body("REQUEST_NOT_FOUND")}), rid)


@pytest.fixture
def ws_server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local WebSocket server playing the spec's protocol: answers a subscribe with progress then completion,
    recording the handshake headers and the client's messages."""
    seen: list[dict[str, Any]] = []

    def handler(ws: ServerConnection) -> None:
        subscribe = json.loads(ws.recv())
        seen.append({"authorization": ws.request.headers.get("Authorization"), "message": subscribe})
        rid = subscribe["request_id"]
        ws.send(json.dumps({"type": "progress", "request_id": "someone_else", "progress": 1}))
        for pct in (10, 60):
            ws.send(json.dumps({"type": "progress", "request_id": rid, "status": "processing", "progress": pct}))
        ws.send(json.dumps({"type": "completed", "request_id": rid, "result": {"video_url": "/assets/video/x.mp4"}}))
        with pytest.raises(Exception):  # noqa: B017, PT011 - the client hangs up after the terminal message
            ws.recv(timeout=5)

    with serve(handler, "127.0.0.1", 0) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        host, port = server.socket.getsockname()[:2]
        yield f"http://{host}:{port}", seen
        server.shutdown()
        thread.join(5)


def test_stream_progress_sync_and_async_with_bearer_on_the_handshake(
    ws_server: tuple[str, list[dict[str, Any]]],
) -> None:
    url, seen = ws_server
    with VisualizrClient(url, api_key="k1") as client:
        messages = list(client.stream_progress("video_req_9", timeout=10))
    assert [type(x).__name__ for x in messages] == ["ProgressMessage", "ProgressMessage", "CompletedMessage"]
    assert [x.progress for x in messages[:2]] == [10, 60]  # type: ignore[union-attr]

    async def scenario() -> list[m.StreamMessage]:
        async with AsyncVisualizrClient(url, api_key="k2") as client:
            return [x async for x in client.stream_progress("video_req_9", timeout=10)]

    assert [type(x) for x in asyncio.run(scenario())] == [type(x) for x in messages]
    assert [s["message"] for s in seen] == [{"type": "subscribe", "request_id": "video_req_9"}] * 2
    assert [s["authorization"] for s in seen] == ["Bearer k1", "Bearer k2"]


@pytest.fixture
def rejecting_ws_server() -> Iterator[str]:
    """Answers the handshake with HTTP 401 and the error body unless the path is /close, where it accepts and
    closes with code 4401 (the two ways the server refuses a socket without a valid key)."""

    def process_request(connection: ServerConnection, request: Request) -> Response | None:
        if request.path.startswith("/close"):
            return None
        body = json.dumps(err_body("UNAUTHORIZED", "A valid API key is required")).encode()
        headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return Response(401, "Unauthorized", headers, body)

    def handler(ws: ServerConnection) -> None:
        ws.close(4401, "The API key is not valid")

    with serve(handler, "127.0.0.1", 0, process_request=process_request) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        host, port = server.socket.getsockname()[:2]
        yield f"http://{host}:{port}"
        server.shutdown()
        thread.join(5)


def test_stream_progress_refused_handshakes_are_authentication_errors(rejecting_ws_server: str) -> None:
    with VisualizrClient(rejecting_ws_server) as client, pytest.raises(AuthenticationError) as info:
        list(client.stream_progress("video_req_1", timeout=10))
    assert info.value.status == 401 and info.value.message == "A valid API key is required"
    closing = VisualizrClient(rejecting_ws_server + "/close", api_key="bad")
    with closing, pytest.raises(AuthenticationError) as closed:
        list(closing.stream_progress("video_req_1", timeout=10))
    assert closed.value.message == "The API key is not valid"

    async def scenario() -> None:
        async with AsyncVisualizrClient(rejecting_ws_server) as client:
            async for _ in client.stream_progress("video_req_1", timeout=10):
                pass

    with pytest.raises(AuthenticationError):
        asyncio.run(scenario())


def test_stream_progress_unreachable_is_a_connection_error() -> None:
    with VisualizrClient("http://127.0.0.1:9", timeout=2) as client, pytest.raises(VisualizrConnectionError):
        list(client.stream_progress("video_req_1"))


# --- downloads --------------------------------------------------------------------------------------------


PAYLOAD = b"\x00\x00\x00\x18ftypmp42" * 20_000  # several stream chunks


def files_handler(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/assets/video/clip.mp4":
        return httpx.Response(200, content=PAYLOAD, headers={"content-type": "video/mp4"})
    return httpx.Response(404, json=err_body("REQUEST_NOT_FOUND", "Resource not found"))


def test_download_streams_to_a_file_or_into_a_directory(tmp_path: Path) -> None:
    with client_for(files_handler) as client:
        path = client.download("/assets/video/clip.mp4", tmp_path / "sub" / "out.mp4")
        assert path == tmp_path / "sub" / "out.mp4" and path.stat().st_size == len(PAYLOAD)
        assert client.download(f"{BASE}/assets/video/clip.mp4", tmp_path) == tmp_path / "clip.mp4"
        with pytest.raises(RequestNotFoundError):
            client.download("/assets/video/missing.mp4", tmp_path / "missing.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "sub"]  # no partial file left


def test_async_download(tmp_path: Path) -> None:
    async def scenario() -> Path:
        async with async_client_for(files_handler) as client:
            return await client.download("/assets/video/clip.mp4", tmp_path / "a.mp4")

    assert asyncio.run(scenario()).stat().st_size == len(PAYLOAD)


# --- CLI --------------------------------------------------------------------------------------------------


def test_progress_bar_rendering() -> None:
    assert ProgressBar.render(50, "frame_generation", 12.4, width=10) == "[#####-----]  50% frame_generation ~12s left"
    assert ProgressBar.render(100, "done", 3, width=4) == "[####] 100% done"
    stream = io.StringIO()
    bar = ProgressBar(stream, width=4)
    for pct in (0, 1, 2, 15, 15, 100):
        bar.update(pct, "step")
    assert stream.getvalue().count("\n") == 3  # not a terminal: one line per 10 % bucket / step


@pytest.fixture
def mock_cli(monkeypatch: pytest.MonkeyPatch) -> Callable[[Handler], None]:
    def install(handler: Handler) -> None:
        real = cli.VisualizrClient

        def factory(*args: Any, **kwargs: Any) -> VisualizrClient:
            return real(*args, transport=httpx.MockTransport(handler), **kwargs)

        monkeypatch.setattr(cli, "VisualizrClient", factory)

    return install


def test_cli_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert cli.main(["generate"]) == 2
    assert cli.main(["generate", "x", "--frames", "many"]) == 2
    assert cli.main(["--url", "not-a-url", "health"]) == 2
    assert cli.main(["--help"]) == 0
    assert "generate" in capsys.readouterr().out


def test_cli_api_error_exits_1_with_message(
    mock_cli: Callable[[Handler], None], capsys: pytest.CaptureFixture[str]
) -> None:
    mock_cli(Recorder(err_body("REQUEST_NOT_FOUND", "Generation request 'x' not found", {"request_id": "x"}), 404))
    assert cli.main(["status", "x"]) == 1
    err = capsys.readouterr().err
    assert "REQUEST_NOT_FOUND" in err and "not found" in err and '"request_id":"x"' in err


def test_cli_reads_url_and_key_from_the_environment(
    mock_cli: Callable[[Handler], None], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = Recorder({"status": "healthy", "version": "0.1.0"})
    mock_cli(rec)
    monkeypatch.setenv("VISUALIZR_URL", "http://env-host:1234")
    monkeypatch.setenv("VISUALIZR_API_KEY", "envkey")
    assert cli.main(["health"]) == 0
    assert str(rec.last.url) == "http://env-host:1234/api/v1/health"
    assert rec.last.headers["authorization"] == "Bearer envkey"
    assert json.loads(capsys.readouterr().out)["status"] == "healthy"


def test_cli_generate_polls_when_the_websocket_fails(
    mock_cli: Callable[[Handler], None], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    statuses = [RUNNING, {**COMPLETED, "result": {**COMPLETED["result"], "video_url": "/assets/video/clip.mp4"}}]
    bodies: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            bodies.append(json.loads(request.content))
            return httpx.Response(202, json={"request_id": "video_req_123", "status": "queued"})
        if request.url.path.startswith("/api/v1/generate/status/"):
            return httpx.Response(200, json=statuses.pop(0) if len(statuses) > 1 else statuses[0])
        return files_handler(request)

    mock_cli(handler)
    out_file = tmp_path / "clip.mp4"
    argv = ["--url", "http://127.0.0.1:9", "generate", "a cat", "--out", str(out_file), "--frames", "4", "--fps", "4"]
    assert cli.main([*argv, "--width", "64", "--steps", "2", "--seed", "1", "--poll-interval", "0.01", "--json"]) == 0
    captured = capsys.readouterr()
    assert bodies == [{"prompt": "a cat", "num_frames": 4, "fps": 4, "width": 64, "num_inference_steps": 2, "seed": 1}]
    final = json.loads(captured.out)  # --json: one object, nothing else
    assert final["request_id"] == "video_req_123"
    assert final["output"] == str(out_file) and final["bytes"] == len(PAYLOAD) and final["metadata"]["codec"] == "h264"
    assert "polling instead" in captured.err and "100%" in captured.err
    assert out_file.stat().st_size == len(PAYLOAD)


def test_cli_generate_failed_job_exits_1(
    mock_cli: Callable[[Handler], None], capsys: pytest.CaptureFixture[str]
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(202, json={"request_id": "video_req_123", "status": "queued"})
        return httpx.Response(200, json=FAILED)

    mock_cli(handler)
    assert cli.main(["--url", "http://127.0.0.1:9", "generate", "x", "--no-websocket"]) == 1
    assert "GENERATION_FAILED: boom" in capsys.readouterr().err
