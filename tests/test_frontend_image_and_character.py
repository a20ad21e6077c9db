"""Image-to-video (multipart upload) and character animation, against the scripted fake backend."""

from __future__ import annotations

import asyncio
import io
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from litestar.testing import TestClient
from PIL import Image, ImageOps

from tests.support.fakes import MODEL_ID, FakeBackend, make_card, make_settings, running_app, wait_for, wait_until
from visualizr import names
from visualizr.frontend.app import create_app
from visualizr.frontend.generation.intake.characters import CHARACTERS, compose_prompt
from visualizr.frontend.generation.intake.from_image import output_size
from visualizr.frontend.generation.running.runner import generation_request
from visualizr.frontend.infra.images import MAX_IMAGE_BYTES
from visualizr.frontend.jobs.database import SqliteDatabase
from visualizr.frontend.jobs.naming import media_type_of, request_id_of, video_id_of
from visualizr.frontend.jobs.record import GenerationParameters, JobRecord
from visualizr.frontend.jobs.schema import MIGRATIONS
from visualizr.frontend.jobs.store import JobStore
from visualizr.model_card import write_model_card
from visualizr.settings import Settings
from visualizr.triton.client import infer_inputs
from visualizr.triton.pipeline_io import request_arrays

FROM_IMAGE = "/api/v1/generate/video/from-image"
ANIMATE = "/api/v1/generate/character-animation"
GENERATE = "/api/v1/generate/video"
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
FORM = {"motion_prompt": "gentle swaying in the wind", "duration_seconds": "1.5", "fps": "4", "motion_strength": "0.6"}


def image_settings(
    tmp_path: Path, *, image_to_video: bool = True, end_image: bool = False, **overrides: Any
) -> Settings:
    """make_settings, with a card whose pipeline accepts a source image (or not), and an end image (or not)."""
    settings = make_settings(tmp_path, **overrides)
    card = make_card()
    caps = msgspec.structs.replace(
        card.capabilities, supports_image_to_video=image_to_video, supports_end_image=end_image
    )
    write_model_card(
        msgspec.structs.replace(card, capabilities=caps), settings.model_repository / MODEL_ID / "model_card.json"
    )
    return settings


def gradient(width: int, height: int) -> Image.Image:
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[..., 0] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
    pixels[..., 1] = np.linspace(0, 255, height, dtype=np.uint8)[:, None]
    pixels[..., 2] = 128
    return Image.fromarray(pixels)


