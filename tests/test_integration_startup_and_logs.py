"""Real processes: an unusable data folder stops `python -m visualizr.frontend` and `python -m visualizr.serve` with
one line on stderr and no traceback; an API key sent as ``?api_key=`` (WebSocket, /assets/, anywhere) and a studio
ticket (``?ticket=``) never reach the log at info level, under either entry point."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from benchmarks.stack import stack_settings
from tests.support.serve import start_serve
from tests.support.stack import start_sibling_api
from visualizr.frontend.paths import WS_PATH
from visualizr.launcher import TritonServer
from visualizr.settings import Settings

pytestmark = pytest.mark.integration

SECRET = "sk-visualizr-test-4f1c9e7a"
NEAR_MISS = SECRET + "x"  # a wrong key is as secret as a right one: it is usually a typo of one


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """``folder`` made read-only for this process, even as root (which ignores permission bits): chattr +i."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folder)]).returncode != 0:
        pytest.skip("running as root without a working chattr: no way to make a folder read-only for root")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def file_as_data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.write_text("I am a file")
    return path


def below_a_file(tmp_path: Path) -> Path:
    return file_as_data_dir(tmp_path) / "nested"


def corrupt_database(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    (path / "jobs.sqlite3").write_bytes(b"not a database " * 512)
    return path


DATA_DIRS: dict[str, Callable[[Path], Path]] = {
    "file": file_as_data_dir,
    "below-a-file": below_a_file,
    "corrupt-database": corrupt_database,
}
ENTRY_POINTS = ("visualizr.frontend", "visualizr.serve")


def start_with(module: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    _, env = stack_settings(data_dir)
    return subprocess.run(
        [sys.executable, "-m", module], env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )


def assert_one_line(done: subprocess.CompletedProcess[str], data_dir: Path) -> None:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith("visualizr: ") and str(data_dir) in lines[0], lines


@pytest.mark.parametrize("module", ENTRY_POINTS)
@pytest.mark.parametrize("kind", sorted(DATA_DIRS))
def test_unusable_data_dir_stops_with_one_line(tmp_path: Path, module: str, kind: str) -> None:
    data_dir = DATA_DIRS[kind](tmp_path)
    assert_one_line(start_with(module, data_dir), data_dir)


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_read_only_data_dir_stops_with_one_line(tmp_path: Path, module: str) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with read_only(data_dir):
        done = start_with(module, data_dir)
    assert_one_line(done, data_dir)
    assert "not usable" in done.stderr


# ---------------------------------------------------------------------------------------------- API keys in logs


async def _websockets(base_url: str) -> None:
    ws_url = base_url.replace("http", "ws", 1) + WS_PATH
    async with websockets.connect(f"{ws_url}?api_key={SECRET}") as ws:
        await ws.send('{"type": "subscribe", "request_id": "video_req_00000000000000000000000000000000"}')
        await asyncio.wait_for(ws.recv(), 30)
    for query in (f"?api_key={NEAR_MISS}", f"?x=1&api_key={SECRET}x&y=2"):
        with pytest.raises(websockets.InvalidStatus):
            async with websockets.connect(ws_url + query):
                pass


async def _ticketed_websocket(ws_url: str) -> None:
    async with websockets.connect(ws_url) as ws:
        await ws.send('{"type": "subscribe", "request_id": "video_req_00000000000000000000000000000000"}')
        await asyncio.wait_for(ws.recv(), 30)


def use_keys_in_queries(base_url: str) -> list[str]:
    """Every way a key (or a studio ticket) can sit in a URL the API logs: accepted and refused, WebSocket and
    HTTP. Returns the secrets used."""
    asyncio.run(_websockets(base_url))
    with httpx.Client(base_url=base_url, timeout=30) as client:
        asset, headers = f"/assets/video/video_{0:032x}.mp4", {"Authorization": f"Bearer {SECRET}"}
        paths = {"paths": [asset, WS_PATH]}
        tickets = client.post("/studio/tickets", json=paths, headers=headers).json()["tickets"]
        assert client.get(f"{asset}?ticket={tickets[asset]}").status_code == 404
        ws_url = base_url.replace("http", "ws", 1) + WS_PATH
        asyncio.run(_ticketed_websocket(f"{ws_url}?ticket={tickets[WS_PATH]}"))
        assert client.get(f"/assets/video/none.mp4?api_key={SECRET}").status_code == 404
        assert client.get(f"/assets/video/none.mp4?v=1&api_key={NEAR_MISS}").status_code == 401
        assert client.get(f"/api/v1/health?api_key={SECRET}").status_code in (200, 503)
        assert client.get(f"/api/v1/models?api_key={SECRET}").status_code == 401  # only where browsers need it
        assert client.get("/api/v1/models", headers=headers).status_code == 200
    return [SECRET, *tickets.values()]


def assert_no_secret_in(log: str, secrets: list[str]) -> None:
    # the requests above were logged, keys cut out (at info level a successful GET is not in the access log)
    assert log.count("api_key=REDACTED") >= 6, log[-4000:]
    assert log.count("ticket=REDACTED") >= 2, log[-4000:]
    for secret in secrets:
        assert secret not in log, [line for line in log.splitlines() if secret in line]


def test_api_keys_never_reach_the_api_log(
    triton: TritonServer, stack_env: tuple[Settings, dict[str, str]], tmp_path: Path
) -> None:
    _, env = stack_env
    api = start_sibling_api(env, tmp_path / "data", VISUALIZR_API_KEYS=SECRET, VISUALIZR_LOG_LEVEL="info")
    try:
        secrets = use_keys_in_queries(api.base_url)
    finally:
        api.stop()
    assert_no_secret_in(api.log_path.read_text(errors="replace"), secrets)


def test_api_keys_never_reach_the_serve_log(tmp_path: Path, model_repository: Path) -> None:
    serve = start_serve(tmp_path / "data", model_repository, VISUALIZR_API_KEYS=SECRET)
    try:
        secrets = use_keys_in_queries(serve.base_url)
    finally:
        assert serve.stop() == 0
    assert_no_secret_in(serve.log_path.read_text(errors="replace"), secrets)
