"""The ETA on the real stack: benchmarks/eta.py run briefly (its table of signed relative errors of the first
estimate, the estimate at 50 % and the quote), and the quote through the SDK (sync and async) and the CLI, which
make no job. Calibration itself is the benchmark's to print (a timed assertion would fail on a busy machine)."""

from __future__ import annotations

import asyncio
import json
import math
import sqlite3

import pytest

from benchmarks import eta
from benchmarks.stack import ApiProcess
from visualizr.settings import Settings
from visualizr_client import AsyncVisualizrClient, Quote, VisualizrClient
from visualizr_client import _cli as cli

PARAMS = {"width": 64, "height": 64, "num_frames": 8, "num_inference_steps": 4}


def job_count(settings: Settings) -> int:
    with sqlite3.connect(settings.database_path) as db:
        return int(db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0])


def test_the_eta_benchmark_prints_the_errors_of_each_estimate(api: ApiProcess) -> None:
    lines = eta.main(["--quick", "--url", api.base_url, "--rounds", "2", "--warmup", "1", "--repeat", "2"])
    rows = lines[1:5]  # one job alone, then three at once
    assert [row.split()[5] for row in rows] == ["1", "3", "3", "3"], lines
    for row in rows:
        actual, run, first, quote = row.split()[6], row.split()[7], row.split()[-3], row.split()[-1]
        assert float(actual.rstrip("s")) >= float(run.rstrip("s")) > 0, row
        assert first.endswith("%") and quote.endswith("%"), row
        assert math.isfinite(float(first.rstrip("%"))) and math.isfinite(float(quote.rstrip("%"))), row
    summaries = [line.split(":")[0].strip() for line in lines[-5:-1]]
    assert summaries == ["first estimate", "none joined", "at 50 %", "quote"], lines
    assert lines[-1].startswith("the first job alone x 2: "), lines


def test_quotes_by_sdk_and_cli_make_no_job(
    api: ApiProcess, stack_env: tuple[Settings, dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    settings, _ = stack_env
    before = job_count(settings)
    with VisualizrClient(api.base_url) as client:
        quote = client.quote("a lighthouse", **PARAMS)
        too_long = client.quote("a lighthouse", **{**PARAMS, "num_frames": 10_000})

    async def quote_async() -> Quote:
        async with AsyncVisualizrClient(api.base_url) as client:
            return await client.quote("a lighthouse", model="stable-video-diffusion", **PARAMS)

    svd = asyncio.run(quote_async())
    assert cli.main(["--url", api.base_url, "quote", "a lighthouse", "--frames", "8", "--steps", "4"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert job_count(settings) == before
    assert (quote.fits, quote.num_frames, svd.fits, svd.model, printed["fits"]) == (
        True, 8, True, "stable-video-diffusion", True,
    )  # fmt: skip
    assert quote.estimated_run_seconds and quote.estimated_run_seconds > 0 and quote.model_loaded is not None
    assert not too_long.fits and too_long.limit is not None and too_long.limit.field == "num_frames"