def encoded(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


PNG = encoded(gradient(200, 100))


@pytest.fixture
def client(tmp_path: Path, fake: FakeBackend) -> Iterator[TestClient]:
    with running_app(image_settings(tmp_path), fake, timeout=20) as test_client:
        yield test_client


def upload(client: TestClient, data: dict[str, Any] | None = None, image: bytes | None = PNG, **files: Any) -> Any:
    parts = dict(files)
    if image is not None:
        parts["image"] = ("source.png", image, "image/png")
    return client.post(FROM_IMAGE, data=FORM if data is None else data, files=parts or None)


def error_of(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"], error
    return error


def job_row(settings_dir: Path, request_id: str) -> sqlite3.Row:
    with sqlite3.connect(settings_dir / "data/jobs.sqlite3") as db:
        db.row_factory = sqlite3.Row
        return db.execute("SELECT * FROM jobs WHERE request_id = ?", (request_id,)).fetchone()


# ---------------------------------------------------------------------------------------------- image-to-video


def test_from_image_happy_path(client: TestClient, fake: FakeBackend, tmp_path: Path) -> None:
    response = upload(client, {**FORM, "width": "64", "height": "48", "seed": "5", "negative_prompt": "blur"})
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert set(accepted) == {"request_id", "status", "estimated_time_seconds", "queue_position", "created_at"}
    assert re.fullmatch(r"video_req_[0-9a-f]{32}", accepted["request_id"])
    assert isinstance(accepted["estimated_time_seconds"], int) and ISO_Z.match(accepted["created_at"])
    rid = accepted["request_id"]
    row = job_row(tmp_path, rid)
    assert (row["kind"], row["source_image"]) == ("image-to-video", f"inputs/{rid}.png")

    done = wait_for(client, rid, {"completed", "failed"})
    assert done["status"] == "completed", done
    meta = done["result"]["metadata"]
    assert (meta["resolution"], meta["fps"], meta["num_frames"], meta["duration_seconds"]) == ("64x48", 4, 6, 1.5)
    assert done["result"]["video_url"] == f"/assets/video/{video_id_of(rid)}.mp4"
    assert client.get(done["result"]["video_url"]).status_code == 200

    job = fake.streams[0].job
    assert (job.prompt, job.negative_prompt, job.seed, job.strength) == ("gentle swaying in the wind", "blur", 5, 0.6)
    # the source image: centre-cropped to 4:3, Lanczos-resized to 64x48, passed as uint8 [H, W, 3]
    expected = np.asarray(ImageOps.fit(gradient(200, 100), (64, 48), method=Image.Resampling.LANCZOS))
    assert job.image is not None and job.image.dtype == np.uint8 and job.image.shape == (48, 64, 3)
    assert np.array_equal(job.image, expected)
    assert not (tmp_path / "data/inputs" / f"{rid}.png").exists()  # deleted once the job ended
    params = msgspec.json.decode(job_row(tmp_path, rid)["parameters"])
    assert params["strength"] == 0.6 and params["num_frames"] == 6
    details = client.get(f"/api/v1/assets/videos/{video_id_of(rid)}").json()
    assert details["parameters"]["strength"] == 0.6 and details["prompt"] == "gentle swaying in the wind"


@pytest.mark.parametrize(
    ("size", "given", "expected"),
    [
        ((200, 100), {}, (64, 32)),  # fits the card's default 64x48 box, keeps 2:1
        ((100, 200), {}, (32, 48)),  # 24x48 would be below the card's minimum width: clamped to it
        ((640, 480), {}, (64, 48)),
        ((200, 100), {"width": "128"}, (128, 64)),  # the other side follows the aspect ratio
        ((200, 100), {"height": "96"}, (192, 96)),
        ((200, 100), {"width": "96", "height": "96"}, (96, 96)),  # both given: cropped to them
    ],
)
def test_default_size_follows_the_image(
    client: TestClient, fake: FakeBackend, size: tuple[int, int], given: dict[str, str], expected: tuple[int, int]
) -> None:
    width, height = expected
    response = upload(client, {**FORM, **given}, encoded(gradient(*size)))
    assert response.status_code == 202, response.text
    wait_for(client, response.json()["request_id"], {"completed"})
    job = fake.streams[0].job
    assert (job.width, job.height) == (width, height)
    assert job.image is not None and job.image.shape == (height, width, 3)


def test_output_size_rounds_to_the_pixel_step() -> None:
    card = make_card()
    assert output_size(card, (1000, 333), None, None) == (64, 32)  # 64x21.3 -> 64x24 -> the minimum height
    assert output_size(card, (333, 1000), None, 256) == (88, 256)  # 85.2 -> 88


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP", "GIF"])
def test_other_formats_are_accepted(client: TestClient, fake: FakeBackend, fmt: str) -> None:
    response = upload(client, image=encoded(gradient(80, 60), fmt))
    assert response.status_code == 202, response.text
    assert wait_for(client, response.json()["request_id"], {"completed", "failed"})["status"] == "completed"


def test_transparent_png_is_flattened_on_white(client: TestClient, fake: FakeBackend) -> None:
    clear = Image.new("RGBA", (64, 48), (0, 0, 0, 0))
    rid = upload(client, {**FORM, "width": "64", "height": "48"}, encoded(clear)).json()["request_id"]
    wait_for(client, rid, {"completed"})
    assert fake.streams[0].job.image is not None and int(fake.streams[0].job.image.min()) == 255


def _bmp() -> bytes:
    return encoded(gradient(32, 32), "BMP")


@pytest.mark.parametrize(
    ("data", "image", "field"),
    [
        ({**FORM}, None, "image"),  # missing
        ({**FORM, "image": "not a file"}, None, "image"),  # a text field, not a file part
        ({**FORM}, b"", "image"),  # empty
        ({**FORM}, b"hello, I am not an image", "image"),
        ({**FORM}, PNG[: len(PNG) // 2], "image"),  # truncated
        ({**FORM}, _bmp(), "image"),  # not one of PNG/JPEG/WebP/GIF
        ({**FORM}, encoded(Image.new("RGB", (9000, 8))), "image"),  # absurd dimensions
        ({**FORM}, encoded(Image.new("RGB", (4, 4))), "image"),  # too small
        ({**FORM, "motion_strength": "0"}, PNG, "motion_strength"),
        ({**FORM, "motion_strength": "1.5"}, PNG, "motion_strength"),
        ({**FORM, "motion_strength": "strong"}, PNG, "motion_strength"),
        ({**FORM, "motion_strength": "nan"}, PNG, "motion_strength"),
        ({**FORM, "duration_seconds": "0"}, PNG, "duration_seconds"),
        ({**FORM, "duration_seconds": "100"}, PNG, "duration_seconds"),
        ({**FORM, "duration_seconds": "long"}, PNG, "duration_seconds"),
        ({**FORM, "duration_seconds": "inf"}, PNG, "duration_seconds"),
        ({**FORM, "fps": "0"}, PNG, "fps"),
        ({**FORM, "fps": "2.5"}, PNG, "fps"),
        ({**FORM, "fps": ["4", "8"]}, PNG, "fps"),  # repeated
        ({**FORM, "width": "68"}, PNG, "width"),
        ({**FORM, "width": "512"}, PNG, "width"),
        ({**FORM, "height": "16"}, PNG, "height"),
        ({**FORM, "num_inference_steps": "99"}, PNG, "num_inference_steps"),
        ({**FORM, "guidance_scale": "nan"}, PNG, "guidance_scale"),
        ({**FORM, "seed": "-1"}, PNG, "seed"),
        ({**FORM, "negative_prompt": "x" * 2001}, PNG, "negative_prompt"),
        ({**FORM, "camera": "dolly"}, PNG, "camera"),  # unknown field
    ],
)
def test_from_image_invalid_parameters_name_the_field(
    client: TestClient, fake: FakeBackend, tmp_path: Path, data: dict[str, Any], image: bytes | None, field: str
) -> None:
    error = error_of(upload(client, data, image), 400, "INVALID_PARAMETERS")
    assert error["details"]["field"] == field, error
    assert fake.streams == []
    assert not (tmp_path / "data/inputs").exists() or not any((tmp_path / "data/inputs").iterdir())


def test_from_image_file_in_a_text_field(client: TestClient) -> None:
    response = upload(client, motion_strength=("x.txt", b"0.5", "text/plain"))
    assert error_of(response, 400, "INVALID_PARAMETERS")["details"]["field"] == "motion_strength"


@pytest.mark.parametrize("prompt", [None, "", "   ", "x" * 2001])
def test_from_image_invalid_prompt(client: TestClient, prompt: str | None) -> None:
    data = {k: v for k, v in FORM.items() if k != "motion_prompt"}
    if prompt is not None:
        data["motion_prompt"] = prompt
    assert error_of(upload(client, data), 400, "INVALID_PROMPT")["details"]["field"] == "motion_prompt"


def test_from_image_size_limits(client: TestClient) -> None:
    # just over the image limit, inside the body limit: the image check answers
    big = b"\x89PNG" + bytes(MAX_IMAGE_BYTES)
    error = error_of(upload(client, image=big), 400, "INVALID_PARAMETERS")
    assert error["details"]["field"] == "image" and error["details"]["max_bytes"] == MAX_IMAGE_BYTES
    # over the body limit: cut off while reading, same answer
    huge = bytes(MAX_IMAGE_BYTES + 2 * 1024 * 1024)
    assert error_of(upload(client, image=huge), 400, "INVALID_PARAMETERS")["details"]["field"] == "image"


def test_from_image_wrong_content_type_and_model(client: TestClient) -> None:
    error_of(client.post(FROM_IMAGE, json=FORM), 400, "INVALID_PARAMETERS")
    error = error_of(upload(client, {**FORM, "model": "no-such-model"}), 404, "MODEL_NOT_FOUND")
    assert error["details"]["model"] == "no-such-model"


def test_from_image_needs_a_model_that_takes_images(tmp_path: Path) -> None:
    settings = image_settings(tmp_path, image_to_video=False)
    with TestClient(create_app(settings, backend=FakeBackend()), timeout=20) as client:
        error = error_of(upload(client), 400, "INVALID_PARAMETERS")
        assert error["details"]["field"] == "model"


def test_end_image_only_where_the_card_supports_it(client: TestClient) -> None:
    end = ("end.png", encoded(gradient(100, 200)), "image/png")
    error = error_of(upload(client, end_image=end), 400, "INVALID_PARAMETERS")
    assert error["details"]["field"] == "end_image"


def test_end_image_reaches_the_pipeline_fitted_like_the_image(tmp_path: Path, fake: FakeBackend) -> None:
    end = ("end.png", encoded(gradient(100, 200).rotate(90, expand=True)), "image/png")
    with running_app(image_settings(tmp_path, end_image=True), fake, timeout=20) as client:
        rid = upload(client, {**FORM, "width": "64", "height": "48"}, end_image=end).json()["request_id"]
        assert wait_for(client, rid, {"completed", "failed"})["status"] == "completed"
    job = fake.streams[0].job
    expected = np.asarray(ImageOps.fit(Image.open(io.BytesIO(end[1])), (64, 48), method=Image.Resampling.LANCZOS))
    assert job.end_image is not None and np.array_equal(job.end_image, expected.astype(np.uint8))
    assert not np.array_equal(job.end_image, job.image)
    assert msgspec.json.decode(job_row(tmp_path, rid)["parameters"])["end_image"] is True
    assert list((tmp_path / "data/inputs").iterdir()) == []  # both pictures deleted once the job ended
    arrays = request_arrays(job, {names.IN_IMAGE, names.IN_END_IMAGE})
    assert arrays[names.IN_END_IMAGE].shape == (48, 64, 3)


def test_cancelled_image_job_drops_its_image(tmp_path: Path) -> None:
    hold = FakeBackend(hold_at_step=1)
    with TestClient(create_app(image_settings(tmp_path), backend=hold), timeout=20) as client:
        rid = upload(client).json()["request_id"]
        wait_until(lambda: len(hold.streams) == 1)
        stored = tmp_path / "data" / job_row(tmp_path, rid)["source_image"]
        assert stored.is_file()
        assert client.delete(f"/api/v1/generate/{rid}").json()["status"] == "cancelled"
        assert not stored.exists()
    hold.release.set()


def test_restart_requeues_an_image_job_with_its_image(tmp_path: Path) -> None:
    settings = image_settings(tmp_path, workers=1)
    hold = FakeBackend(hold_at_step=1)
    with TestClient(create_app(settings, backend=hold), timeout=20) as client:
        running = client.post(GENERATE, json={"prompt": "running", "seed": 1}).json()["request_id"]
        queued = upload(client, {**FORM, "width": "64", "height": "48", "seed": "9"}).json()["request_id"]
        crashed = upload(client, {**FORM, "seed": "10"}).json()["request_id"]
        wait_until(lambda: len(hold.streams) == 1)
    hold.release.set()
    stored = tmp_path / "data" / job_row(tmp_path, queued)["source_image"]
    crashed_image = tmp_path / "data" / job_row(tmp_path, crashed)["source_image"]
    assert stored.is_file() and crashed_image.is_file()
    with sqlite3.connect(settings.database_path) as db:  # the server died while this one ran
        db.execute("UPDATE jobs SET status = 'processing', started_at = created_at WHERE request_id = ?", (crashed,))
    expected = np.asarray(Image.open(stored).convert("RGB"))

    expected_crashed = np.asarray(Image.open(crashed_image).convert("RGB"))

    fresh = FakeBackend()
    with TestClient(create_app(settings, backend=fresh), timeout=20) as client:
        for request_id in (queued, running, crashed):
            assert wait_for(client, request_id, {"completed", "failed"})["status"] == "completed"
    jobs = {s.job.seed: s.job for s in fresh.streams}
    assert set(jobs) == {1, 9, 10}  # the interrupted image job ran again, with its stored image
    assert jobs[1].image is None and jobs[1].strength == 1.0
    assert jobs[9].image is not None and np.array_equal(jobs[9].image, expected) and jobs[9].strength == 0.6
    assert jobs[10].image is not None and np.array_equal(jobs[10].image, expected_crashed)
    assert not stored.exists() and not crashed_image.exists()


def test_missing_source_image_fails_the_job(tmp_path: Path) -> None:
    settings = image_settings(tmp_path, workers=1)
    hold = FakeBackend(hold_at_step=1)
    with TestClient(create_app(settings, backend=hold), timeout=20) as client:
        client.post(GENERATE, json={"prompt": "running"})
        rid = upload(client).json()["request_id"]
        wait_until(lambda: len(hold.streams) == 1)
    hold.release.set()
    (tmp_path / "data" / job_row(tmp_path, rid)["source_image"]).unlink()
    with TestClient(create_app(settings, backend=FakeBackend()), timeout=20) as client:
        failed = wait_for(client, rid, {"completed", "failed"})
        assert failed["status"] == "failed" and "source image" in failed["error"]["details"]


# ----------------------------------------------------------------------------------------- character animation

ANIMATION = {
    "character_id": "assistant",
    "action": "greeting",
    "emotion": "happy",
    "background": "office",
    "duration_seconds": 1,
    "resolution": "64x48",
    "animation_style": "natural",
}


def test_character_animation_happy_path(client: TestClient, fake: FakeBackend, tmp_path: Path) -> None:
    response = client.post(ANIMATE, json={**ANIMATION, "seed": 4})
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert set(accepted) == {"request_id", "status", "character_id", "estimated_time_seconds", "created_at"}
    assert re.fullmatch(r"anim_req_[0-9a-f]{32}", accepted["request_id"])
    assert accepted["character_id"] == "assistant" and ISO_Z.match(accepted["created_at"])
    rid = accepted["request_id"]

    done = wait_for(client, rid, {"completed", "failed"})
    assert done["status"] == "completed", done
    video_id = "anim_" + rid.removeprefix("anim_req_")
    assert done["result"]["video_url"] == f"/assets/video/{video_id}.mp4"
    meta = done["result"]["metadata"]
    assert (meta["resolution"], meta["fps"], meta["num_frames"]) == ("64x48", 8, 8)  # 1 s at the card's 8 fps
    for url in (done["result"]["video_url"], done["result"]["thumbnail_url"], done["result"]["preview_gif_url"]):
        assert client.get(url).status_code == 200
    assert client.get(f"/api/v1/assets/videos/{video_id}").json()["generation_info"]["request_id"] == rid
    listed = client.get("/api/v1/assets/videos").json()["videos"]
    assert [v["id"] for v in listed] == [video_id]

    job = fake.streams[0].job
    assert job.prompt.startswith("assistant, a friendly humanoid")  # the natural style keeps the prompt first
    for phrase in ("greeting", "happy expression", "in a bright modern office", "natural light"):
        assert phrase in job.prompt
    assert job.negative_prompt.startswith(CHARACTERS["assistant"].negative_prompt + ", ") and job.image is None
    row = job_row(tmp_path, rid)
    assert (row["kind"], row["style"], row["source_image"]) == ("character-animation", "natural", None)

    assert client.delete(f"/api/v1/assets/videos/{video_id}").json()["status"] == "deleted"


def test_character_defaults_and_free_words(client: TestClient, fake: FakeBackend) -> None:
    rid = client.post(ANIMATE, json={"character_id": "robot", "action": "juggling", "background": "beach"}).json()
    wait_for(client, rid["request_id"], {"completed"})
    job = fake.streams[0].job
    composed = compose_prompt("robot", CHARACTERS["robot"], "juggling", "neutral", "beach")
    assert job.prompt == composed.prompt  # no style: as composed
    assert "juggling" in job.prompt and "beach background" in job.prompt and "neutral expression" in job.prompt
    assert (job.width, job.height, job.num_frames) == (64, 48, 6)  # card defaults


def test_character_steps_are_taken_from_the_request(client: TestClient, fake: FakeBackend) -> None:
    rid = client.post(ANIMATE, json={**ANIMATION, "num_inference_steps": 3}).json()["request_id"]
    wait_for(client, rid, {"completed"})
    assert fake.streams[0].job.num_inference_steps == 3


def test_character_animation_rejects_the_reference_resolution_on_a_small_model(client: TestClient) -> None:
    error = error_of(client.post(ANIMATE, json={**ANIMATION, "resolution": "1024x1024"}), 400, "INVALID_PARAMETERS")
    assert error["details"] == {
        "field": "resolution",
        "value": "1024x1024",
        "min_resolution": "32x32",
        "max_resolution": "256x256",
        "multiple_of": 8,
    }
    assert "32x32" in error["message"] and "256x256" in error["message"]


def test_unknown_character(client: TestClient) -> None:
    error = error_of(client.post(ANIMATE, json={**ANIMATION, "character_id": "gandalf"}), 404, "CHARACTER_NOT_FOUND")
    assert error["details"] == {"field": "character_id", "character_id": "gandalf"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"character_id": None}, "character_id"),
        ({"resolution": "big"}, "resolution"),
        ({"resolution": "64x44"}, "resolution"),
        ({"resolution": 64}, "resolution"),
        ({"duration_seconds": 0}, "duration_seconds"),
        ({"duration_seconds": 60}, "duration_seconds"),
        ({"duration_seconds": "long"}, "duration_seconds"),
        ({"action": ""}, "action"),
        ({"emotion": "x" * 101}, "emotion"),
        ({"animation_style": 3}, "animation_style"),
        ({"seed": -1}, "seed"),
        ({"num_inference_steps": 0}, "num_inference_steps"),
        ({"voice": "deep"}, "voice"),
    ],
)
def test_character_invalid_parameters_name_the_field(client: TestClient, change: dict[str, Any], field: str) -> None:
    body = {k: v for k, v in {**ANIMATION, **change}.items() if v is not None}
    error = error_of(client.post(ANIMATE, json=body), 400, "INVALID_PARAMETERS")
    assert error["details"]["field"] == field, error


def test_character_malformed_body_and_model(client: TestClient) -> None:
    response = client.post(ANIMATE, content=b"{nope", headers={"content-type": "application/json"})
    error_of(response, 400, "INVALID_PARAMETERS")
    error_of(client.post(ANIMATE, json={**ANIMATION, "model": "missing"}), 404, "MODEL_NOT_FOUND")


def test_cancel_a_character_animation(tmp_path: Path) -> None:
    hold = FakeBackend(hold_at_step=1)
    with TestClient(create_app(image_settings(tmp_path), backend=hold), timeout=20) as client:
        rid = client.post(ANIMATE, json=ANIMATION).json()["request_id"]
        wait_until(lambda: len(hold.streams) == 1)
        assert client.delete(f"/api/v1/generate/{rid}").json()["status"] == "cancelled"
        assert client.get(f"/api/v1/generate/status/{rid}").json()["status"] == "cancelled"
    hold.release.set()


# ------------------------------------------------------------------------------------------------------ units


def test_asset_ids_of_every_kind_round_trip() -> None:
    for rid, vid in (("video_req_ab12", "video_ab12"), ("anim_req_cd34", "anim_cd34")):
        assert video_id_of(rid) == vid and request_id_of(vid) == rid
        assert media_type_of(f"{vid}.mp4") == "video/mp4" and media_type_of(f"{vid}_preview.gif") == "image/gif"
    assert request_id_of("anim_req_cd34") is None and media_type_of("input_ab.png") is None


def test_image_and_strength_reach_the_triton_inputs() -> None:
    image = np.full((48, 64, 3), 7, dtype=np.uint8)
    params = GenerationParameters(64, 48, 6, 8, 4, 7.5, 42, strength=0.6)
    job = JobRecord("video_req_1", "animatediff", "sway", "", None, params, "processing", 0, "queued", 1.0)
    tensors = {t.name(): t for t in infer_inputs(generation_request(job, image))}
    assert tensors[names.IN_IMAGE].shape() == [48, 64, 3] and tensors[names.IN_IMAGE].datatype() == "UINT8"
    assert tensors[names.IN_STRENGTH].shape() == [1] and tensors[names.IN_STRENGTH].datatype() == "FP32"
    assert request_arrays(generation_request(job, image))[names.IN_STRENGTH][0] == np.float32(0.6)
    text_only = {t.name() for t in infer_inputs(generation_request(job, None))}
    assert names.IN_IMAGE not in text_only and names.IN_STRENGTH not in text_only


def test_store_adds_the_new_columns_to_an_old_database(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    jobs_table = MIGRATIONS[0][0]  # the first versioned schema; older databases lacked its last four columns
    new_columns = jobs_table[jobs_table.index("    work_units") : jobs_table.rindex(")")]
    old_schema = jobs_table.replace(new_columns, "    work_units      REAL NOT NULL DEFAULT 0\n")
    assert "source_image" not in old_schema and "attempts" not in old_schema
    params = GenerationParameters(64, 48, 6, 8, 4, 7.5, 1)
    with sqlite3.connect(path) as db:
        db.executescript(old_schema)
        db.execute(
            "INSERT INTO jobs (request_id, model, prompt, parameters, status, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            ("video_req_old", "animatediff", "p", msgspec.json.encode(params).decode(), "queued", 1.0),
        )

    async def scenario() -> None:
        store = JobStore(SqliteDatabase(path))
        await store.open()
        old = await store.get("video_req_old")
        assert old is not None and (old.kind, old.source_image, old.parameters) == ("text-to-video", None, params)
        assert (old.attempts, old.last_error) == (0, None)
        image_params = msgspec.structs.replace(params, strength=0.5)
        new = JobRecord(
            "video_req_new", "animatediff", "p", "", None, image_params, "queued", 0, "queued", 2.0,
            kind="image-to-video", source_image="inputs/video_req_new.png",
        )  # fmt: skip
        await store.insert(new)
        assert await store.get("video_req_new") == new
        await store.close()
        await store.open()  # a second open finds the columns there
        await store.close()

    asyncio.run(scenario())
    assert b'"strength"' not in msgspec.json.encode(params)  # text jobs' parameters are unchanged
