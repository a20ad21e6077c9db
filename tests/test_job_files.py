"""A job's files in the object store (``JobFiles``): encoded into a local folder, published whole (the MP4 last),
read back, deleted; source images put, read and dropped. Both ways a store can hold them: the data folder itself
(files encoded in place: today's layout) and a store whose objects are not a local folder, like S3 (here a folder
store that does not say where its folder is, so every object goes through publish/get/delete). The same paths
against a real SeaweedFS: tests/test_integration_objects.py."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

import msgspec
import numpy as np
import pytest
from litestar.testing import TestClient
from PIL import Image

from benchmarks.stack import free_port
from tests.support.fakes import FakeBackend, error_of, make_settings, running_app, wait_for, wait_until
from visualizr.frontend.app import prepare_storage
from visualizr.frontend.generation.running.encoding import encode_assets
from visualizr.frontend.infra.disk import DataDirError
from visualizr.frontend.infra.objects import FolderStore, ObjectStoreError
from visualizr.frontend.jobs.files import WORK_DIR, JobFiles
from visualizr.frontend.jobs.naming import ASSETS_KEY_PREFIX, asset_key, input_path
from visualizr.settings import Settings

T = TypeVar("T")
FRAMES = np.random.default_rng(0).integers(0, 255, size=(4, 32, 48, 3), dtype=np.uint8)


class RemoteStore(FolderStore):
    """Objects under ``root`` that the code may only reach through the store's methods (as with S3)."""

    def folder(self, prefix: str) -> None:
        return None


class FailingMp4Store(RemoteStore):
    """Refuses to take an MP4 (a bucket that went away half-way through a publish)."""

    async def publish(self, key: str, source: Path) -> None:
        if key.endswith(".mp4"):
            raise ObjectStoreError("s3://test: put_object failed: connection reset")
        await super().publish(key, source)


def run(awaitable: Awaitable[T]) -> T:
    async def main() -> T:
        return await awaitable

    return asyncio.run(main())


