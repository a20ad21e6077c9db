"""The API with a Stable Video Diffusion model next to AnimateDiff (fake backend: the API's own logic): the
from-image default model, motion_strength as SVD's conditioning, fps reaching the pipeline, text-only or
character requests naming an image-only model answered 400 with the route to use; and an SVD model with a
keyframe stage taking text: its progress through the keyframe, the keyframe kept with the video (its URL in the
result and the asset details, served as a PNG, deleted with the video)."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from litestar.testing import TestClient
from PIL import Image

from tests.support.fakes import FakeBackend, make_card, make_settings, running_app, svd_card, wait_for
from visualizr import names
from visualizr.families import get_family
from visualizr.frontend.generation.running.progress import progress_of
from visualizr.frontend.generation.running.runner import generation_request
from visualizr.frontend.jobs.naming import video_id_of
from visualizr.frontend.jobs.record import GenerationParameters, JobRecord
from visualizr.frontend.jobs.telemetry import PhaseTimer
from visualizr.model_card import write_model_card
from visualizr.pipeline import GenerationRequest
from visualizr.settings import Settings
from visualizr.triton.client import infer_inputs

SVD = "stable-video-diffusion"
FROM_IMAGE = "/api/v1/generate/video/from-image"
FORM = {"motion_prompt": "gentle swaying", "duration_seconds": "1", "fps": "6"}


def png(width: int = 96, height: int = 64) -> bytes:
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[..., 0] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def settings_with_svd(tmp_path: Path) -> Settings:
    settings = make_settings(tmp_path)
    card = make_card()  # AnimateDiff, img2img-capable
    caps = msgspec.structs.replace(card.capabilities, supports_image_to_video=True)
    path = settings.model_repository / card.id / "model_card.json"
    write_model_card(msgspec.structs.replace(card, capabilities=caps), path)
    (settings.model_repository / SVD).mkdir()
    write_model_card(svd_card(), settings.model_repository / SVD / "model_card.json")
    return settings


@pytest.fixture
def client(tmp_path: Path, fake: FakeBackend) -> Iterator[TestClient]:
    with running_app(settings_with_svd(tmp_path), fake, timeout=20) as test_client:
        yield test_client


def upload(client: TestClient, **fields: Any) -> Any:
    return client.post(FROM_IMAGE, data={**FORM, **fields}, files={"image": ("source.png", png(), "image/png")})


def submitted_job(client: TestClient, fake: FakeBackend, **fields: Any) -> tuple[str, GenerationRequest, str]:
    """The model and the request the backend got, and the request id."""
    response = upload(client, **fields)
    assert response.status_code == 202, response.text
    request_id = response.json()["request_id"]
    done = wait_for(client, request_id, {"completed", "failed"})
    assert done["status"] == "completed", done
    stream = fake.streams[-1]
    return stream.run.model, stream.job, request_id


def test_from_image_defaults_to_the_image_to_video_model(client: TestClient, fake: FakeBackend) -> None:
    model, job, request_id = submitted_job(client, fake, motion_strength="0.5", seed="3")
    assert model == SVD
    # motion_strength 0.5 is SVD's own default conditioning; fps reaches the pipeline (SVD conditions on it)
    assert (job.motion_bucket_id, job.noise_aug_strength, job.fps) == (127, 0.02, 6)
    assert job.image is not None and job.image.shape == (job.height, job.width, 3)
    parameters = client.get(f"/api/v1/assets/videos/{video_id_of(request_id)}").json()["parameters"]
    assert (parameters["motion_bucket_id"], parameters["noise_aug_strength"]) == (127, 0.02)
    assert "strength" not in parameters


@pytest.mark.parametrize("strength, bucket, noise", [(0.7, 178, 0.028), (1.0, 255, 0.04), (0.01, 2, 0.0004)])
def test_motion_strength_maps_to_svd_conditioning(
    client: TestClient, fake: FakeBackend, strength: float, bucket: int, noise: float
) -> None:
    _, job, _ = submitted_job(client, fake, motion_strength=str(strength))
    assert (job.motion_bucket_id, job.noise_aug_strength) == (bucket, pytest.approx(noise))
    assert get_family(SVD).motion(strength) == {"motion_bucket_id": bucket, "noise_aug_strength": pytest.approx(noise)}


def test_from_image_on_animatediff_still_uses_strength(client: TestClient, fake: FakeBackend) -> None:
    model, job, _ = submitted_job(client, fake, model="animatediff", motion_strength="0.6")
    assert (model, job.strength, job.motion_bucket_id, job.noise_aug_strength) == ("animatediff", 0.6, None, None)


def test_text_only_request_naming_an_image_model_names_the_route(client: TestClient) -> None:
    response = client.post("/api/v1/generate/video", json={"prompt": "a cat", "model": SVD})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "INVALID_PARAMETERS" and error["details"]["field"] == "model"
    assert FROM_IMAGE in error["message"] and "image" in error["message"]


def test_character_animation_on_an_image_model_is_rejected(client: TestClient) -> None:
    response = client.post("/api/v1/generate/character-animation", json={"character_id": "robot", "model": SVD})
    assert response.status_code == 400 and response.json()["error"]["code"] == "INVALID_PARAMETERS"


def test_svd_refuses_a_negative_prompt(client: TestClient) -> None:
    response = upload(client, model=SVD, negative_prompt="blurry")
    assert response.status_code == 400 and response.json()["error"]["details"]["field"] == "negative_prompt"


def test_models_lists_both_families(client: TestClient) -> None:
    models = {m["id"]: m for m in client.get("/api/v1/models").json()["models"]}
    assert set(models) == {"animatediff", SVD}
    assert (models[SVD]["type"], models["animatediff"]["type"]) == ("image-to-video", "text-to-video")


def test_svd_request_reaches_triton_with_its_image() -> None:
    """Only the inputs the pipeline model declares are sent: SVD's, read from its family (as the model
    metadata would list them); the prompt goes too (a keyframe stage's input), unused beside an image."""
    image = np.full((48, 64, 3), 7, dtype=np.uint8)
    params = GenerationParameters(64, 48, 6, 7, 4, 3.0, 42, motion_bucket_id=100, noise_aug_strength=0.03)
    job = JobRecord("video_req_1", SVD, "ignored", "", None, params, "processing", 0, "queued", 1.0)
    sent = {t.name(): t for t in infer_inputs(generation_request(job, image), set(get_family(SVD).inputs))}
    assert names.IN_STRENGTH not in sent and names.IN_NEGATIVE_PROMPT not in sent  # not set: not sent
    assert sent[names.IN_MOTION_BUCKET_ID].datatype() == "INT32" and sent[names.IN_FPS].datatype() == "INT32"
    assert sent[names.IN_NOISE_AUG_STRENGTH].datatype() == "FP32" and sent[names.IN_IMAGE].shape() == [48, 64, 3]


# -- text-to-video through a keyframe --
SVD_TEXT = "svd-text"
KEYFRAME_STEPS = 3


@pytest.fixture
def keyframe_fake() -> FakeBackend:
    return FakeBackend(keyframe_steps=KEYFRAME_STEPS)


@pytest.fixture
def keyframe_client(tmp_path: Path, keyframe_fake: FakeBackend) -> Iterator[TestClient]:
    settings = settings_with_svd(tmp_path)
    (settings.model_repository / SVD_TEXT).mkdir()
    write_model_card(svd_card(SVD_TEXT, keyframe=True), settings.model_repository / SVD_TEXT / "model_card.json")
    with running_app(settings, keyframe_fake, timeout=20) as test_client:
        yield test_client


TEXT_BODY = {"prompt": "a lighthouse in a storm", "negative_prompt": "blurry", "model": SVD_TEXT, "seed": 5}


def test_text_request_on_a_keyframe_model_runs_and_keeps_the_keyframe(
    keyframe_client: TestClient, keyframe_fake: FakeBackend, tmp_path: Path
) -> None:
    response = keyframe_client.post("/api/v1/generate/video", json=TEXT_BODY)
    assert response.status_code == 202, response.text
    request_id = response.json()["request_id"]
    done = wait_for(keyframe_client, request_id, {"completed", "failed"})
    assert done["status"] == "completed", done
    job = keyframe_fake.streams[-1].job  # the prompt and negative prompt, no image: the keyframe stage makes it
    assert (job.prompt, job.negative_prompt, job.image) == (TEXT_BODY["prompt"], "blurry", None)
    video_id = video_id_of(request_id)
    url = done["result"]["keyframe_url"]
    assert url == f"/assets/video/{video_id}_keyframe.png"
    picture = keyframe_client.get(url)
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
    first = keyframe_fake.frames_factory(job)[0]  # the fake's keyframe is its first frame
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(picture.content)).convert("RGB")), first)
    assert keyframe_client.get(f"/api/v1/assets/videos/{video_id}").json()["keyframe_url"] == url
    keyframe_file = tmp_path / "data" / "assets" / "video" / f"{video_id}_keyframe.png"
    assert keyframe_file.is_file()
    deleted = keyframe_client.delete(f"/api/v1/assets/videos/{video_id}").json()
    assert not keyframe_file.exists() and keyframe_client.get(url).status_code == 404
    assert deleted["freed_space_bytes"] >= len(picture.content)


