"""Asset management API and asset file serving, against the scripted fake backend (real PyAV encoding)."""

from __future__ import annotations

import os
import re
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.support.fakes import FakeBackend, make_settings, wait_for, wait_until
from visualizr.frontend.app import create_app
from visualizr.frontend.assets.filters import MAX_LIMIT, parse_list_query
from visualizr.frontend.assets.ranges import RangeNotSatisfiableError, byte_range, if_range_holds, not_modified
from visualizr.frontend.errors import InvalidParametersError

GENERATE = "/api/v1/generate/video"
VIDEOS = "/api/v1/assets/videos"
FILES = "/assets/video"
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
LISTED_KEYS = {"id", "url", "thumbnail_url", "prompt", "model", "metadata", "created_at"}
DETAIL_KEYS = LISTED_KEYS | {"preview_gif_url", "negative_prompt", "style", "parameters", "generation_info"}


def assets_dir(tmp_path: Path) -> Path:
    return tmp_path / "data/assets/video"


def video_id(request_id: str) -> str:
    return "video_" + request_id.removeprefix("video_req_")


def generate(client: TestClient, **body: Any) -> str:
    """Run one job to completion; returns its video id."""
    response = client.post(GENERATE, json={"prompt": "a cat", **body})
    assert response.status_code == 202, response.text
    rid = response.json()["request_id"]
    assert wait_for(client, rid, {"completed", "failed"})["status"] == "completed"
    return video_id(rid)


def set_completed_at(tmp_path: Path, vid: str, iso: str) -> float:
    ts = datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    with sqlite3.connect(tmp_path / "data/jobs.sqlite3") as db:
        db.execute(
            "UPDATE jobs SET completed_at = ? WHERE request_id = ?", (ts, "video_req_" + vid.removeprefix("video_"))
        )
    return ts


def error_of(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code, body
    return body["error"]


def ids(body: dict[str, Any]) -> list[str]:
    return [video["id"] for video in body["videos"]]


# ---------------------------------------------------------------------------------------------- list


@pytest.fixture
def three(client: TestClient, tmp_path: Path) -> list[str]:
    """Three completed videos with fixed creation times, oldest first."""
    vids = [generate(client, prompt=f"clip {i}", seed=i) for i in range(3)]
    times = ("2024-01-15T10:30:35Z", "2024-01-16T08:00:00Z", "2024-02-01T00:00:00Z")
    for vid, iso in zip(vids, times, strict=True):
        set_completed_at(tmp_path, vid, iso)
    return vids


def test_list_shape_and_newest_first(client: TestClient, three: list[str], tmp_path: Path) -> None:
    response = client.get(VIDEOS)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"videos", "total_count", "has_more"}
    assert body["total_count"] == 3 and body["has_more"] is False
    assert ids(body) == three[::-1]
    first = body["videos"][0]
    assert set(first) == LISTED_KEYS
    vid = three[2]
    assert first["url"] == f"{FILES}/{vid}.mp4" and first["thumbnail_url"] == f"{FILES}/{vid}_thumb.jpg"
    assert first["prompt"] == "clip 2" and first["model"] == "animatediff"
    assert first["created_at"] == "2024-02-01T00:00:00Z"
    assert first["metadata"] == {
        "duration_seconds": 0.75,
        "resolution": "64x48",
        "fps": 8,
        "file_size_bytes": (assets_dir(tmp_path) / f"{vid}.mp4").stat().st_size,
    }
    assert list(first) == ["id", "url", "thumbnail_url", "prompt", "model", "metadata", "created_at"]


def test_list_pagination(client: TestClient, three: list[str]) -> None:
    newest_first = three[::-1]
    page = client.get(VIDEOS, params={"limit": 2}).json()
    assert ids(page) == newest_first[:2] and page["total_count"] == 3 and page["has_more"] is True
    page = client.get(VIDEOS, params={"limit": 2, "offset": 2}).json()
    assert ids(page) == newest_first[2:] and page["has_more"] is False
    page = client.get(VIDEOS, params={"offset": 10}).json()
    assert page == {"videos": [], "total_count": 3, "has_more": False}
    assert ids(client.get(VIDEOS, params={"limit": MAX_LIMIT}).json()) == newest_first


