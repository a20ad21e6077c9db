"""A full disk under the data folder, caused for real on a small tmpfs: new jobs are refused with a clear error
before any work, the table and the API agree on every job, no worker is lost, and the service recovers when the
space comes back."""

from __future__ import annotations

import errno
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from benchmarks.stack import ApiProcess
from tests.support.jobs import LONG, SMALL, status, submit, wait_terminal
from tests.support.stack import start_sibling_api
from visualizr.launcher import TritonServer
from visualizr.settings import Settings

pytestmark = pytest.mark.integration

DISK_MB = 64


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a {DISK_MB} MB tmpfs here (root is needed): {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder: Path, leave_bytes: int) -> Path:
    """A filler file that leaves about ``leave_bytes`` free (0: until the disk is full)."""
    filler = folder / "filler.bin"
    chunk = b"\0" * (1024 * 1024)
    with filler.open("wb") as out:
        try:
            while True:
                free = shutil.disk_usage(folder).free
                if free <= leave_bytes:
                    break
                out.write(chunk[: max(1, min(len(chunk), free - leave_bytes))])
                out.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def stored_status(data_dir: Path, request_id: str) -> str | None:
    with sqlite3.connect(data_dir / "jobs.sqlite3") as db:
        found = db.execute("SELECT status FROM jobs WHERE request_id = ?", (request_id,)).fetchone()
    return None if found is None else str(found[0])


def job_count(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "jobs.sqlite3") as db:
        return int(db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0])


def post(api: ApiProcess, **body: object) -> httpx.Response:
    return httpx.post(f"{api.base_url}/api/v1/generate/video", json=body, timeout=30)


def test_below_the_floor_new_jobs_are_refused_until_space_returns(
    triton: TritonServer, stack_env: tuple[Settings, dict[str, str]], small_disk: Path
) -> None:
    data_dir = small_disk / "data"
    api = start_sibling_api(stack_env[1], data_dir, VISUALIZR_MIN_FREE_DISK_MB="16")
    try:
        first = submit(api, prompt="before", seed=1, **SMALL)["request_id"]
        assert wait_terminal(api, first)["status"] == "completed"
        filler = fill(small_disk, leave_bytes=8 * 1024 * 1024)
        jobs = job_count(data_dir)
        refused = post(api, prompt="no room", **SMALL)
        assert refused.status_code == 507, refused.text
        error = refused.json()["error"]
        assert error["code"] == "INSUFFICIENT_STORAGE" and "below the floor of 16 MB" in error["message"]
        assert job_count(data_dir) == jobs  # nothing stored for a refused job
        health = httpx.get(f"{api.base_url}/api/v1/health", timeout=30).json()
        assert health["status"] == "degraded" and any("free on the data folder" in p for p in health["problems"])
        filler.unlink()
        again = submit(api, prompt="after", seed=2, **SMALL)["request_id"]
        assert wait_terminal(api, again)["status"] == "completed"
    finally:
        api.stop()


def test_a_disk_that_fills_under_a_running_job_loses_nothing(
    triton: TritonServer, stack_env: tuple[Settings, dict[str, str]], small_disk: Path
) -> None:
    data_dir = small_disk / "data"
    api = start_sibling_api(stack_env[1], data_dir, VISUALIZR_MIN_FREE_DISK_MB="0", VISUALIZR_WORKERS="1")
    try:
        running = submit(api, prompt="fills the disk", seed=3, **LONG)["request_id"]
        while status(api, running)["current_step"] != "frame_generation":
            time.sleep(0.02)
        filler = fill(small_disk, leave_bytes=0)
        refused = post(api, prompt="no room at all", **SMALL)
        assert refused.status_code == 507, refused.text
        assert refused.json()["error"]["code"] == "INSUFFICIENT_STORAGE"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # whatever the job goes through, the API never runs ahead of the table
            shown = status(api, running)["status"]
            assert shown == stored_status(data_dir, running), shown
            time.sleep(0.1)
        filler.unlink()
        final = wait_terminal(api, running, 120)
        assert final["status"] == "completed", final
        assert stored_status(data_dir, running) == "completed"
        started = time.monotonic()
        after = submit(api, prompt="the worker is still there", seed=4, **SMALL)["request_id"]
        assert wait_terminal(api, after, 60)["status"] == "completed"
        assert time.monotonic() - started < 30  # not the ~90 s wait of a lost worker
    finally:
        api.stop()
