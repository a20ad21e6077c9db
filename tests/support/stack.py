"""Stacks for integration tests beyond benchmarks.stack's: sibling APIs on the session Triton, private Tritons for
faults that must not touch the session's server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks.stack import ApiProcess, free_port, stack_settings, start_api
from visualizr.launcher import TritonServer
from visualizr.settings import Settings


def start_sibling_api(base_env: dict[str, str], data_dir: Path, **overrides: str) -> ApiProcess:
    """A second API process on the same Triton as ``base_env``'s: its own port and data folder, and ``overrides``."""
    env = {**base_env, "VISUALIZR_PORT": str(free_port()), "VISUALIZR_DATA_DIR": str(data_dir), **overrides}
    return start_api(Settings.from_env({**os.environ, **env}), env)


@contextmanager
def private_tritons(
    root: Path, model_repository: Path, count: int, load_models: str = "animatediff"
) -> Iterator[list[TritonServer]]:
    """``count`` tritonservers of a test's own (free ports, data under ``root``), for faults that must not touch
    the session's server, loading ``load_models`` (VISUALIZR_LOAD_MODELS; others load on demand); stopped
    (process groups killed and reaped) on exit."""
    servers: list[TritonServer] = []
    try:
        for index in range(count):
            overrides = {"VISUALIZR_MODEL_REPOSITORY": str(model_repository), "VISUALIZR_LOAD_MODELS": load_models}
            settings, _ = stack_settings(root / f"triton-{index}", **overrides)
            servers.append(TritonServer(settings).start())
        for server in servers:
            server.wait_ready(300)
        yield servers
    finally:
        for server in servers:
            server.stop()


def env_for(tritons: list[TritonServer], base_env: dict[str, str]) -> dict[str, str]:
    """``base_env`` pointed at ``tritons`` instead of the session's server."""
    urls = ",".join(server.settings.triton_grpc_url for server in tritons)
    return {**base_env, "VISUALIZR_TRITON_URLS": urls}


def without_inference() -> dict[str, str]:
    """Overrides that point an API at a Triton address nothing serves: jobs are accepted and wait
    (``waiting_for_inference_server``), for tests of the API alone that should not load the shared Triton."""
    return {"VISUALIZR_TRITON_URLS": f"127.0.0.1:{free_port()}"}