def test_list_filters(client: TestClient, three: list[str]) -> None:
    def listed(**params: str) -> list[str]:
        response = client.get(VIDEOS, params=params)
        assert response.status_code == 200, response.text
        return ids(response.json())

    oldest, middle, newest = three
    assert listed(model="animatediff") == [newest, middle, oldest]
    assert listed(model="stable-video-diffusion") == []
    assert listed(start_date="2024-01-16") == [newest, middle]
    assert listed(start_date="2024-01-16T08:00:00Z") == [newest, middle]
    assert listed(start_date="2024-01-16T08:00:01+00:00") == [newest]
    assert listed(start_date="2024-01-16T10:00:00+02:00") == [newest, middle]  # 08:00Z
    assert listed(end_date="2024-01-15") == [oldest]  # a date alone covers the whole day
    assert listed(end_date="2024-01-15T10:30:35Z") == [oldest]  # a listed created_at includes that video
    assert listed(end_date="2024-01-15T10:30:34Z") == []
    assert listed(end_date="2024-01-16T08:00:00") == [middle, oldest]  # no offset: UTC
    assert listed(start_date="2024-01-15T12:00:00.5Z", end_date="2024-01-31") == [middle]
    page = client.get(VIDEOS, params={"start_date": "2024-01-16", "limit": 1}).json()
    assert page["total_count"] == 2 and page["has_more"] is True


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "-5"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "1.5"}, "limit"),
        ({"limit": ""}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"offset": "x"}, "offset"),
        ({"offset": "9" * 30}, "offset"),
        ({"start_date": "yesterday"}, "start_date"),
        ({"start_date": "2024-13-01"}, "start_date"),
        ({"end_date": "2024-01-15T25:00:00Z"}, "end_date"),
        ({"end_date": ""}, "end_date"),
        ({"start_date": "2024-02-01", "end_date": "2024-01-01"}, "start_date"),
        ({"model": ""}, "model"),
    ],
)
def test_list_invalid_parameters(client: TestClient, params: dict[str, str], field: str) -> None:
    error = error_of(client.get(VIDEOS, params=params), 400, "INVALID_PARAMETERS")
    assert error["details"]["field"] == field


def test_only_completed_jobs_with_files_are_assets(tmp_path: Path) -> None:
    fake = FakeBackend(hold_at_step=1)
    with TestClient(create_app(make_settings(tmp_path), backend=fake), timeout=10) as client:
        running = client.post(GENERATE, json={"prompt": "held"}).json()["request_id"]
        wait_until(lambda: bool(fake.streams))
        running_vid = video_id(running)
        assert client.get(VIDEOS).json() == {"videos": [], "total_count": 0, "has_more": False}
        error_of(client.get(f"{VIDEOS}/{running_vid}"), 404, "REQUEST_NOT_FOUND")
        error_of(client.delete(f"{VIDEOS}/{running_vid}"), 404, "REQUEST_NOT_FOUND")
        fake.release.set()
        assert wait_for(client, running, {"completed"})["status"] == "completed"  # the DELETE did not touch it
        assert ids(client.get(VIDEOS).json()) == [running_vid]

        fake.fail_at_step = 1
        failed = client.post(GENERATE, json={"prompt": "boom"}).json()["request_id"]
        assert wait_for(client, failed, {"failed"})["status"] == "failed"
        error_of(client.get(f"{VIDEOS}/{video_id(failed)}"), 404, "REQUEST_NOT_FOUND")
        fake.fail_at_step = None

        gone = generate(client, prompt="files removed behind our back")
        (assets_dir(tmp_path) / f"{gone}.mp4").unlink()
        body = client.get(VIDEOS).json()
        assert ids(body) == [running_vid] and body["total_count"] == 1
        error_of(client.get(f"{VIDEOS}/{gone}"), 404, "REQUEST_NOT_FOUND")
        # its row can still be cleaned up; only the files still there count as freed
        left = sum((assets_dir(tmp_path) / f"{gone}{s}").stat().st_size for s in ("_thumb.jpg", "_preview.gif"))
        assert client.delete(f"{VIDEOS}/{gone}").json()["freed_space_bytes"] == left


