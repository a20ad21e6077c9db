"""One contract for where files live, the same tests on both: the data folder and a real S3-compatible server
(SeaweedFS, started by the tests on 127.0.0.1)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from benchmarks.backing_services import S3Server
from visualizr.frontend.infra.objects import FolderStore, ObjectStore, S3Store

T = TypeVar("T")
STORES = ["folder", pytest.param("s3", marks=pytest.mark.integration)]


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    if request.param == "folder":
        yield FolderStore(tmp_path / "data")
        return
    server: S3Server = request.getfixturevalue("s3")
    prefix = f"test-{tmp_path.name}"
    yield S3Store(server.bucket, prefix, server.endpoint_url, client=server.client())


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(scenario())


async def collect(chunks: object) -> bytes:
    return b"".join([chunk async for chunk in chunks])  # type: ignore[attr-defined]


def test_publish_read_ranges_and_delete(store: ObjectStore, tmp_path: Path) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB: more than one read chunk
    source = tmp_path / "staging" / "clip.mp4"
    source.parent.mkdir()
    source.write_bytes(data)

    async def scenario() -> None:
        key = "assets/video/video_00ff.mp4"
        assert await store.info(key) is None and await store.get_bytes(key) is None
        await store.publish(key, source)
        info = await store.info(key)
        assert info is not None and info.size == len(data) and info.version
        assert await store.get_bytes(key) == data
        assert await collect(store.read(key, 0, len(data))) == data
        assert await collect(store.read(key, 1000, 300_000)) == data[1000:301_000]
        assert await collect(store.read(key, len(data) - 1, 1)) == data[-1:]
        await store.put_bytes("inputs/video_00ff.png", b"png")
        assert await store.get_bytes("inputs/video_00ff.png") == b"png"
        freed = await store.delete([key, "inputs/video_00ff.png", "assets/video/none.mp4"])
        assert freed == len(data) + 3
        assert await store.info(key) is None and await collect(store.read(key, 0, 10)) == b""
        assert await store.problem() is None

    run(scenario)


def test_a_folder_store_never_serves_outside_its_root(tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "assets").mkdir(parents=True)
    (tmp_path / "secret.txt").write_text("secret")
    (root / "assets" / "link.mp4").symlink_to(tmp_path / "secret.txt")
    (root / "jobs.sqlite3").write_text("the job database")
    (root / "assets" / "video").mkdir()
    (root / "assets" / "video" / "video_ab.mp4").symlink_to(root / "jobs.sqlite3")  # inside the root, not its folder
    (root / "assets" / "video" / "video_cd.mp4").write_text("a video")
    (root / "assets" / "video" / "video_ef.mp4").symlink_to("video_cd.mp4")  # stays in its folder: fine
    store = FolderStore(root)
    assert run(lambda: store.info("assets/link.mp4")) is None
    assert run(lambda: store.info("../secret.txt")) is None
    assert run(lambda: store.info("assets/video/video_ab.mp4")) is None
    assert run(lambda: collect(store.read("assets/video/video_ab.mp4", 0, 100))) == b""
    assert run(lambda: store.get_bytes("assets/video/video_ef.mp4")) == b"a video"


def test_an_unreachable_s3_server_is_a_problem_not_a_crash() -> None:
    store = S3Store("bucket", "", "http://127.0.0.1:9")
    problem = run(store.problem)
    assert problem is not None and "cannot be reached" in problem


def test_s3_urls() -> None:
    store = S3Store.from_url("s3://videos/prod/visualizr", "http://minio:9000")
    assert (store.bucket, store.prefix) == ("videos", "prod/visualizr")
    assert store._key("assets/x") == "prod/visualizr/assets/x"
    with pytest.raises(ValueError, match="s3://bucket"):
        S3Store.from_url("s3:///nobucket")
