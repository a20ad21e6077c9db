"""Numbers out of any sane range in every numeric field of the three generate routes: 400 INVALID_PARAMETERS
naming the field (never a 500), nothing queued, and no huge number echoed back; numbers in the listing's query
and in Range headers (which schemathesis found answering 500). Against the scripted fake
backend; tests/test_integration_input_limits.py sends a few of them to the real API."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from tests.support.fakes import MODEL_ID, FakeBackend, make_card, make_settings, running_app
from tests.support.hostile import (
    CHARACTER_FIELDS,
    FORM_NUMBERS,
    HUGE,
    IMAGE_FIELDS,
    JSON_NUMBERS,
    VIDEO_FIELDS,
    json_body,
)
from tests.support.images import gradient_png
from visualizr.frontend.assets.filters import parse_list_query
from visualizr.frontend.assets.ranges import RangeNotSatisfiableError, byte_range
from visualizr.frontend.errors import InvalidParametersError
from visualizr.frontend.generation.intake.validation import frames_for_duration, resolve_parameters, resolve_seed
from visualizr.model_card import write_model_card

GENERATE = "/api/v1/generate/video"
FROM_IMAGE = "/api/v1/generate/video/from-image"
ANIMATE = "/api/v1/generate/character-animation"
VALID_SEEDS = {"-0.0"}  # 0: a fine seed
MAX_ERROR_BYTES = 2000


@pytest.fixture(scope="module")
def fake() -> FakeBackend:
    return FakeBackend()


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, fake: FakeBackend) -> Iterator[TestClient]:
    settings = make_settings(tmp_path_factory.mktemp("numbers"))
    card = make_card()
    caps = msgspec.structs.replace(card.capabilities, supports_image_to_video=True)
    write_model_card(
        msgspec.structs.replace(card, capabilities=caps), settings.model_repository / MODEL_ID / "model_card.json"
    )
    with running_app(settings, fake) as test_client:
        yield test_client


def assert_names(response: Any, field: str, sent: str) -> None:
    assert response.status_code == 400, f"{field}={sent[:30]}: {response.status_code} {response.text[:300]}"
    error = response.json()["error"]
    assert error["code"] == "INVALID_PARAMETERS" and error["details"]["field"] == field, (sent[:30], error)
    assert len(response.content) < MAX_ERROR_BYTES, f"{field}={sent[:30]} echoed {len(response.content)} bytes"


JSON_CASES = [(GENERATE, '"prompt": "a cat"', f) for f in VIDEO_FIELDS] + [
    (ANIMATE, '"character_id": "robot"', f) for f in CHARACTER_FIELDS
]


@pytest.mark.parametrize(("route", "base", "field"), JSON_CASES)
def test_json_numbers(client: TestClient, fake: FakeBackend, route: str, base: str, field: str) -> None:
    for literal in JSON_NUMBERS:
        response = client.post(
            route, content=json_body(base, field, literal), headers={"content-type": "application/json"}
        )
        assert_names(response, field, literal)
    assert fake.streams == []


@pytest.mark.parametrize("field", IMAGE_FIELDS)
def test_image_to_video_numbers(client: TestClient, fake: FakeBackend, field: str) -> None:
    for text in FORM_NUMBERS:
        if field == "seed" and text in VALID_SEEDS:
            continue
        image = {"image": ("a.png", gradient_png(), "image/png")}
        response = client.post(FROM_IMAGE, data={"motion_prompt": "sway", field: text}, files=image)
        assert_names(response, field, text)
    assert fake.streams == []


@pytest.mark.parametrize("value", [10**4000, -(10**4000), 1e308, -1e308, math.inf, -math.inf, math.nan, -0.0])
def test_resolve_parameters_rejects_every_insane_value(value: float) -> None:
    for name in ("width", "num_frames", "num_inference_steps", "guidance_scale"):
        with pytest.raises(InvalidParametersError) as caught:
            resolve_parameters(make_card(), {name: value})
        assert caught.value.details["field"] == name
        assert len(str(caught.value.details["value"])) < 30


@pytest.mark.parametrize("duration", [1e308, -1e308, math.inf, math.nan, -0.0, 5e-324, float(10**300)])
def test_duration_is_checked_before_it_is_multiplied(duration: float) -> None:
    with pytest.raises(InvalidParametersError) as caught:
        frames_for_duration(make_card(), duration, 30)
    assert caught.value.details["field"] == "duration_seconds"


@pytest.mark.parametrize("seed", [2**63, 2**64, 10**4000, -1, -(10**4000)])
def test_seeds_beyond_int64(seed: int) -> None:
    with pytest.raises(InvalidParametersError) as caught:
        resolve_seed(seed)
    assert caught.value.details["field"] == "seed" and len(str(caught.value.details["value"])) < 30


# ---------------------------------------------------------------------------------------------- query and headers


@pytest.mark.parametrize("text", ["²", "+-5", "١٢", "5²", "9" * 5000, "-0x1", "1e3", "", " "])
def test_listing_limits_take_ascii_integers_only(text: str) -> None:
    for field in ("limit", "offset"):
        with pytest.raises(InvalidParametersError) as caught:
            parse_list_query(**{field: text})
        assert caught.value.details["field"] == field


def test_end_date_on_the_last_representable_day() -> None:
    assert parse_list_query(end_date="9999-12-31").created_before == 253402300800.0  # the day after, in seconds


@pytest.mark.parametrize("header", ["bytes=0-" + HUGE, "bytes=-" + HUGE])
def test_huge_range_positions_mean_to_the_end(header: str) -> None:
    assert byte_range(header, 1000) == (0, 999)


@pytest.mark.parametrize("header", ["bytes=" + HUGE + "-", "bytes=١-٢"])
def test_unsatisfiable_ranges_are_416(header: str) -> None:
    with pytest.raises(RangeNotSatisfiableError):
        byte_range(header, 1000)


def test_resolution_takes_ascii_digits_only(client: TestClient) -> None:
    body = {"character_id": "robot", "resolution": "٦٤x٦٤"}
    assert_names(client.post(ANIMATE, json=body), "resolution", body["resolution"])
