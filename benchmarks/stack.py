"""A private stack for a benchmark: tritonserver on the repository and one API worker, on free ports."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.stack import ApiProcess, stack_settings, start_api
from visualizr.launcher import TritonServer
from visualizr.settings import Settings


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