def test_a_job_without_a_keyframe_has_no_keyframe_url(keyframe_client: TestClient) -> None:
    response = upload(keyframe_client, model=SVD_TEXT)
    done = wait_for(keyframe_client, response.json()["request_id"], {"completed", "failed"})
    assert done["status"] == "completed" and "keyframe_url" not in done["result"]


def test_progress_shows_the_keyframe_stage_then_moves_on(
    keyframe_client: TestClient, keyframe_fake: FakeBackend
) -> None:
    keyframe_fake.hold_at_step = 2  # inside the keyframe stage (steps 1..3 of 3 + 4)
    request_id = keyframe_client.post("/api/v1/generate/video", json=TEXT_BODY).json()["request_id"]
    deadline = time.monotonic() + 10
    while (body := keyframe_client.get(f"/api/v1/generate/status/{request_id}").json())["current_step"] != (
        names.PHASE_KEYFRAME
    ):  # text encoding shows 5 % already
        assert body["status"] in {"queued", "processing"} and time.monotonic() < deadline, body
        time.sleep(0.01)
    assert (body["status"], body["current_step"]) == ("processing", names.PHASE_KEYFRAME)
    held = body["progress"]
    keyframe_fake.release.set()
    assert wait_for(keyframe_client, request_id, {"completed"})["progress"] == 100
    assert held == progress_of(names.PHASE_KEYFRAME, 1, KEYFRAME_STEPS + 4)[0]


