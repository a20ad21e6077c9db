"""Shared fixtures. Integration fixtures start the REAL tritonserver over the real model repository and the
real API process; nothing here fakes Triton."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from benchmarks.backing_services import PostgresServer, S3Server
from benchmarks.stack import ApiProcess, stack_settings, start_api
from tests.support.fakes import FakeBackend, make_settings, running_app
from visualizr.launcher import TritonServer
from visualizr.settings import Settings

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def fake() -> FakeBackend:
    """The pipeline stand-in behind ``client`` (unit tests of the API only)."""
    return FakeBackend()


@pytest.fixture
def client(tmp_path: Path, fake: FakeBackend) -> Iterator[TestClient]:
    """The app in-process on ``fake``, default test settings; a module may override it with its own settings."""
    with running_app(make_settings(tmp_path), fake) as test_client:
        yield test_client


# Fixtures of the session stack (tritonserver + the API) and of the other servers tests share (PostgreSQL, S3): a
# test using one is an integration test, marked or not.
SESSION_STACK_FIXTURES = frozenset({"triton", "api", "stack_env"})
SERVER_FIXTURES = SESSION_STACK_FIXTURES | {"postgres", "s3"}
SESSION_STACK_GROUP = "session-stack"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests using the session stack are ``integration``. For parallel runs (``make test``: pytest-xdist with
    ``--dist loadgroup``) every test gets a group: the session stack's users one group, in collection order on one
    worker, so the stack starts once and they meet it in the order a serial run does (a cancelled stream can keep
    Triton from unloading the pipeline model for minutes: tests marked ``abandons_streams`` run last); every other
    test its module's group, so a module's own servers start once. ``gpu``-marked tests skip, saying why, where
    torch sees no CUDA device."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if SERVER_FIXTURES & fixtures:
            item.add_marker(pytest.mark.integration)
        uses_stack = bool(SESSION_STACK_FIXTURES & fixtures)
        item.add_marker(pytest.mark.xdist_group(SESSION_STACK_GROUP if uses_stack else item.nodeid.split("::")[0]))
    items.sort(key=lambda item: item.get_closest_marker("abandons_streams") is not None)  # stable: those last
    if not any(item.get_closest_marker("gpu") for item in items):
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU with CUDA: torch.cuda.is_available() is False here")
    for item in items:
        if item.get_closest_marker("gpu"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def model_repository() -> Path:
    """The demo model repository, built (or found up to date) by the same command `make serve` runs."""
    repository = Settings.from_env().model_repository
    command = [sys.executable, "-m", "visualizr.export", "--repository", str(repository)]
    subprocess.run(command, check=True, cwd=REPO_ROOT)
    return repository


@pytest.fixture(scope="session")
def exported_repository(tmp_path_factory: pytest.TempPathFactory, model_repository: Path) -> Path:
    """A private copy of the demo repository `make repository` built (every family's tiny demo, its build stamp
    included), for the export tests that inspect or rebuild it without touching the shared one."""
    root = tmp_path_factory.mktemp("exported") / "model_repository"
    shutil.copytree(model_repository, root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of the tests' own (Debian's packages, 127.0.0.1, a temporary folder)."""
    with PostgresServer() as server:
        yield server


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """An S3-compatible server of the tests' own (SeaweedFS, 127.0.0.1), with one bucket."""
    with S3Server(tmp_path_factory.mktemp("s3")) as server:
        yield server


@pytest.fixture(scope="session")
def stack_env(tmp_path_factory: pytest.TempPathFactory, model_repository: Path) -> tuple[Settings, dict[str, str]]:
    data_dir = tmp_path_factory.mktemp("visualizr-data")
    return stack_settings(data_dir, VISUALIZR_MODEL_REPOSITORY=str(model_repository), VISUALIZR_WORKERS="2")


@pytest.fixture(scope="session")
def triton(stack_env: tuple[Settings, dict[str, str]]) -> Iterator[TritonServer]:
    settings, _ = stack_env
    server = TritonServer(settings)
    server.start()
    try:
        server.wait_ready(300)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def api(triton: TritonServer, stack_env: tuple[Settings, dict[str, str]]) -> Iterator[ApiProcess]:
    settings, env = stack_env
    process = start_api(settings, env)
    try:
        yield process
    finally:
        process.stop()
