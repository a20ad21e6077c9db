"""POST /api/v1/generate/quote on the real app over a scripted backend: the video route's body and 400s, a 200 with
``fits: false`` naming the field and the limit, the queue position and wait a job would get, no job made; the
runs it measures teach the cost model, stored for the next process; the calibration histogram."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.support.fakes import FakeBackend, make_settings, running_app, wait_for, wait_until, write_repository
from visualizr.frontend.catalog import ModelCatalog
from visualizr.frontend.errors import InsufficientGpuMemoryError
from visualizr.frontend.generation.reporting.quote import quote
from visualizr.frontend.generation.schemas import GenerateVideoRequest, QuoteLimit

GENERATE = "/api/v1/generate/video"
QUOTE = "/api/v1/generate/quote"
BODY = {"prompt": "a lighthouse at dusk", "width": 64, "height": 64, "num_frames": 8, "num_inference_steps": 4}


def job_rows(tmp_path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(tmp_path / "data/jobs.sqlite3") as db:
        return db.execute("SELECT * FROM jobs ORDER BY request_id").fetchall()


def test_a_quote_says_what_a_job_would_get_and_makes_none(tmp_path: Path) -> None:
    fake = FakeBackend(hold_at_step=1)
    with running_app(make_settings(tmp_path), fake) as client:
        idle = client.post(QUOTE, json=BODY)
        assert idle.status_code == 200, idle.text
        quote = idle.json()
        assert quote["fits"] is True and quote["limit"] is None and quote["model"] == "animatediff"
        assert (quote["num_frames"], quote["queue_position"], quote["estimated_wait_seconds"]) == (8, 0, 0.0)
        assert quote["estimated_run_seconds"] > 0 and quote["estimated_time_seconds"] == quote["estimated_run_seconds"]
        assert job_rows(tmp_path) == []

        running = client.post(GENERATE, json=BODY).json()["request_id"]  # holds the only worker
        wait_until(lambda: bool(fake.streams))
        waiting = client.post(GENERATE, json=BODY).json()
        before = job_rows(tmp_path)
        for _ in range(3):
            behind = client.post(QUOTE, json=BODY).json()
        assert job_rows(tmp_path) == before  # the table unchanged, row for row
        assert behind["queue_position"] == waiting["queue_position"] + 1 == 2
        assert behind["estimated_wait_seconds"] > 0
        assert behind["estimated_time_seconds"] == pytest.approx(
            behind["estimated_wait_seconds"] + behind["estimated_run_seconds"]
        )
        fake.release.set()
        wait_for(client, running, {"completed"})
        wait_for(client, waiting["request_id"], {"completed"})


@pytest.mark.parametrize(
    ("change", "field", "limit"),
    [({"num_frames": 500}, "num_frames", {"max": 24}), ({"width": 2048}, "width", {"max": 256}),
     ({"num_inference_steps": 0}, "num_inference_steps", {"min": 1})],
)  # fmt: skip
def test_a_request_beyond_the_model_s_limits_is_quoted_as_not_fitting(
    client: Any, tmp_path: Path, change: dict[str, int], field: str, limit: dict[str, int]
) -> None:
    body = {**BODY, **change}
    quoted = client.post(QUOTE, json=body)
    assert quoted.status_code == 200, quoted.text
    answer = quoted.json()
    assert (answer["fits"], answer["limit"]["field"], answer["num_frames"]) == (False, field, None)
    refused = client.post(GENERATE, json=body).json()["error"]  # what the submission says, said by the quote
    assert answer["limit"]["message"] == refused["message"] and answer["limit"]["details"] == refused["details"]
    assert limit.items() <= answer["limit"]["details"].items()
    assert job_rows(tmp_path) == []


@pytest.mark.parametrize(
    "body",
    [{}, {"prompt": ""}, {"prompt": "x", "colour": "red"}, {"prompt": "x", "model": "nope"},
     {"prompt": "x", "style": "baroque"}, {"prompt": "x", "width": 100}, {"prompt": "x", "width": "wide"}, []],
)  # fmt: skip
def test_a_quote_refuses_what_the_video_route_refuses_with_the_same_error(client: Any, body: Any) -> None:
    quoted, submitted = client.post(QUOTE, json=body), client.post(GENERATE, json=body)
    assert quoted.status_code == submitted.status_code >= 400
    assert quoted.json() == submitted.json()


def test_measured_runs_are_stored_and_a_restart_replays_them(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    with running_app(settings, FakeBackend(step_delay=0.25)) as client:
        prior = client.post(QUOTE, json=BODY).json()["estimated_run_seconds"]
        for _ in range(3):
            wait_for(client, client.post(GENERATE, json=BODY).json()["request_id"], {"completed"})
        learnt = client.post(QUOTE, json=BODY).json()["estimated_run_seconds"]
        metrics = client.get("/metrics").text
    assert learnt != prior
    assert 'visualizr_eta_first_estimate_relative_error_count{model="animatediff"' in metrics
    with sqlite3.connect(settings.database_path) as db:
        parts = {row[0] for row in db.execute("SELECT part FROM eta_samples")}
    assert {"conditioning", "denoise", "decode", "encode", "overhead"} <= parts
    with running_app(settings, FakeBackend()) as client:  # a new process: the same fit, before any job
        assert client.post(QUOTE, json=BODY).json()["estimated_run_seconds"] == pytest.approx(learnt)


class NoMemory:
    """A GPU without room for the request (this machine has none: the memory check never refuses here)."""

    async def check_capacity(self, card: object, parameters: object) -> None:
        raise InsufficientGpuMemoryError("Not enough GPU memory", {"required_gb": 9.5, "available_gb": 2.0})


class EmptyQueue:
    """Standing's answers for a job at the end of an idle queue."""

    async def quote(self, model: str, kind: str, parameters: object) -> tuple[int, float, float]:
        return 0, 0.0, 3.0

    async def loaded(self, model: str) -> bool:
        return False


def test_a_request_the_gpu_cannot_hold_is_quoted_as_not_fitting_with_its_figures(tmp_path: Path) -> None:
    catalog = ModelCatalog(write_repository(tmp_path / "repository"))
    body = GenerateVideoRequest(prompt="a lighthouse", num_frames=8)
    answer = asyncio.run(quote(body, catalog, NoMemory(), EmptyQueue()))
    figures = (answer.fits, answer.num_frames, answer.estimated_time_seconds, answer.model_loaded)
    assert figures == (False, 8, 3.0, False)
    assert answer.limit == QuoteLimit("gpu_memory", "Not enough GPU memory", {"required_gb": 9.5, "available_gb": 2.0})
