"""How many jobs an API replica streams at once when nothing says: one per inference server."""

from __future__ import annotations

from visualizr.settings import Settings


def test_workers_default_to_one_per_inference_server_and_the_environment_wins() -> None:
    assert Settings.from_env({}).workers == 1  # make serve's one tritonserver, on a CPU
    assert Settings.from_env({"VISUALIZR_TRITON_URLS": "a:8001, b:8001,c:8001"}).workers == 3
    assert Settings.from_env({"VISUALIZR_TRITON_URLS": "a:8001", "VISUALIZR_WORKERS": "2"}).workers == 2
