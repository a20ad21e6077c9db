"""API keys: Bearer header on every route but the exempt ones, 401 UNAUTHORIZED, WebSocket before accept."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.exceptions import WebSocketDisconnect
from litestar.testing import TestClient

from tests.support.fakes import FakeBackend, make_settings
from tests.support.system_fakes import FakeGpu, FakeModelControl
from visualizr.frontend.app import create_app
from visualizr.frontend.security import WS_UNAUTHORIZED_CLOSE_CODE, key_matches, presented_key
from visualizr.settings import Settings

KEYS = ("key-one-0123456789", "key-two-abcdef")
WS = "/api/v1/ws/generation"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(
        make_settings(tmp_path, api_keys=KEYS),
        backend=FakeBackend(),
        model_control=FakeModelControl(),
        gpu=FakeGpu(),
    )
    with TestClient(app, timeout=10) as test_client:
        yield test_client


def assert_unauthorized(response, reason: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 401, response.text
    assert response.json() == {
        "error": {"code": "UNAUTHORIZED", "message": response.json()["error"]["message"], "details": {"reason": reason}}
    }
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("method", "path", "with_key"),
    [
        ("GET", "/api/v1/models", 200),
        ("GET", "/api/v1/models/animatediff", 200),
        ("POST", "/api/v1/models/animatediff/load", 200),
        ("POST", "/api/v1/generate/video", 400),  # past the key check: the empty body is refused
        ("GET", "/api/v1/generate/status/video_req_x", 404),
        ("DELETE", "/api/v1/generate/video_req_x", 404),
        ("GET", "/api/v1/metrics", 200),
        ("GET", "/metrics", 200),
        ("GET", "/assets/video/video_x.mp4", 404),
    ],
)
def test_protected_routes_need_a_key(client: TestClient, method: str, path: str, with_key: int) -> None:
    assert_unauthorized(client.request(method, path), "missing api key")
    assert_unauthorized(client.request(method, path, headers=bearer("wrong")), "invalid api key")
    assert_unauthorized(client.request(method, path, headers={"Authorization": f"Basic {KEYS[0]}"}), "missing api key")
    for key in KEYS:
        assert client.request(method, path, headers=bearer(key)).status_code == with_key


def test_health_and_schema_are_open(client: TestClient) -> None:
    assert client.get("/api/v1/health").status_code == 200
    assert client.get("/schema/openapi.json").status_code == 200
    assert client.get("/schema/swagger").status_code == 200


def test_query_key_only_where_browsers_cannot_send_headers(client: TestClient) -> None:
    # <video src="/assets/...?api_key=..."> works (404: the file does not exist, but the key was accepted)
    assert client.get(f"/assets/video/none.mp4?api_key={KEYS[1]}").status_code == 404
    assert_unauthorized(client.get("/assets/video/none.mp4?api_key=wrong"), "invalid api key")
    # elsewhere the key must come in the header
    assert_unauthorized(client.get(f"/api/v1/models?api_key={KEYS[0]}"), "missing api key")


def test_a_real_generation_with_the_key(client: TestClient) -> None:
    response = client.post("/api/v1/generate/video", json={"prompt": "authorised"}, headers=bearer(KEYS[0]))
    assert response.status_code == 202, response.text


def test_websocket_without_key_is_rejected_before_accept(client: TestClient) -> None:
    with pytest.raises(WebSocketDisconnect) as raised, client.websocket_connect(WS):
        pass
    assert raised.value.code == WS_UNAUTHORIZED_CLOSE_CODE
    with pytest.raises(WebSocketDisconnect), client.websocket_connect(f"{WS}?api_key=wrong"):
        pass


@pytest.mark.parametrize("how", ["header", "query"])
def test_websocket_with_key(client: TestClient, how: str) -> None:
    url, headers = (WS, bearer(KEYS[0])) if how == "header" else (f"{WS}?api_key={KEYS[0]}", {})
    with client.websocket_connect(url, headers=headers) as ws:
        ws.send_text('{"type": "subscribe", "request_id": "video_req_none"}')
        assert ws.receive_json()["error"]["code"] == "REQUEST_NOT_FOUND"


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.mark.parametrize(("host", "warned"), [("127.0.0.1", False), ("0.0.0.0", True)])
def test_open_without_keys_warns_unless_on_loopback(tmp_path: Path, host: str, warned: bool) -> None:
    # Litestar's logging config replaces the root handlers (caplog's too): listen on the logger itself
    handler, logger = _Records(), logging.getLogger("visualizr.frontend.security")
    logger.addHandler(handler)
    try:
        app = create_app(
            make_settings(tmp_path, host=host), backend=FakeBackend(), model_control=FakeModelControl(), gpu=FakeGpu()
        )
        with TestClient(app, timeout=10) as client:
            assert client.get("/api/v1/models").status_code == 200
            assert client.get("/metrics").status_code == 200
    finally:
        logger.removeHandler(handler)
    assert any("OPEN" in r.getMessage() and host in r.getMessage() for r in handler.records) == warned


@pytest.mark.parametrize(
    ("env", "host"),
    [
        ({}, "127.0.0.1"),
        ({"VISUALIZR_API_KEYS": "k1"}, "0.0.0.0"),
        ({"VISUALIZR_HOST": "0.0.0.0"}, "0.0.0.0"),
        ({"VISUALIZR_API_KEYS": "k1", "VISUALIZR_HOST": "10.1.2.3"}, "10.1.2.3"),
    ],
)
def test_the_api_binds_to_loopback_unless_keys_are_set_or_a_host_is_named(env: dict[str, str], host: str) -> None:
    assert Settings.from_env(env).host == host


def test_key_helpers() -> None:
    assert key_matches("b", ("a", "b", "c")) and not key_matches("d", ("a", "b")) and not key_matches("", ())
    scope = {"type": "http", "path": "/x", "headers": [(b"authorization", b"bearer  tok ")], "query_string": b""}
    assert presented_key(scope) == "tok"  # type: ignore[arg-type]
    scope = {"type": "websocket", "path": WS, "headers": [], "query_string": b"api_key=k%2B1"}
    assert presented_key(scope) == "k+1"  # type: ignore[arg-type]