def test_progress_is_monotonic_across_the_keyframe_and_the_segments() -> None:
    total = KEYFRAME_STEPS + 3 * 4  # a keyframe, then three segments of four steps
    events = [(names.PHASE_TEXT_ENCODING, 0)]
    events += [(names.PHASE_KEYFRAME, step) for step in range(1, KEYFRAME_STEPS + 1)]
    events += [(names.PHASE_IMAGE_ENCODING, KEYFRAME_STEPS)]
    events += [(names.PHASE_FRAME_GENERATION, step) for step in range(KEYFRAME_STEPS + 1, total + 1)]
    events += [(names.PHASE_DECODING, total), (names.PHASE_DONE, total)]
    shown = [progress_of(phase, step, total) for phase, step in events]
    percents = [percent for percent, _ in shown]
    assert percents == sorted(percents) and percents[0] == 5 and percents[-1] == 95
    assert [step for _, step in shown][1] == names.PHASE_KEYFRAME


def test_phase_timer_times_the_keyframe_stage() -> None:
    clock = iter([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0]).__next__
    seen: list[tuple[str, float]] = []
    timer = PhaseTimer(lambda phase, seconds: seen.append((phase, seconds)), clock)
    phases = [names.PHASE_TEXT_ENCODING, names.PHASE_KEYFRAME, names.PHASE_KEYFRAME, names.PHASE_IMAGE_ENCODING]
    for phase in [*phases, names.PHASE_FRAME_GENERATION, names.PHASE_FRAME_GENERATION, names.PHASE_DECODING]:
        timer.on_event(phase)
    assert seen == [
        (names.PHASE_TEXT_ENCODING, 1.0),  # started at 0
        (names.PHASE_KEYFRAME, 2.0),  # to its last step at 3
        (names.PHASE_IMAGE_ENCODING, 1.0),
        (names.PHASE_FRAME_GENERATION, 2.0),
        (names.PHASE_DECODING, 2.0),
    ]


def test_character_animation_runs_on_a_keyframe_model(keyframe_client: TestClient, keyframe_fake) -> None:
    response = keyframe_client.post(
        "/api/v1/generate/character-animation", json={"character_id": "robot", "model": SVD_TEXT}
    )
    assert response.status_code == 202, response.text
    assert wait_for(keyframe_client, response.json()["request_id"], {"completed"})["result"]["keyframe_url"]
