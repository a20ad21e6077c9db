"""The API on a real PostgreSQL server (VISUALIZR_DATABASE_URL): a job end to end on the session Triton, and a
database that cannot be used stops the process with one line before it serves anything."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import psycopg
import pytest

from benchmarks.backing_services import PostgresServer
from benchmarks.stack import free_port, stack_settings
from tests.support.jobs import SMALL, submit, wait_terminal
from tests.support.stack import start_sibling_api
from visualizr.frontend.jobs.schema import LATEST_VERSION
from visualizr.launcher import TritonServer
from visualizr.settings import Settings

pytestmark = pytest.mark.integration


def start_api_with(database_url: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    _, env = stack_settings(data_dir, VISUALIZR_DATABASE_URL=database_url)
    return subprocess.run(
        [sys.executable, "-m", "visualizr.frontend"], env={**os.environ, **env}, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


def assert_stopped_with_one_line(done: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert all(text in lines[0] for text in expected), lines


def test_an_unreachable_database_stops_the_api_with_one_line(tmp_path: Path) -> None:
    url = f"postgresql://visualizr:hunter2@127.0.0.1:{free_port()}/visualizr"
    done = start_api_with(url, tmp_path / "data")
    assert_stopped_with_one_line(done, "visualizr: the job database", "visualizr:***@127.0.0.1")
    assert "hunter2" not in done.stderr


def test_a_newer_schema_stops_the_api_with_one_line(postgres: PostgresServer, tmp_path: Path) -> None:
    url = postgres.new_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (LATEST_VERSION + 1,))
    assert_stopped_with_one_line(start_api_with(url, tmp_path / "data"), f"schema version {LATEST_VERSION + 1}")


def test_a_job_end_to_end_on_postgresql(
    postgres: PostgresServer, triton: TritonServer, stack_env: tuple[Settings, dict[str, str]], tmp_path: Path
) -> None:
    url = postgres.new_database()
    api = start_sibling_api(stack_env[1], tmp_path / "data", VISUALIZR_DATABASE_URL=url)
    try:
        request_id = submit(api, prompt="on postgresql", seed=3, **SMALL)["request_id"]
        final = wait_terminal(api, request_id, 120)
        assert final["status"] == "completed", final
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT status, attempts FROM jobs WHERE request_id = %s", (request_id,)).fetchone()
        assert row == ("completed", 1)
        videos = httpx.get(f"{api.base_url}/api/v1/assets/videos", timeout=30).json()
        assert [v["id"] for v in videos["videos"]] == [Path(final["result"]["video_url"]).stem]
        metrics = httpx.get(f"{api.base_url}/api/v1/metrics", timeout=30).json()
        assert metrics["requests"]["total"] == 1 and metrics["models"]["animatediff"]["generations"] == 1
    finally:
        api.stop()