def stored(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_the_data_folder_is_encoded_in_place_as_before(tmp_path: Path) -> None:
    data = tmp_path / "data"
    files = JobFiles(FolderStore(data), data / "work")
    assert files.in_place and files.encode_dir == data / ASSETS_KEY_PREFIX == Settings(data_dir=data).assets_dir
    assets, metadata = encode_assets(FRAMES, 4, files.encode_dir, "video_ab", FRAMES[0])
    run(files.publish(assets))
    names = ["video_ab.mp4", "video_ab_keyframe.png", "video_ab_preview.gif", "video_ab_thumb.jpg"]
    assert stored(data) == [asset_key(name) for name in names]
    assert run(files.probe("video_ab.mp4")) == metadata and run(files.probe("video_cd.mp4")) is None
    sizes = sum((files.encode_dir / name).stat().st_size for name in names)
    assert run(files.discard(files.outputs_of("video_ab"))) == sizes and stored(data) == []


def test_a_remote_store_gets_every_file_and_no_local_copy_stays(tmp_path: Path) -> None:
    bucket, work = tmp_path / "bucket", tmp_path / "data" / "work"
    files = JobFiles(RemoteStore(bucket), work)
    assert not files.in_place and files.encode_dir == work
    assets, metadata = encode_assets(FRAMES, 4, files.encode_dir, "video_ab")
    run(files.publish(assets))
    assert stored(bucket) == [asset_key(n) for n in ("video_ab.mp4", "video_ab_preview.gif", "video_ab_thumb.jpg")]
    assert stored(work) == []
    size = metadata.file_size_bytes
    assert run(files.probe("video_ab.mp4")) == metadata  # read back from the object's bytes
    in_row = msgspec.structs.replace(metadata, codec="from the row", file_size_bytes=1)  # answered, with the size
    assert run(files.probe("video_ab.mp4", in_row)) == msgspec.structs.replace(in_row, file_size_bytes=size)
    assert run(files.probe("video_cd.mp4", in_row)) is None  # no object: gone, whatever the row says
    sizes = sum(p.stat().st_size for p in bucket.rglob("*") if p.is_file())
    assert run(files.discard(files.outputs_of("video_ab"))) == sizes and stored(bucket) == []


def test_a_publish_that_fails_leaves_nothing_behind(tmp_path: Path) -> None:
    bucket, work = tmp_path / "bucket", tmp_path / "work"
    files = JobFiles(FailingMp4Store(bucket), work)
    assets, _ = encode_assets(FRAMES, 4, files.encode_dir, "video_ab", FRAMES[0])
    with pytest.raises(ObjectStoreError, match="connection reset"):
        run(files.publish(assets))
    assert stored(bucket) == [] and stored(work) == []  # the MP4 comes last: the others were out, then deleted


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (10, 200, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("remote", [False, True], ids=["data-folder", "remote"])
def test_source_images_are_put_read_and_dropped(tmp_path: Path, remote: bool) -> None:
    root = tmp_path / "data"
    files = JobFiles((RemoteStore if remote else FolderStore)(root), root / "work")
    key = input_path("video_req_ab")

    async def scenario() -> None:
        await files.put_input(key, png(8, 6))
        assert (root / key).is_file()  # the same key: inputs/<request id>.png under the data folder
        pixels = await files.load_input(key, 8, 6)
        assert pixels.shape == (6, 8, 3) and pixels.dtype == np.uint8 and (pixels == (10, 200, 30)).all()
        with pytest.raises(ValueError, match=r"is \[6, 8, 3\], expected \[4, 4, 3\]"):
            await files.load_input(key, 4, 4)
        files.drop_input(key)
        if remote:  # deleted in the background
            assert (root / key).is_file()
            await files.drain()
        assert not (root / key).exists()
        with pytest.raises(ValueError, match="cannot be read: it is gone"):
            await files.load_input(key, 8, 6)

    run(scenario())


def test_a_store_that_cannot_be_used_is_a_problem_and_refuses_deletes(tmp_path: Path) -> None:
    missing = tmp_path / "file"
    missing.write_text("a file where the data folder should be")
    files = JobFiles(FolderStore(missing), tmp_path / "work")
    problem = run(files.problem())
    assert problem is not None and str(missing) in problem
    with pytest.raises(ObjectStoreError) as raised:
        run(files.check())
    assert raised.value.http_status == 503 and raised.value.code == "OBJECT_STORE_UNAVAILABLE"
    assert raised.value.headers["Retry-After"]


def step_of(client: TestClient, request_id: str) -> str:
    return client.get(f"/api/v1/generate/status/{request_id}").json()["current_step"]


def test_an_unreachable_s3_makes_health_degraded_file_routes_503_and_jobs_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real app and boto3 against an S3 address nothing serves: the service stays up and says why, and jobs
    wait for the store instead of spending their runs."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "visualizr-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "visualizr-test-secret")
    endpoint = f"http://127.0.0.1:{free_port()}"
    settings = make_settings(tmp_path, asset_store="s3://videos/prod", s3_endpoint_url=endpoint)
    with running_app(settings, FakeBackend(), timeout=60) as client:
        first = client.post("/api/v1/generate/video", json={"prompt": "a cat"}).json()["request_id"]
        retrying = wait_for(client, first, {"queued"}, timeout=30)  # encoded, but not stored: it runs again
        assert retrying["current_step"] == "retrying" and endpoint in retrying["last_error"], retrying
        wait_until(lambda: step_of(client, first) == "waiting_for_object_store", timeout=30)  # not before it answers
        waiting = client.get(f"/api/v1/generate/status/{first}").json()
        assert endpoint in waiting["waiting_reason"] and waiting["attempts"] == 1, waiting
        second = client.post("/api/v1/generate/video", json={"prompt": "a dog"}).json()["request_id"]
        assert step_of(client, second) == "waiting_for_object_store"  # held at once: no run spent

        body = client.get("/api/v1/health").json()
        assert body["status"] == "degraded" and body["object_store"]["status"] == "down"
        assert body["object_store"]["location"] == f"s3://videos/prod at {endpoint}"
        (problem,) = body["problems"]
        assert "the object store cannot be reached" in problem and endpoint in problem
        for response in (
            client.get("/assets/video/video_0123.mp4", headers={"Range": "bytes=0-9"}),
            client.delete("/api/v1/assets/videos/video_0123"),
        ):
            error = error_of(response, 503, "OBJECT_STORE_UNAVAILABLE")
            assert endpoint in error["details"]["reason"] and response.headers["Retry-After"]
        assert client.get(f"/api/v1/generate/status/{second}").json()["status"] == "queued"
    assert not list((settings.data_dir / WORK_DIR).iterdir())  # the local copies did not stay


def test_an_asset_store_that_is_not_an_s3_url_stops_start_up_with_one_line(tmp_path: Path) -> None:
    with pytest.raises(DataDirError, match=r"VISUALIZR_ASSET_STORE must be s3://bucket\[/prefix\], got 'gs://videos'"):
        prepare_storage(make_settings(tmp_path, asset_store="gs://videos"))
