"""Asset management end to end on the real stack (tritonserver + `python -m visualizr.frontend` under uvicorn): a real
generation is listed, described from its file, served with byte ranges over real HTTP, and deleted."""

from __future__ import annotations

import io
import socket
from typing import Any
from urllib.parse import urlsplit

import av
import httpx
import pytest

from benchmarks.stack import ApiProcess
from tests.support.jobs import SMALL, submit, wait_terminal

pytestmark = pytest.mark.integration

VIDEOS = "/api/v1/assets/videos"


def get(api: ApiProcess, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.get(f"{api.base_url}{path}", timeout=30, **kwargs)


def raw_get(api: ApiProcess, target: str) -> bytes:
    """One HTTP/1.1 request with the target sent byte for byte (httpx would normalise `..`)."""
    url = urlsplit(api.base_url)
    with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {url.netloc}\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture(scope="module")
def generated(api: ApiProcess) -> dict[str, Any]:
    """One completed small job: (its status body, its video id)."""
    accepted = submit(api, prompt="assets end to end", negative_prompt="noise", seed=11, **SMALL)
    final = wait_terminal(api, accepted["request_id"])
    assert final["status"] == "completed", final
    final["video_id"] = "video_" + final["request_id"].removeprefix("video_req_")
    return final


def test_listed_and_described_from_the_file(api: ApiProcess, generated: dict[str, Any]) -> None:
    vid = generated["video_id"]
    listing = get(api, VIDEOS, params={"limit": 100})
    assert listing.status_code == 200, listing.text
    body = listing.json()
    listed = next(v for v in body["videos"] if v["id"] == vid)
    assert listed["url"] == generated["result"]["video_url"]
    assert listed["thumbnail_url"] == generated["result"]["thumbnail_url"]
    assert listed["created_at"] == generated["completed_at"]
    assert listed["metadata"]["resolution"] == "64x64" and listed["metadata"]["fps"] == SMALL["fps"]
    assert body["total_count"] >= 1
    assert vid in [v["id"] for v in get(api, VIDEOS, params={"model": listed["model"], "limit": 100}).json()["videos"]]
    assert get(api, VIDEOS, params={"start_date": "2999-01-01T00:00:00Z"}).json()["total_count"] == 0
    assert get(api, VIDEOS, params={"limit": "1000"}).status_code == 400

    details = get(api, f"{VIDEOS}/{vid}")
    assert details.status_code == 200, details.text
    info = details.json()
    assert info["preview_gif_url"] == generated["result"]["preview_gif_url"]
    assert info["prompt"] == "assets end to end" and info["negative_prompt"] == "noise"
    expected = {k: SMALL[k] for k in ("width", "height", "num_frames", "fps", "guidance_scale", "num_inference_steps")}
    assert info["parameters"] == {**expected, "seed": 11}
    size = int(httpx.head(f"{api.base_url}{info['url']}", timeout=30).headers["content-length"])
    meta = info["metadata"]
    assert meta["file_size_bytes"] == size and meta["format"] == "mp4" and meta["codec"] == "h264"
    assert meta["duration_seconds"] == pytest.approx(SMALL["num_frames"] / SMALL["fps"], abs=0.01)
    assert meta["bitrate_kbps"] == round(size * 8 / meta["duration_seconds"] / 1000)
    assert info["generation_info"]["request_id"] == generated["request_id"]
    assert info["generation_info"]["processing_time_seconds"] > 0


def test_byte_ranges_over_real_http(api: ApiProcess, generated: dict[str, Any]) -> None:
    url = generated["result"]["video_url"]
    whole = get(api, url)
    assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes"
    data = whole.content
    size = len(data)

    first = get(api, url, headers={"Range": "bytes=0-99"})
    assert first.status_code == 206 and first.content == data[:100]
    assert first.headers["content-range"] == f"bytes 0-99/{size}" and first.headers["content-type"] == "video/mp4"
    tail = get(api, url, headers={"Range": "bytes=-64"})
    assert tail.status_code == 206 and tail.content == data[-64:]
    rest = get(api, url, headers={"Range": "bytes=100-"})
    assert rest.status_code == 206 and first.content + rest.content == data
    with av.open(io.BytesIO(first.content + rest.content)) as container:  # reassembled ranges still play
        assert sum(1 for _ in container.decode(video=0)) == SMALL["num_frames"]

    beyond = get(api, url, headers={"Range": f"bytes={size}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{size}"
    assert beyond.json()["error"]["code"] == "INVALID_PARAMETERS"
    assert get(api, url, headers={"If-None-Match": whole.headers["etag"]}).status_code == 304

    for target in ("../../jobs.sqlite3", "%2e%2e/%2e%2e/jobs.sqlite3", "..%2fjobs.sqlite3", "%2e%2e%2fjobs.sqlite3"):
        response = raw_get(api, "/assets/video/" + target)
        assert response.startswith(b"HTTP/1.1 404") or response.startswith(b"HTTP/1.1 400"), response[:200]
        assert b"SQLite format" not in response


def test_delete_removes_files_and_record(api: ApiProcess) -> None:
    final = wait_terminal(api, submit(api, prompt="to be deleted", seed=5, **SMALL)["request_id"])
    assert final["status"] == "completed", final
    vid = "video_" + final["request_id"].removeprefix("video_req_")
    urls = [final["result"][key] for key in ("video_url", "thumbnail_url", "preview_gif_url")]
    sizes = sum(len(get(api, u).content) for u in urls)

    response = httpx.delete(f"{api.base_url}{VIDEOS}/{vid}", timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["video_id"] == vid and body["status"] == "deleted" and body["freed_space_bytes"] == sizes
    assert body["deleted_at"].endswith("Z")
    assert all(get(api, u).status_code == 404 for u in urls)
    assert get(api, f"{VIDEOS}/{vid}").json()["error"]["code"] == "REQUEST_NOT_FOUND"
    assert vid not in [v["id"] for v in get(api, VIDEOS, params={"limit": 100}).json()["videos"]]
    assert httpx.delete(f"{api.base_url}{VIDEOS}/{vid}", timeout=30).status_code == 404
