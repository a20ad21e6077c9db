"""Styles (``frontend.styles``): the table, what a style does to the prompts the pipeline gets, the 400 for an unknown
one on both routes that take one, the job and the asset keeping the style's name, and the model details listing the
styles a model takes (fake backend: the API's own logic)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from litestar.testing import TestClient

from tests.support.fakes import FakeBackend, error_of, make_card, make_settings, running_app, svd_card, wait_for
from tests.support.images import gradient_png
from visualizr.frontend.generation.intake.characters import CHARACTERS, compose_prompt
from visualizr.frontend.styles import STYLES, styled, styles_for
from visualizr.model_card import write_model_card

GENERATE = "/api/v1/generate/video"
ANIMATE = "/api/v1/generate/character-animation"
FROM_IMAGE = "/api/v1/generate/video/from-image"
README = Path(__file__).resolve().parent.parent / "README.md"
SVD = "stable-video-diffusion"


@pytest.fixture
def client(tmp_path: Path, fake: FakeBackend) -> Iterator[TestClient]:
    """The app with the test AnimateDiff card (takes a prompt) and an image-only SVD card."""
    settings = make_settings(tmp_path)
    (settings.model_repository / SVD).mkdir()
    write_model_card(svd_card(SVD), settings.model_repository / SVD / "model_card.json")
    with running_app(settings, fake, timeout=20) as test_client:
        yield test_client


def sent(client: TestClient, fake: FakeBackend, path: str, body: dict) -> tuple[str, str, str]:
    """(prompt, negative prompt) the pipeline got for a job, and its request id."""
    response = client.post(path, json=body)
    assert response.status_code == 202, response.text
    request_id = response.json()["request_id"]
    assert wait_for(client, request_id, {"completed", "failed"})["status"] == "completed"
    job = fake.streams[-1].job
    return job.prompt, job.negative_prompt, request_id


def test_the_table_has_the_documented_styles_each_around_the_prompt() -> None:
    assert {"cinematic", "natural", "anime", "photorealistic", "3d"} <= set(STYLES)
    for name, style in STYLES.items():
        assert style.template.count("{prompt}") == 1, name
        assert style.negative and style.negative == style.negative.strip(), name


def test_styled_wraps_the_prompt_and_appends_the_negative() -> None:
    prompt, negative = styled("a lake", "blurry", "anime")
    assert prompt == "anime style a lake, cel shading, clean line art, vibrant colors, key visual"
    assert negative == "blurry, photo, photorealistic, realism, 3d render"
    assert styled("a lake", "", "anime")[1] == "photo, photorealistic, realism, 3d render"
    # braces in a prompt are text, not a template
    assert styled("{x} and {prompt}", "", "natural")[0].startswith("{x} and {prompt}, natural light")
    # no style, or one an old job stored before the table had it: the prompts as they are
    assert styled("a lake", "blurry", None) == styled("a lake", "blurry", "sepia") == ("a lake", "blurry")


def test_text_to_video_sends_the_styled_prompts_and_keeps_the_request_s(client: TestClient, fake: FakeBackend) -> None:
    body = {"prompt": " a lake ", "negative_prompt": "blurry", "style": " Cinematic ", "seed": 1}
    prompt, negative, request_id = sent(client, fake, GENERATE, body)
    assert (prompt, negative) == styled("a lake", "blurry", "cinematic")
    assert prompt.startswith("cinematic film still of a lake, ") and negative.startswith("blurry, cartoon")
    video_id = request_id.replace("_req_", "_")
    details = client.get(f"/api/v1/assets/videos/{video_id}").json()
    assert (details["prompt"], details["negative_prompt"], details["style"]) == ("a lake", "blurry", "cinematic")

    plain, plain_negative, _ = sent(client, fake, GENERATE, {"prompt": "a lake", "negative_prompt": "blurry"})
    assert (plain, plain_negative) == ("a lake", "blurry")


def test_an_animation_style_wraps_the_character_prompt(client: TestClient, fake: FakeBackend) -> None:
    body = {"character_id": "mascot", "action": "dancing", "animation_style": "3d", "duration_seconds": 0.5}
    prompt, negative, request_id = sent(client, fake, ANIMATE, body)
    composed = compose_prompt("mascot", CHARACTERS["mascot"], "dancing", "neutral", "studio")
    assert (prompt, negative) == styled(composed.prompt, CHARACTERS["mascot"].negative_prompt, "3d")
    assert prompt.startswith("3d render of mascot, a cartoon fox mascot")
    details = client.get(f"/api/v1/assets/videos/{request_id.replace('_req_', '_')}").json()
    assert (details["prompt"], details["style"]) == (composed.prompt, "3d")


@pytest.mark.parametrize(("path", "field"), [(GENERATE, "style"), (ANIMATE, "animation_style")])
@pytest.mark.parametrize("value", ["vaporwave", "", "x" * 5000])
def test_an_unknown_style_is_refused_naming_the_field_and_the_known_ones(
    client: TestClient, fake: FakeBackend, path: str, field: str, value: str
) -> None:
    body = {"prompt": "a lake"} if path == GENERATE else {"character_id": "robot"}
    error = error_of(client.post(path, json={**body, field: value}), 400, "INVALID_PARAMETERS")
    assert error["details"] == {"field": field, "value": value[:40], "known": list(STYLES)}
    assert re.search(rf"Unknown {field} .*cinematic, natural, anime", error["message"])
    assert fake.streams == []


def test_from_image_takes_no_style(client: TestClient) -> None:
    form = {"motion_prompt": "swaying", "style": "anime"}
    response = client.post(FROM_IMAGE, data=form, files={"image": ("a.png", gradient_png(), "image/png")})
    assert error_of(response, 400, "INVALID_PARAMETERS")["details"] == {"field": "style", "reason": "unknown field"}


def test_model_details_list_the_styles_of_models_that_take_a_prompt(client: TestClient) -> None:
    text = client.get("/api/v1/models/animatediff").json()["capabilities"]
    assert (text["supports_style_transfer"], text["styles"]) == (True, list(STYLES))
    image = client.get(f"/api/v1/models/{SVD}").json()["capabilities"]
    assert (image["supports_style_transfer"], image["styles"]) == (False, [])


def test_styles_apply_to_models_that_take_a_prompt() -> None:
    assert styles_for(make_card()) == list(STYLES)
    assert styles_for(svd_card()) == []
    keyframe = msgspec.structs.replace(svd_card().capabilities, text_to_video_via_keyframe=True)
    assert styles_for(msgspec.structs.replace(svd_card(), capabilities=keyframe)) == list(STYLES)


def test_readme_documents_every_style_and_the_reference_s_character_prompt() -> None:
    readme = README.read_text()
    for name, style in STYLES.items():
        row = f"| `{name}` | `{style.template}` | `{style.negative}` |"
        assert row in readme, row
    composed = compose_prompt("assistant", CHARACTERS["assistant"], "greeting", "happy", "office")
    prompt, negative = styled(composed.prompt, composed.negative_prompt, "natural")
    assert f"prompt:          {prompt}\nnegative prompt: {negative}\n" in readme
