"""HTTP API of text-to-video generation, against a scripted fake backend."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import av
import msgspec
import pytest
from litestar.testing import TestClient

from tests.support.fakes import FakeBackend, make_settings, running_app, wait_for, wait_until
from visualizr.frontend.app import create_app

GENERATE = "/api/v1/generate/video"
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def error_of(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    return body["error"]


@pytest.mark.parametrize("payload", [{"prompt": ""}, {"prompt": "   \n\t"}, {"prompt": "x" * 2001}])
def test_invalid_prompt(client: TestClient, payload: dict[str, Any]) -> None:
    error_of(client.post(GENERATE, json=payload), 400, "INVALID_PROMPT")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "prompt"),  # missing
        ({"prompt": None}, "prompt"),
        ({"prompt": 42}, "prompt"),
        ({"width": "64"}, "width"),  # wrong type
        ({"width": 64.5}, "width"),
        ({"num_frames": True}, "num_frames"),
        ({"guidance_scale": "high"}, "guidance_scale"),
        ({"seed": "42"}, "seed"),
        ({"width": 68}, "width"),  # not a multiple of 8
        ({"height": 44}, "height"),
        ({"width": 512}, "width"),  # out of the card's range
        ({"height": 16}, "height"),
        ({"num_frames": 0}, "num_frames"),
        ({"num_frames": 25}, "num_frames"),
        ({"fps": 0}, "fps"),
        ({"num_inference_steps": 51}, "num_inference_steps"),
        ({"guidance_scale": 0.5}, "guidance_scale"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**63}, "seed"),
        ({"unknown_knob": 1}, "unknown_knob"),
        ({"style": 3}, "style"),
    ],
)
def test_invalid_parameters_name_the_field(client: TestClient, payload: dict[str, Any], field: str) -> None:
    body = {"prompt": "a cat", **payload} if payload else {}
    error = error_of(client.post(GENERATE, json=body), 400, "INVALID_PARAMETERS")
    assert error["details"]["field"] == field


DEEP = b'{"prompt": ' + b"[" * 5000 + b"]" * 5000 + b"}"  # too deep for the decoder to skip over


@pytest.mark.parametrize("body", [b"{not json", b"", b"[1, 2]", b'"text"', b"\xff\xfe", b"null", DEEP])
def test_malformed_body(client: TestClient, body: bytes) -> None:
    response = client.post(GENERATE, content=body, headers={"content-type": "application/json"})
    assert error_of(response, 400, "INVALID_PARAMETERS")["details"]["field"] is None


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there"])
def test_a_malformed_idempotency_key_names_the_header(client: TestClient, key: str) -> None:
    response = client.post(GENERATE, json={"prompt": "a cat"}, headers={"Idempotency-Key": key})
    assert error_of(response, 400, "INVALID_PARAMETERS")["details"]["field"] == "Idempotency-Key"


def test_unknown_model(client: TestClient) -> None:
    for model in ("stable-video-diffusion", "../animatediff", ""):
        error = error_of(
            client.post(GENERATE, json={"prompt": "a cat", "model": model}), 404, "MODEL_NOT_FOUND"
        )
        assert error["details"]["model"] == model


def test_unknown_request_route_and_method(client: TestClient) -> None:
    error_of(client.get("/api/v1/generate/status/video_req_nope"), 404, "REQUEST_NOT_FOUND")
    error_of(client.delete("/api/v1/generate/video_req_nope"), 404, "REQUEST_NOT_FOUND")
    error_of(client.get("/api/v1/nothing/here"), 404, "ROUTE_NOT_FOUND")
    response = client.put(GENERATE, json={"prompt": "x"})
    error_of(response, 405, "INVALID_PARAMETERS")
    error_of(client.get("/assets/video/../../jobs.sqlite3"), 404, "ROUTE_NOT_FOUND")


def test_generate_to_completion(client: TestClient, fake: FakeBackend, tmp_path: Path) -> None:
    response = client.post(GENERATE, json={"prompt": "  a serene lake  ", "seed": 7, "style": "cinematic"})
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert set(accepted) == {"request_id", "status", "estimated_time_seconds", "queue_position", "created_at"}
    assert re.fullmatch(r"video_req_[0-9a-f]{32}", accepted["request_id"])
    assert accepted["status"] == "processing" and accepted["queue_position"] == 0
    assert isinstance(accepted["estimated_time_seconds"], int) and accepted["estimated_time_seconds"] >= 1
    assert ISO_Z.match(accepted["created_at"])

    rid = accepted["request_id"]
    done = wait_for(client, rid, {"completed", "failed"})
    assert done["status"] == "completed", done
    assert set(done) == {
        "request_id",
        "status",
        "progress",
        "result",
        "created_at",
        "completed_at",
        "processing_time_seconds",
    }
    assert done["progress"] == 100 and ISO_Z.match(done["completed_at"])
    video_id = "video_" + rid.removeprefix("video_req_")
    result = done["result"]
    assert result["video_url"] == f"/assets/video/{video_id}.mp4"
    assert result["thumbnail_url"] == f"/assets/video/{video_id}_thumb.jpg"
    assert result["preview_gif_url"] == f"/assets/video/{video_id}_preview.gif"
    meta = result["metadata"]
    # card defaults: 64x48, 6 frames at 8 fps
    assert meta["resolution"] == "64x48" and meta["fps"] == 8 and meta["duration_seconds"] == 0.75
    assert meta["format"] == "mp4" and meta["codec"] == "h264" and meta["num_frames"] == 6
    assert meta["file_size_bytes"] == (tmp_path / "data/assets/video" / f"{video_id}.mp4").stat().st_size

    job = fake.streams[0].job
    assert job.prompt.startswith("cinematic film still of a serene lake, ")  # the style's template (stripped prompt)
    assert (job.seed, job.width, job.height, job.num_frames, job.num_inference_steps) == (7, 64, 48, 6, 4)
    for url, ctype in (
        (result["video_url"], "video/mp4"),
        (result["thumbnail_url"], "image/jpeg"),
        (result["preview_gif_url"], "image/gif"),
    ):
        served = client.get(url)
        assert served.status_code == 200 and served.headers["content-type"].startswith(ctype)
        assert len(served.content) > 0
    with sqlite3.connect(tmp_path / "data/jobs.sqlite3") as db:
        style, status, params = db.execute(
            "SELECT style, status, parameters FROM jobs WHERE request_id = ?", (rid,)
        ).fetchone()
    assert (style, status, msgspec.json.decode(params)["seed"]) == ("cinematic", "completed", 7)


def test_random_seed_is_chosen_and_stored(client: TestClient, fake: FakeBackend, tmp_path: Path) -> None:
    rid = client.post(GENERATE, json={"prompt": "a fox"}).json()["request_id"]
    wait_for(client, rid, {"completed"})
    with sqlite3.connect(tmp_path / "data/jobs.sqlite3") as db:
        params = msgspec.json.decode(db.execute("SELECT parameters FROM jobs").fetchone()[0])
    assert params["seed"] == fake.streams[0].job.seed and 0 <= params["seed"] < 2**32


def test_queue_states_cancel_and_queue_full(tmp_path: Path) -> None:
    fake = FakeBackend(hold_at_step=2)
    app = create_app(make_settings(tmp_path, workers=1, queue_size=1), backend=fake)
    with TestClient(app, timeout=10) as client:
        first = client.post(GENERATE, json={"prompt": "one"}).json()
        second = client.post(GENERATE, json={"prompt": "two"}).json()
        assert first["status"] == "processing" and first["queue_position"] == 0
        assert second["status"] == "queued" and second["queue_position"] == 1
        assert second["estimated_time_seconds"] >= first["estimated_time_seconds"]

        full = client.post(GENERATE, json={"prompt": "three"})
        error_of(full, 503, "QUEUE_FULL")
        assert int(full.headers["retry-after"]) >= 1

        # running job: wait for frame_generation progress
        wait_until(
            lambda: client.get(f"/api/v1/generate/status/{first['request_id']}").json()["progress"] > 5
        )
        running = client.get(f"/api/v1/generate/status/{first['request_id']}").json()
        assert set(running) == {
            "request_id",
            "status",
            "progress",
            "current_step",
            "estimated_remaining_seconds",
            "created_at",
            "started_at",
        }
        assert running["status"] == "processing" and running["current_step"] == "frame_generation"
        assert ISO_Z.match(running["started_at"])

        queued = client.get(f"/api/v1/generate/status/{second['request_id']}").json()
        assert queued["status"] == "queued" and queued["progress"] == 0
        assert queued["current_step"] == "queued" and queued["queue_position"] == 1

        # cancel the queued job: it leaves the queue
        cancelled = client.delete(f"/api/v1/generate/{second['request_id']}")
        assert cancelled.status_code == 200
        body = cancelled.json()
        assert set(body) == {"request_id", "status", "cancelled_at", "message"}
        assert body["status"] == "cancelled" and ISO_Z.match(body["cancelled_at"])
        status = client.get(f"/api/v1/generate/status/{second['request_id']}").json()
        assert status["status"] == "cancelled" and status["cancelled_at"] == body["cancelled_at"]
        assert "started_at" not in status

        # cancel the running job: its stream is cancelled
        body = client.delete(f"/api/v1/generate/{first['request_id']}").json()
        assert body["status"] == "cancelled"
        wait_until(lambda: fake.streams[0].cancelled and fake.cancelled_at_step == [2])
        status = client.get(f"/api/v1/generate/status/{first['request_id']}").json()
        assert status["status"] == "cancelled" and status["started_at"]
        # idempotent
        again = client.delete(f"/api/v1/generate/{first['request_id']}")
        assert again.status_code == 200 and again.json()["cancelled_at"] == body["cancelled_at"]
        assert len(fake.streams) == 1  # the cancelled queued job never ran

        # room again: a new job starts at once
        fake.release.set()
        third = client.post(GENERATE, json={"prompt": "three"}).json()
        assert third["status"] == "processing"
        assert wait_for(client, third["request_id"], {"completed"})["status"] == "completed"
        assert not any(
            p.name.startswith("video_" + first["request_id"][10:]) for p in settings_assets(tmp_path)
        )


def settings_assets(tmp_path: Path) -> list[Path]:
    return list((tmp_path / "data/assets/video").iterdir())


def test_completed_job_cannot_be_cancelled(client: TestClient) -> None:
    rid = client.post(GENERATE, json={"prompt": "done soon"}).json()["request_id"]
    wait_for(client, rid, {"completed"})
    error = error_of(client.delete(f"/api/v1/generate/{rid}"), 400, "INVALID_PARAMETERS")
    assert error["details"] == {"request_id": rid, "status": "completed"}


def test_failed_job_shape(tmp_path: Path) -> None:
    fake = FakeBackend(fail_at_step=2)
    with TestClient(create_app(make_settings(tmp_path), backend=fake), timeout=10) as client:
        rid = client.post(GENERATE, json={"prompt": "doomed"}).json()["request_id"]
        failed = wait_for(client, rid, {"failed", "completed"})
        assert set(failed) == {"request_id", "status", "error", "created_at", "failed_at"}
        assert failed["status"] == "failed" and ISO_Z.match(failed["failed_at"])
        assert failed["error"]["code"] == "GENERATION_FAILED"
        assert "exploded at step 2" in failed["error"]["details"]
        error_of(client.delete(f"/api/v1/generate/{rid}"), 400, "INVALID_PARAMETERS")


def test_wrong_frames_from_backend_fail_the_job(tmp_path: Path) -> None:
    fake = FakeBackend(frames_factory=lambda job: __import__("numpy").zeros((1, 8, 8, 3), "uint8"))
    with TestClient(create_app(make_settings(tmp_path), backend=fake), timeout=10) as client:
        rid = client.post(GENERATE, json={"prompt": "odd"}).json()["request_id"]
        failed = wait_for(client, rid, {"failed", "completed"})
        assert failed["status"] == "failed" and "expected uint8 [6, 48, 64, 3]" in failed["error"]["details"]


def test_restart_recovery_runs_an_interrupted_job_again_with_its_seed(tmp_path: Path) -> None:
    hold = FakeBackend(hold_at_step=1)
    settings = make_settings(tmp_path, workers=1, queue_size=4)
    with TestClient(create_app(settings, backend=hold), timeout=10) as client:
        running = client.post(GENERATE, json={"prompt": "running", "seed": 9}).json()["request_id"]
        queued = client.post(GENERATE, json={"prompt": "queued", "seed": 3}).json()["request_id"]
        wait_until(lambda: len(hold.streams) == 1)
    # Simulate a crash: graceful shutdown re-queued the running job, so force the crash state by hand.
    with sqlite3.connect(settings.database_path) as db:
        db.execute(
            "UPDATE jobs SET status = 'processing', started_at = created_at, attempts = 1 WHERE request_id = ?",
            (running,),
        )
    fresh = FakeBackend(hold_at_step=1)
    with TestClient(create_app(settings, backend=fresh), timeout=10) as client:
        waiting = client.get(f"/api/v1/generate/status/{running}").json()
        assert waiting["status"] in {"queued", "processing"}
        wait_until(lambda: len(fresh.streams) == 1)
        assert fresh.streams[0].job.seed == 9  # the interrupted job runs first, from the start, with its seed
        fresh.release.set()
        assert wait_for(client, running, {"completed"})["status"] == "completed"
        assert wait_for(client, queued, {"completed"})["status"] == "completed"
        assert [s.job.seed for s in fresh.streams] == [9, 3]
    with sqlite3.connect(settings.database_path) as db:
        assert db.execute("SELECT attempts, last_error FROM jobs WHERE request_id = ?", (running,)).fetchone() == (
            2,
            "interrupted by a server restart",
        )


def test_restart_recovery_fails_a_job_without_attempts_left(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, workers=1, job_max_attempts=2)
    hold = FakeBackend(hold_at_step=1)
    with TestClient(create_app(settings, backend=hold), timeout=10) as client:
        running = client.post(GENERATE, json={"prompt": "running"}).json()["request_id"]
        wait_until(lambda: len(hold.streams) == 1)
    with sqlite3.connect(settings.database_path) as db:
        db.execute("UPDATE jobs SET status = 'processing', attempts = 2 WHERE request_id = ?", (running,))
    with TestClient(create_app(settings, backend=FakeBackend()), timeout=10) as client:
        failed = wait_for(client, running, {"failed"})
        assert failed["error"]["code"] == "GENERATION_FAILED"
        details = "gave up after 2 attempt(s); the last one was interrupted by a server restart"
        assert failed["error"]["details"] == details
    with sqlite3.connect(settings.database_path) as db:
        assert db.execute("SELECT status FROM jobs WHERE request_id = ?", (running,)).fetchone() == ("failed",)


def test_graceful_shutdown_requeues_running_job(tmp_path: Path) -> None:
    hold = FakeBackend(hold_at_step=1)
    settings = make_settings(tmp_path)
    with TestClient(create_app(settings, backend=hold), timeout=10) as client:
        rid = client.post(GENERATE, json={"prompt": "again"}).json()["request_id"]
        wait_until(lambda: len(hold.streams) == 1)
    assert hold.streams[0].cancelled
    with TestClient(create_app(settings, backend=FakeBackend()), timeout=10) as client:
        assert wait_for(client, rid, {"completed", "failed"})["status"] == "completed"


def test_health(client: TestClient, fake: FakeBackend) -> None:
    body = client.get("/api/v1/health").json()
    assert body["status"] == "healthy" and ISO_Z.match(body["timestamp"]) and body["version"]
    fake.is_ready = False
    assert client.get("/api/v1/health").json()["status"] == "degraded"


def test_mp4_is_readable_by_pyav(client: TestClient, tmp_path: Path) -> None:
    payload = {"prompt": "count", "num_frames": 12, "fps": 24, "width": 96, "height": 64}
    rid = client.post(GENERATE, json=payload).json()["request_id"]
    result = wait_for(client, rid, {"completed"})["result"]
    path = tmp_path / "data/assets/video" / result["video_url"].rsplit("/", 1)[1]
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
        assert container.streams.video[0].average_rate == 24
    assert len(frames) == 12 and (frames[0].width, frames[0].height) == (96, 64)
    assert result["metadata"]["duration_seconds"] == 0.5


def test_a_silent_pipeline_stream_fails_the_job_instead_of_hanging(tmp_path: Path) -> None:
    fake = FakeBackend(hold_at_step=2)  # never released: the stream goes silent after step 1
    with running_app(make_settings(tmp_path, job_stall_timeout_s=1), fake) as client:
        request_id = client.post(GENERATE, json={"prompt": "hang"}).json()["request_id"]
        failed = wait_for(client, request_id, {"failed"}, timeout=15)
        assert failed["error"]["code"] == "GENERATION_FAILED"
        assert "no progress from the pipeline for 1 s" in failed["error"]["details"]
        assert fake.streams[0].cancelled
        follow_up = client.post(GENERATE, json={"prompt": "next"}).json()["request_id"]
        fake.release.set()
        assert wait_for(client, follow_up, {"completed"}, timeout=15)["status"] == "completed"


def test_status_names_the_replica_that_runs_the_job(tmp_path: Path) -> None:
    fake = FakeBackend(hold_at_step=1)
    settings = make_settings(tmp_path, workers=1, replica_id="replica-x")
    with TestClient(create_app(settings, backend=fake), timeout=10) as client:
        running = client.post(GENERATE, json={"prompt": "here"}).json()["request_id"]
        waiting = client.post(GENERATE, json={"prompt": "later"}).json()["request_id"]
        assert client.get(f"/api/v1/generate/status/{running}").headers["X-Visualizr-Job-Replica"] == "replica-x"
        assert "X-Visualizr-Job-Replica" not in client.get(f"/api/v1/generate/status/{waiting}").headers
        fake.release.set()
        wait_for(client, waiting, {"completed"})
        assert client.get(f"/api/v1/generate/status/{waiting}").headers["X-Visualizr-Job-Replica"] == "replica-x"
    with sqlite3.connect(settings.database_path) as db:
        assert db.execute("SELECT DISTINCT owner FROM jobs").fetchall() == [("replica-x",)]
