"""``Idempotency-Key`` through the real API (its own process and data folder; no Triton behind it, so accepted jobs
wait and the shared Triton is left alone) on all three POST routes: a repeat returns the first job and stores
nothing; another body with the key is 409; concurrent duplicates make one job; a malformed key is 400. The SDK's
``idempotency_key=`` reaches the same mechanism."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from benchmarks.stack import ApiProcess
from tests.support.images import gradient_png
from tests.support.jobs import SMALL
from tests.support.stack import start_sibling_api, without_inference
from visualizr.settings import Settings
from visualizr_client import IdempotencyKeyReusedError, VisualizrClient

pytestmark = pytest.mark.integration

Post = Callable[[httpx.Client, dict[str, str], str], httpx.Response]


def post_video(client: httpx.Client, headers: dict[str, str], prompt: str) -> httpx.Response:
    return client.post("/api/v1/generate/video", json={"prompt": prompt, **SMALL}, headers=headers)


def post_from_image(client: httpx.Client, headers: dict[str, str], prompt: str) -> httpx.Response:
    form = {"motion_prompt": prompt, "duration_seconds": "1", "fps": "4", "num_inference_steps": "2"}
    files = {"image": ("a.png", gradient_png(), "image/png")}
    return client.post("/api/v1/generate/video/from-image", data=form, files=files, headers=headers)


def post_character(client: httpx.Client, headers: dict[str, str], action: str) -> httpx.Response:
    body = {"character_id": "robot", "action": action, "resolution": "64x64", "duration_seconds": 0.5}
    return client.post("/api/v1/generate/character-animation", json=body, headers=headers)


ROUTES: dict[str, Post] = {"video": post_video, "from-image": post_from_image, "character": post_character}


@pytest.fixture(scope="module")
def sibling(
    stack_env: tuple[Settings, dict[str, str]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiProcess]:
    _, env = stack_env
    data_dir = tmp_path_factory.mktemp("idempotency") / "data"
    api = start_sibling_api(env, data_dir, VISUALIZR_QUEUE_SIZE="64", **without_inference())
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture
def client(sibling: ApiProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sibling.base_url, timeout=60) as http:
        yield http


def jobs_in_table(api: ApiProcess) -> int:
    with sqlite3.connect(api.log_path.parent / "jobs.sqlite3") as db:
        return int(db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0])


def cancel(client: httpx.Client, *request_ids: str) -> None:
    for request_id in set(request_ids):
        client.delete(f"/api/v1/generate/{request_id}")


def new_key() -> dict[str, str]:
    return {"Idempotency-Key": f"test-{uuid.uuid4()}"}


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_a_repeat_returns_the_first_job(sibling: ApiProcess, client: httpx.Client, route: str) -> None:
    post, key = ROUTES[route], new_key()
    before = jobs_in_table(sibling)
    first, again = post(client, key, "waves at dusk"), post(client, key, "waves at dusk")
    assert (first.status_code, again.status_code) == (202, 202), (first.text, again.text)
    assert again.json()["request_id"] == first.json()["request_id"]
    assert jobs_in_table(sibling) == before + 1
    other = post(client, new_key(), "waves at dusk")  # the same body under another key is another job
    assert other.status_code == 202 and other.json()["request_id"] != first.json()["request_id"]
    cancel(client, first.json()["request_id"], other.json()["request_id"])


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_the_key_with_another_body_is_409(sibling: ApiProcess, client: httpx.Client, route: str) -> None:
    post, key = ROUTES[route], new_key()
    first = post(client, key, "waves at dusk")
    assert first.status_code == 202, first.text
    before = jobs_in_table(sibling)
    reused = post(client, key, "a different request")
    assert reused.status_code == 409, reused.text
    error = reused.json()["error"]
    assert error["code"] == "IDEMPOTENCY_KEY_REUSED" and error["details"]["request_id"] == first.json()["request_id"]
    assert jobs_in_table(sibling) == before
    cancel(client, first.json()["request_id"])


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_concurrent_duplicates_make_one_job(sibling: ApiProcess, client: httpx.Client, route: str) -> None:
    post, key = ROUTES[route], new_key()
    before = jobs_in_table(sibling)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: post(client, key, "a storm at sea"), range(8)))
    assert [a.status_code for a in answers] == [202] * 8, [a.text for a in answers]
    assert len({a.json()["request_id"] for a in answers}) == 1
    assert jobs_in_table(sibling) == before + 1
    cancel(client, answers[0].json()["request_id"])


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there"])
@pytest.mark.parametrize("route", sorted(ROUTES))
def test_a_malformed_key_is_400(sibling: ApiProcess, client: httpx.Client, route: str, key: str) -> None:
    before = jobs_in_table(sibling)
    response = ROUTES[route](client, {"Idempotency-Key": key}, "waves at dusk")
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "INVALID_PARAMETERS" and error["details"]["field"] == "Idempotency-Key"
    assert jobs_in_table(sibling) == before


def test_the_sdk_sends_the_key(sibling: ApiProcess) -> None:
    key = f"sdk-{uuid.uuid4()}"
    with VisualizrClient(sibling.base_url) as sdk:
        first = sdk.generate_video("a kite", idempotency_key=key, **SMALL)
        assert sdk.generate_video("a kite", idempotency_key=key, **SMALL).request_id == first.request_id
        with pytest.raises(IdempotencyKeyReusedError) as caught:
            sdk.generate_video("a different kite", idempotency_key=key, **SMALL)
        assert caught.value.status == 409 and caught.value.details["request_id"] == first.request_id
        sdk.cancel(first.request_id)
