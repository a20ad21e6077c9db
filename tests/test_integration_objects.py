"""The API with its files in a real S3-compatible server (SeaweedFS) and its jobs in a real PostgreSQL, on the
session Triton: every file a job makes or takes lives in the bucket, the MP4 comes back through /assets with byte
ranges, the bucket and the job rows agree, and DELETE empties the bucket; a character's pictures live there too.
Nothing stays in the local data folder."""

from __future__ import annotations

import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from benchmarks.backing_services import PostgresServer, S3Server
from benchmarks.stack import ApiProcess
from tests.support.images import gradient_png
from tests.support.jobs import SMALL, decode_frames, submit, wait_terminal
from tests.support.stack import start_sibling_api
from visualizr.launcher import TritonServer
from visualizr.settings import Settings

pytestmark = pytest.mark.integration


def bucket_objects(s3: S3Server, prefix: str) -> dict[str, int]:
    """Key (without the prefix) -> size of every object under ``prefix``."""
    listed = s3.client().list_objects_v2(Bucket=s3.bucket, Prefix=f"{prefix}/")
    return {item["Key"].removeprefix(f"{prefix}/"): item["Size"] for item in listed.get("Contents", [])}


def video_objects(objects: dict[str, int]) -> dict[str, int]:
    """The objects of the videos (the characters' pictures left out)."""
    return {key: size for key, size in objects.items() if key.startswith("assets/")}


def local_files(data_dir: Path) -> list[str]:
    return sorted(str(p.relative_to(data_dir)) for p in data_dir.rglob("*") if p.is_file() and p.name != "api.log")


def job_row(database_url: str, request_id: str) -> dict[str, Any] | None:
    with psycopg.connect(database_url) as conn:
        cursor = conn.execute(
            "SELECT status, video_path, thumbnail_path, preview_path, source_image FROM jobs WHERE request_id = %s",
            (request_id,),
        )
        row = cursor.fetchone()
        return None if row is None else dict(zip([c.name for c in cursor.description], row, strict=True))


def start_together(base_env: dict[str, str], data_dirs: list[Path], overrides: dict[str, str]) -> list[ApiProcess]:
    """Sibling APIs started at the same time; if one cannot start, the others are stopped."""
    with ThreadPoolExecutor(len(data_dirs)) as pool:
        starting = [pool.submit(start_sibling_api, base_env, data_dir, **overrides) for data_dir in data_dirs]
    failed = [f.exception() for f in starting if f.exception() is not None]
    if failed:
        for future in starting:
            if future.exception() is None:
                future.result().stop()
        raise failed[0]  # type: ignore[misc]
    return [future.result() for future in starting]