# ---------------------------------------------------------------------------------------------- details


def test_video_details(client: TestClient, tmp_path: Path) -> None:
    vid = generate(client, prompt="a lighthouse", negative_prompt="blurry", seed=42, fps=12, num_frames=6, style="3d")
    response = client.get(f"{VIDEOS}/{vid}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == DETAIL_KEYS
    assert body["id"] == vid
    assert body["url"] == f"{FILES}/{vid}.mp4"
    assert body["thumbnail_url"] == f"{FILES}/{vid}_thumb.jpg"
    assert body["preview_gif_url"] == f"{FILES}/{vid}_preview.gif"
    # the request's own prompts and the style's name (what the model got had the style applied)
    assert (body["prompt"], body["negative_prompt"], body["style"]) == ("a lighthouse", "blurry", "3d")
    assert body["model"] == "animatediff"
    assert body["parameters"] == {
        "width": 64,
        "height": 48,
        "num_frames": 6,
        "fps": 12,
        "guidance_scale": 7.5,
        "num_inference_steps": 4,
        "seed": 42,
    }
    size = (assets_dir(tmp_path) / f"{vid}.mp4").stat().st_size
    assert body["metadata"] == {
        "duration_seconds": 0.5,
        "resolution": "64x48",
        "fps": 12,
        "file_size_bytes": size,
        "format": "mp4",
        "codec": "h264",
        "bitrate_kbps": round(size * 8 / 0.5 / 1000),
    }
    info = body["generation_info"]
    assert info["request_id"] == "video_req_" + vid.removeprefix("video_")
    assert info["processing_time_seconds"] >= 0 and info["gpu_memory_used_gb"] is None
    status = client.get(f"/api/v1/generate/status/{info['request_id']}").json()
    assert body["created_at"] == status["completed_at"] and ISO_Z.match(body["created_at"])
    assert body["created_at"] == client.get(VIDEOS).json()["videos"][0]["created_at"]


@pytest.mark.parametrize(
    "bad_id",
    ["video_0123abcd", "video_", "nope", "video_req_0123abcd", "video_XYZ", "video_" + "a" * 200, "..%2F..%2Fjobs"],
)
def test_unknown_video_is_404(client: TestClient, bad_id: str) -> None:
    generate(client)
    code = "ROUTE_NOT_FOUND" if "%2F" in bad_id else "REQUEST_NOT_FOUND"  # a decoded slash leaves the route
    for response in (client.get(f"{VIDEOS}/{bad_id}"), client.delete(f"{VIDEOS}/{bad_id}")):
        error = error_of(response, 404, code)
        assert "not found" in error["message"].lower() and len(error["message"]) < 300


# ---------------------------------------------------------------------------------------------- delete


def test_delete_video(client: TestClient, tmp_path: Path) -> None:
    keep = generate(client, prompt="keep me")
    vid = generate(client, prompt="delete me")
    names = [f"{vid}.mp4", f"{vid}_thumb.jpg", f"{vid}_preview.gif"]
    sizes = sum((assets_dir(tmp_path) / name).stat().st_size for name in names)
    response = client.delete(f"{VIDEOS}/{vid}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == ["video_id", "status", "freed_space_bytes", "deleted_at"]
    assert body["video_id"] == vid and body["status"] == "deleted" and ISO_Z.match(body["deleted_at"])
    assert body["freed_space_bytes"] == sizes
    assert not any((assets_dir(tmp_path) / name).exists() for name in names)
    assert (assets_dir(tmp_path) / f"{keep}.mp4").exists()
    for name in names:
        error_of(client.get(f"{FILES}/{name}"), 404, "REQUEST_NOT_FOUND")
    error_of(client.get(f"{VIDEOS}/{vid}"), 404, "REQUEST_NOT_FOUND")
    error_of(client.delete(f"{VIDEOS}/{vid}"), 404, "REQUEST_NOT_FOUND")
    rid = "video_req_" + vid.removeprefix("video_")
    error_of(client.get(f"/api/v1/generate/status/{rid}"), 404, "REQUEST_NOT_FOUND")  # the record is gone
    assert ids(client.get(VIDEOS).json()) == [keep]


# ---------------------------------------------------------------------------------------------- files


@pytest.fixture
def video(client: TestClient, tmp_path: Path) -> tuple[str, bytes]:
    vid = generate(client, num_frames=12)
    return vid, (assets_dir(tmp_path) / f"{vid}.mp4").read_bytes()


def test_files_content_types_and_whole_file(client: TestClient, video: tuple[str, bytes], tmp_path: Path) -> None:
    vid, data = video
    for suffix, media_type in (("_thumb.jpg", "image/jpeg"), ("_preview.gif", "image/gif"), (".mp4", "video/mp4")):
        response = client.get(f"{FILES}/{vid}{suffix}")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == media_type
        assert response.headers["accept-ranges"] == "bytes"
        assert response.content == (assets_dir(tmp_path) / f"{vid}{suffix}").read_bytes()
        assert int(response.headers["content-length"]) == len(response.content)
        assert "content-range" not in response.headers
    assert response.content == data


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=100-199", 100, 199),
        ("bytes=100-", 100, None),
        ("bytes=-100", -100, None),
        ("bytes=0-0", 0, 0),
        ("bytes=10-999999999", 10, None),  # an end past the file is clipped
        ("bytes=-999999999", 0, None),  # a suffix longer than the file is the whole file
        ("BYTES = 5-9", 5, 9),
    ],
)
def test_range_requests(
    client: TestClient, video: tuple[str, bytes], header: str, first: int, last: int | None
) -> None:
    vid, data = video
    size = len(data)
    start = first % size if first < 0 else first
    end = size - 1 if last is None else last
    response = client.get(f"{FILES}/{vid}.mp4", headers={"Range": header})
    assert response.status_code == 206, response.text
    assert response.content == data[start : end + 1]
    assert response.headers["content-range"] == f"bytes {start}-{end}/{size}"
    assert response.headers["content-length"] == str(end - start + 1)
    assert response.headers["accept-ranges"] == "bytes" and response.headers["content-type"] == "video/mp4"


