"""Each component model's CPU engine, chosen by measurement (the export's, else when the session's tritonserver loaded
it), shows in the model details and in tritonserver's log (tests/test_cpu_engines.py tests the choice, the cache and
the override)."""

from __future__ import annotations

from pathlib import Path

import httpx

from benchmarks.stack import ApiProcess
from visualizr.launcher import TritonServer
from visualizr.names import INTRA_OP_THREADS_PARAMETER
from visualizr.pipeline.cpu_engines import CPU_ENGINES, ONNXRUNTIME
from visualizr.pipeline.engine_calibration import SWITCH_MARGIN, calibration_candidates, installed_engines
from visualizr.triton.component_model import read_config


def test_model_details_and_the_log_show_each_components_measured_engine(
    api: ApiProcess, triton: TritonServer, model_repository: Path
) -> None:
    detail = httpx.get(f"{api.base_url}/api/v1/models/animatediff", timeout=30).json()
    engines = {component["model"]: component for component in detail["cpu_engines"]}
    assert set(engines) == {"animatediff_text_encoder", "animatediff_unet", "animatediff_vae_decoder",
                            "animatediff_vae_encoder", "animatediff_image_encoder"}  # fmt: skip
    log = triton.log_path.read_text(errors="replace")
    for model, component in engines.items():
        config = read_config(model_repository / model, None)
        threads = config.int_parameter(INTRA_OP_THREADS_PARAMETER, 0)
        candidates = calibration_candidates(installed_engines(), config.max_batch_size > 0, threads)
        assert set(component["ms"]) == set(candidates), component  # the UNet's: with the batch split
        ms = component["ms"]  # onnxruntime unless another engine is SWITCH_MARGIN faster
        fastest = min(ms, key=ms.__getitem__)
        expected = fastest if ms[fastest] <= ms[ONNXRUNTIME] * (1 - SWITCH_MARGIN) else ONNXRUNTIME
        assert component["engine"] == expected, component
        # this server's own choice (a server started beside it on the same repository may have written the cache)
        assert any(f"{model}: CPU engine {engine} (" in log for engine in CPU_ENGINES), model