def test_a_job_end_to_end_on_postgresql_and_s3_served_by_another_replica(
    postgres: PostgresServer,
    s3: S3Server,
    triton: TritonServer,
    stack_env: tuple[Settings, dict[str, str]],
    tmp_path: Path,
) -> None:
    """Replica A runs the jobs; replica B (the same database and bucket, its own empty data folder) serves their
    files with ranges, lists them, counts them and deletes one."""
    database_url, prefix = postgres.new_database(), f"e2e-{tmp_path.name}"
    shared = {"VISUALIZR_DATABASE_URL": database_url, "VISUALIZR_ASSET_STORE": f"s3://{s3.bucket}/{prefix}",
              "VISUALIZR_S3_ENDPOINT_URL": s3.endpoint_url, **s3.credentials}  # fmt: skip
    replica_a, replica_b = start_together(stack_env[1], [tmp_path / "a", tmp_path / "b"], shared)  # before any job
    try:
        with httpx.Client(base_url=replica_a.base_url, timeout=60) as a, httpx.Client(
            base_url=replica_b.base_url, timeout=60
        ) as b:
            store = b.get("/api/v1/health").json()["object_store"]
            location = f"s3://{s3.bucket}/{prefix} at {s3.endpoint_url}"
            assert store == {"location": location, "status": "up", "problem": None}

            # an image-to-video job: its source image is put in the bucket, read back by the run, then deleted
            form = {"motion_prompt": "swaying", "duration_seconds": "1", "fps": "4", "num_inference_steps": "2",
                    "width": "64", "height": "64"}  # fmt: skip
            posted = a.post(
                "/api/v1/generate/video/from-image", data=form, files={"image": ("a.png", gradient_png(), "image/png")}
            )
            assert posted.status_code == 202, posted.text
            from_image = posted.json()["request_id"]
            text = submit(replica_a, prompt="in the bucket", seed=4, **SMALL)["request_id"]
            for request_id in (from_image, text):
                assert wait_terminal(replica_a, request_id, 120)["status"] == "completed"
            image_row = job_row(database_url, from_image)
            assert image_row is not None and image_row["source_image"] == f"inputs/{from_image}.png"
            assert image_row["source_image"] not in bucket_objects(s3, prefix)  # deleted once the job ended

            final = b.get(f"/api/v1/generate/status/{text}").json()
            video_id = Path(final["result"]["video_url"]).stem
            row = job_row(database_url, text)
            assert row is not None and row["status"] == "completed"
            names = (row["video_path"], row["thumbnail_path"], row["preview_path"])
            objects = bucket_objects(s3, prefix)
            assert {f"assets/video/{name}" for name in names} <= set(objects)
            assert len(video_objects(objects)) == 6  # the two jobs' video, thumbnail and preview; nothing else
            assert len(objects) == 6 + 10  # and the five built-in characters' two pictures
            for replica in ("a", "b"):  # encoded in a/work, then only in the bucket
                assert local_files(tmp_path / replica) == []

            url = final["result"]["video_url"]
            data = s3.client().get_object(Bucket=s3.bucket, Key=f"{prefix}{url}")["Body"].read()
            whole = b.get(url)
            assert whole.status_code == 200 and whole.content == data
            assert whole.headers["content-type"] == "video/mp4" and whole.headers["accept-ranges"] == "bytes"
            frames, _ = decode_frames(whole.content)
            assert len(frames) == SMALL["num_frames"]
            part = b.get(url, headers={"Range": "bytes=100-299"})
            assert part.status_code == 206 and part.content == data[100:300]
            assert part.headers["content-range"] == f"bytes 100-299/{len(data)}"
            etag = whole.headers["etag"]
            assert a.get(url, headers={"Range": "bytes=0-9"}).headers["etag"] == etag  # one validator everywhere
            tail = b.get(url, headers={"Range": "bytes=-50", "If-Range": etag})
            assert tail.status_code == 206 and tail.content == data[-50:]
            past = b.get(url, headers={"Range": f"bytes={len(data)}-"})
            assert past.status_code == 416 and past.headers["content-range"] == f"bytes */{len(data)}"
            assert b.get(url, headers={"If-None-Match": etag}).status_code == 304
            thumb = b.get(final["result"]["thumbnail_url"])
            assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"

            details = b.get(f"/api/v1/assets/videos/{video_id}").json()  # probed from the object
            assert details["metadata"]["file_size_bytes"] == len(data) and details["metadata"]["format"] == "mp4"
            newest = b.get("/api/v1/assets/videos", params={"limit": 1}).json()
            assert (newest["total_count"], newest["has_more"], len(newest["videos"])) == (2, True, 1)
            storage = [client.get("/api/v1/metrics").json()["storage"] for client in (a, b)]
            assert storage[0] == storage[1] and storage[0]["total_videos"] == 2

            deleted = b.delete(f"/api/v1/assets/videos/{video_id}").json()
            assert deleted["freed_space_bytes"] == sum(objects[f"assets/video/{name}"] for name in names)
            assert not {f"assets/video/{name}" for name in names} & set(bucket_objects(s3, prefix))
            assert len(video_objects(bucket_objects(s3, prefix))) == 3 and job_row(database_url, text) is None
            assert a.get(url).status_code == 404
            assert a.get("/api/v1/assets/videos").json()["total_count"] == 1

            # a character made on one replica is shown, served and deleted by the other; its picture in the bucket
            made = a.post("/api/v1/characters", data={"name": "Bucket", "character_id": "bucket"},
                          files=[("images", ("p.png", gradient_png(), "image/png"))])  # fmt: skip
            assert made.status_code == 201, made.text
            keys = [k for k in bucket_objects(s3, prefix) if k.startswith("characters/bucket/")]
            assert len(keys) == 1
            picture = b.get(made.json()["reference_image_urls"][0])
            assert picture.status_code == 200 and picture.content == s3.client().get_object(
                Bucket=s3.bucket, Key=f"{prefix}/{keys[0]}"
            )["Body"].read()
            assert b.delete("/api/v1/characters/bucket").status_code == 200
            assert not [k for k in bucket_objects(s3, prefix) if k.startswith("characters/bucket/")]
            assert a.get("/api/v1/characters/bucket").status_code == 404
    finally:
        replica_b.stop()
        replica_a.stop()


def test_jobs_wait_while_the_bucket_is_down_and_complete_once_when_it_returns(
    triton: TritonServer, stack_env: tuple[Settings, dict[str, str]], tmp_path: Path
) -> None:
    """A SeaweedFS of the test's own, stopped under a job and started again on the same address: the run that could
    not store its video is retried, the job waits (no run spent) until the bucket answers, then completes once."""
    with S3Server(tmp_path / "s3") as s3:
        bucket = {"VISUALIZR_ASSET_STORE": f"s3://{s3.bucket}/outage", "VISUALIZR_S3_ENDPOINT_URL": s3.endpoint_url}
        api = start_sibling_api(stack_env[1], tmp_path / "data", **bucket, **s3.credentials)
        try:
            with httpx.Client(base_url=api.base_url, timeout=60) as client:
                s3.stop()
                request_id = submit(api, prompt="while the bucket is down", seed=5, **SMALL)["request_id"]
                deadline = time.monotonic() + 120
                while (body := client.get(f"/api/v1/generate/status/{request_id}").json())[
                    "current_step"
                ] != "waiting_for_object_store":
                    assert body["status"] != "completed" and time.monotonic() < deadline, body
                    time.sleep(0.2)
                assert body["attempts"] == 1 and s3.endpoint_url in body["waiting_reason"], body
                store = client.get("/api/v1/health").json()["object_store"]
                assert store["status"] == "down" and s3.endpoint_url in store["problem"]

                s3.start()
                final = wait_terminal(api, request_id, 120)
                assert final["status"] == "completed", final
                with sqlite3.connect(tmp_path / "data" / "jobs.sqlite3") as db:
                    runs = db.execute("SELECT attempts FROM jobs WHERE request_id = ?", (request_id,)).fetchone()
                assert runs == (2,)  # the run that could not store, and the one after the bucket came back
                assert client.get("/api/v1/health").json()["object_store"]["status"] == "up"
                assert len(video_objects(bucket_objects(s3, "outage"))) == 3  # one video, thumbnail, preview
                assert client.get(final["result"]["video_url"]).status_code == 200
        finally:
            api.stop()