def test_seeking_reassembles_the_file(client: TestClient, video: tuple[str, bytes]) -> None:
    vid, data = video
    step = max(1, len(data) // 7)
    parts = [
        client.get(f"{FILES}/{vid}.mp4", headers={"Range": f"bytes={a}-{a + step - 1}"}).content
        for a in range(0, len(data), step)
    ]
    assert b"".join(parts) == data


@pytest.mark.parametrize(
    "header", ["bytes=999999-", "bytes=999999-1000000", "bytes=-0", "bytes=5-2", "bytes=x-y", "bytes=-"]
)
def test_unsatisfiable_range_is_416(client: TestClient, video: tuple[str, bytes], header: str) -> None:
    vid, data = video
    response = client.get(f"{FILES}/{vid}.mp4", headers={"Range": header})
    error_of(response, 416, "INVALID_PARAMETERS")
    assert response.headers["content-range"] == f"bytes */{len(data)}"


@pytest.mark.parametrize("header", ["items=0-5", "bytes=0-1,4-5", "", "bytes"])
def test_ignored_range_sends_whole_file(client: TestClient, video: tuple[str, bytes], header: str) -> None:
    vid, data = video
    response = client.get(f"{FILES}/{vid}.mp4", headers={"Range": header})
    assert response.status_code == 200 and response.content == data


def test_validators_head_and_conditional_requests(client: TestClient, video: tuple[str, bytes]) -> None:
    vid, data = video
    url = f"{FILES}/{vid}.mp4"
    full = client.get(url)
    etag, last_modified = full.headers["etag"], full.headers["last-modified"]
    assert etag.startswith('"') and last_modified.endswith("GMT")

    head = client.head(url)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(data)) and head.headers["content-type"] == "video/mp4"
    assert head.headers["etag"] == etag and head.headers["accept-ranges"] == "bytes"
    assert client.head(url, headers={"Range": "bytes=0-1"}).status_code == 200  # Range is for GET only
    assert client.head(f"{FILES}/video_0000.mp4").status_code == 404

    for headers in ({"If-None-Match": etag}, {"If-None-Match": f'"x", W/{etag}'}, {"If-Modified-Since": last_modified}):
        response = client.get(url, headers=headers)
        assert response.status_code == 304 and response.content == b"" and response.headers["etag"] == etag
    assert client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
    assert client.get(url, headers={"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}).status_code == 200

    assert client.get(url, headers={"Range": "bytes=0-9", "If-Range": etag}).status_code == 206
    assert client.get(url, headers={"Range": "bytes=0-9", "If-Range": last_modified}).status_code == 206
    stale = client.get(url, headers={"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert stale.status_code == 200 and stale.content == data


def test_large_file_streams_across_chunks(client: TestClient, tmp_path: Path) -> None:
    data = os.urandom(700 * 1024)
    (assets_dir(tmp_path) / "video_0b1c.mp4").write_bytes(data)
    assert client.get(f"{FILES}/video_0b1c.mp4").content == data
    response = client.get(f"{FILES}/video_0b1c.mp4", headers={"Range": "bytes=200000-600000"})
    assert response.status_code == 206 and response.content == data[200000:600001]


@pytest.mark.parametrize(
    "path",
    [
        "/assets/video/../../jobs.sqlite3",
        "/assets/video/%2e%2e/%2e%2e/jobs.sqlite3",
        "/assets/video/%2e%2e%2f%2e%2e%2fjobs.sqlite3",
        "/assets/video/..%2F..%2Fjobs.sqlite3",
        "/assets/video/%2Fetc%2Fpasswd",
        "/assets/video//etc/passwd",
        "/assets/video/jobs.sqlite3",
        "/assets/video/outside.mp4",
        "/assets/video/video_0123.MP4",
        "/assets/video/VIDEO_0123.mp4",
        "/assets/video/video_0123.mp4.bak",
        "/assets/video/.video_0123.mp4.tmp.mp4",
        "/assets/video/video_0123_thumb.jpg%00.mp4",
        "/assets/video/",
        "/assets/video/video_link.mp4",
    ],
)
def test_nothing_outside_the_assets_is_served(client: TestClient, tmp_path: Path, path: str) -> None:
    folder = assets_dir(tmp_path)
    (folder / "jobs.sqlite3").write_bytes(b"not an asset")
    (folder / ".video_0123.mp4.tmp.mp4").write_bytes(b"half written")
    (folder / "outside.mp4").write_bytes(b"wrong name")
    response = client.get(path)
    assert response.status_code in (404, 405), response.text
    assert response.json()["error"]["code"] in ("REQUEST_NOT_FOUND", "ROUTE_NOT_FOUND", "INVALID_PARAMETERS")
    assert b"not an asset" not in response.content and b"root:" not in response.content


def test_symlinks_leaving_the_assets_dir_are_404(client: TestClient, tmp_path: Path) -> None:
    folder = assets_dir(tmp_path)
    secret = tmp_path / "secret.mp4"
    secret.write_bytes(b"top secret")
    (folder / "video_5ec2e7.mp4").symlink_to(secret)
    (folder / "video_5ec2e8.mp4").symlink_to(tmp_path / "missing.mp4")  # dangling
    (folder / "video_5ec2e9.mp4").symlink_to(Path("..") / ".." / ".." / "secret.mp4")  # relative, climbing out
    (folder / "video_5ec2ea.mp4").mkdir()  # a directory with an asset's name
    (folder / "video_5ec2eb.mp4").symlink_to(folder / "video_5ec2eb.mp4")  # a loop
    (folder / "video_5ec2ec_thumb.jpg").symlink_to("/etc/passwd")
    for name in (
        "video_5ec2e7.mp4",
        "video_5ec2e8.mp4",
        "video_5ec2e9.mp4",
        "video_5ec2ea.mp4",
        "video_5ec2eb.mp4",
        "video_5ec2ec_thumb.jpg",
    ):
        for response in (client.get(f"{FILES}/{name}"), client.get(f"{FILES}/{name}", headers={"Range": "bytes=0-3"})):
            error_of(response, 404, "REQUEST_NOT_FOUND")
            assert b"secret" not in response.content and b"root:" not in response.content
    # a link that stays inside the folder is fine
    (folder / "video_5ec2ed.mp4").write_bytes(b"inside")
    (folder / "video_5ec2ee.mp4").symlink_to("video_5ec2ed.mp4")
    assert client.get(f"{FILES}/video_5ec2ee.mp4").content == b"inside"


# ---------------------------------------------------------------------------------------------- pure helpers


def test_byte_range_parsing() -> None:
    assert byte_range(None, 10) is None
    assert byte_range("bytes=0-4", 10) == (0, 4)
    assert byte_range("bytes=8-", 10) == (8, 9)
    assert byte_range("bytes=-3", 10) == (7, 9)
    assert byte_range("bytes=9-9", 10) == (9, 9)
    assert byte_range("bytes=0-1,3-4", 10) is None
    assert byte_range("lines=0-1", 10) is None
    for bad in ("bytes=10-", "bytes=-0", "bytes=3-2", "bytes=a-", "bytes=--1", "bytes= -"):
        with pytest.raises(RangeNotSatisfiableError):
            byte_range(bad, 10)
    with pytest.raises(RangeNotSatisfiableError) as info:
        byte_range("bytes=-5", 0)  # nothing to send from an empty file
    assert info.value.http_status == 416 and info.value.headers["Content-Range"] == "bytes */0"


def test_validator_helpers() -> None:
    assert not_modified("*", None, '"a"', 0)
    assert not not_modified('"b"', "Mon, 01 Jan 2001 00:00:00 GMT", '"a"', 0)  # If-None-Match wins
    assert not not_modified(None, "garbage", '"a"', 0)
    assert if_range_holds(None, '"a"', "date")
    assert not if_range_holds('W/"a"', '"a"', "date")  # a weak tag never matches (strong comparison)
    assert not if_range_holds('"b"', '"a"', "date") and if_range_holds("date", '"a"', "date")


def test_list_query_parsing() -> None:
    query = parse_list_query()
    assert (query.limit, query.offset, query.model) == (50, 0, None)
    assert query.created_from is None and query.created_before is None
    query = parse_list_query(" 7 ", "3", "animatediff", "2024-01-15T10:30:00Z", "2024-01-15")
    assert (query.limit, query.offset, query.model) == (7, 3, "animatediff")
    assert query.created_from == datetime(2024, 1, 15, 10, 30, tzinfo=UTC).timestamp()
    assert query.created_before == datetime(2024, 1, 16, tzinfo=UTC).timestamp()
    assert parse_list_query(end_date="2024-01-15T10:30:00.250+01:00").created_before == (
        datetime(2024, 1, 15, 9, 30, 1, tzinfo=UTC).timestamp()
    )
    with pytest.raises(InvalidParametersError):
        parse_list_query(limit="1e2")
