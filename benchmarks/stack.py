"""A private stack of the real processes for benchmarks and tests: tritonserver (visualizr.launcher) and the API
(visualizr.frontend) on free ports and a data folder of the caller's, so a running `make serve` never collides."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from visualizr.launcher import TritonServer
from visualizr.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stack_settings(data_dir: Path, **overrides: str) -> tuple[Settings, dict[str, str]]:
    """Settings for a private stack plus the environment that makes a child process read the same settings."""
    env = {
        "VISUALIZR_HOST": "127.0.0.1",
        "VISUALIZR_PORT": str(free_port()),
        "VISUALIZR_TRITON_HTTP_PORT": str(free_port()),
        "VISUALIZR_TRITON_GRPC_PORT": str(free_port()),
        "VISUALIZR_TRITON_METRICS_PORT": str(free_port()),
        "VISUALIZR_DATA_DIR": str(data_dir),
        "VISUALIZR_LOG_LEVEL": "warning",
        **overrides,
    }
    return Settings.from_env({**os.environ, **env}), env


@dataclass
class ApiProcess:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        """SIGKILL (a replica's sudden death: nothing flushed, nothing handed over), then reap."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


def start_api(settings: Settings, env: dict[str, str], timeout_s: float = 60.0) -> ApiProcess:
    log_path = settings.data_dir / "api.log"
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "visualizr.frontend"],
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    api = ApiProcess(process, f"http://127.0.0.1:{settings.port}", log_path)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"API exited with {process.returncode}:\n{api.log_tail()}")
        try:
            if httpx.get(f"{api.base_url}/api/v1/health", timeout=2).status_code < 600:
                return api
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    api.stop()
    raise RuntimeError(f"API not up after {timeout_s}s:\n{api.log_tail()}")



@contextmanager
def private_stack(repository: Path) -> Iterator[tuple[Settings, ApiProcess, Path]]:
    """(settings, the API, a scratch folder), all gone when the block ends."""
    with tempfile.TemporaryDirectory() as data_dir:
        settings, env = stack_settings(Path(data_dir), VISUALIZR_MODEL_REPOSITORY=str(repository),
                                       VISUALIZR_WORKERS="1")
        with TritonServer(settings) as triton:
            triton.wait_ready(300)
            api = start_api(settings, env)
            try:
                yield settings, api, Path(data_dir)
            finally:
                api.stop()
