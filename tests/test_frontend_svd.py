"""The API with a Stable Video Diffusion model next to AnimateDiff (fake backend: the API's own logic): the
from-image default model, motion_strength as SVD's conditioning, fps reaching the pipeline, and text-only or
character requests naming an image-only model answered 400 with the route to use."""

from __future__ import annotations

import io
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
from visualizr.frontend.generation.runner import generation_request
from visualizr.frontend.jobs.naming import video_id_of
from visualizr.frontend.jobs.record import GenerationParameters, JobRecord
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


def test_svd_request_reaches_triton_without_a_prompt() -> None:
    """Only the inputs the pipeline model declares are sent: SVD's, read from its family (as the model
    metadata would list them)."""
    image = np.full((48, 64, 3), 7, dtype=np.uint8)
    params = GenerationParameters(64, 48, 6, 7, 4, 3.0, 42, motion_bucket_id=100, noise_aug_strength=0.03)
    job = JobRecord("video_req_1", SVD, "ignored", "", None, params, "processing", 0, "queued", 1.0)
    sent = {t.name(): t for t in infer_inputs(generation_request(job, image), set(get_family(SVD).inputs))}
    assert names.IN_PROMPT not in sent and names.IN_STRENGTH not in sent
    assert sent[names.IN_MOTION_BUCKET_ID].datatype() == "INT32" and sent[names.IN_FPS].datatype() == "INT32"
    assert sent[names.IN_NOISE_AUG_STRENGTH].datatype() == "FP32" and sent[names.IN_IMAGE].shape() == [48, 64, 3]
