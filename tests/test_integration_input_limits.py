"""Hostile input against the real API process on the real Triton: insane numbers are 400 naming the field on all
three generate routes, and concurrent near-limit uploads leave the API's peak memory bounded (its VmHWM, read
from the kernel, through benchmarks.upload_memory)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from benchmarks.stack import ApiProcess
from benchmarks.upload_memory import measure, report
from tests.support.hostile import HUGE, json_body
from tests.support.images import gradient_png
from tests.support.stack import start_sibling_api, without_inference
from visualizr.frontend.generation.service import IMAGE_DECODE_SLOTS
from visualizr.frontend.infra.images import MAX_IMAGE_PIXELS
from visualizr.settings import Settings

pytestmark = pytest.mark.integration

JSON_CASES = [
    ("/api/v1/generate/video", '"prompt": "a cat"', "num_inference_steps", HUGE),
    ("/api/v1/generate/video", '"prompt": "a cat"', "guidance_scale", "1e308"),
    ("/api/v1/generate/video", '"prompt": "a cat"', "seed", "18446744073709551616"),
    ("/api/v1/generate/character-animation", '"character_id": "robot"', "duration_seconds", "1e308"),
    ("/api/v1/generate/character-animation", '"character_id": "robot"', "duration_seconds", HUGE),
]
FORM_CASES = [("duration_seconds", "1e999"), ("motion_strength", "nan"), ("guidance_scale", "-inf"), ("fps", "-0")]
# Two decodes at once, each holding at most one full-size RGBA copy of the largest image, twice over for the
# allocator; before decodes were bounded and shrunk, six uploads took the API up by 412 MB (JPEG) / 481 MB (PNG).
MAX_GROWTH_MB = IMAGE_DECODE_SLOTS * MAX_IMAGE_PIXELS * 4 * 2 / 2**20


def assert_names(response: httpx.Response, field: str) -> None:
    assert response.status_code == 400, response.text[:300]
    error = response.json()["error"]
    assert error["code"] == "INVALID_PARAMETERS" and error["details"]["field"] == field, error


def test_insane_numbers_are_400_through_the_real_api(api: ApiProcess) -> None:
    with httpx.Client(base_url=api.base_url, timeout=30) as client:
        for route, base, field, literal in JSON_CASES:
            body = json_body(base, field, literal)
            assert_names(client.post(route, content=body, headers={"content-type": "application/json"}), field)
        for field, text in FORM_CASES:
            response = client.post(
                "/api/v1/generate/video/from-image",
                data={"motion_prompt": "sway", field: text},
                files={"image": ("a.png", gradient_png(), "image/png")},
            )
            assert_names(response, field)
    assert "Traceback" not in api.log_tail(20000)


def test_concurrent_near_limit_uploads_keep_memory_bounded(
    stack_env: tuple[Settings, dict[str, str]], tmp_path: Path
) -> None:
    _, env = stack_env  # no Triton behind this API: the uploads are what is measured, the accepted jobs wait
    sibling = start_sibling_api(env, tmp_path / "data", VISUALIZR_QUEUE_SIZE="32", **without_inference())
    try:
        batches = measure(sibling.base_url, sibling.process.pid, uploads=6, side=int(MAX_IMAGE_PIXELS**0.5))
    finally:
        sibling.stop()
    print(report(batches))
    for batch in batches:
        assert batch.statuses == [202] * 6, report(batches)
        assert batch.growth_mb < MAX_GROWTH_MB, report(batches)
