"""The denoising loop in-process over the exported ONNX files of the demo model repository."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from visualizr.names import PHASE_DONE
from visualizr.pipeline import GenerationRequest
from visualizr.pipeline.assets import load_pipeline
from visualizr.pipeline.cpu_engines import ENGINE_NAMES
from visualizr.pipeline.onnx_components import OnnxComponents
from visualizr.pipeline_config import assets_dir

MODEL_ID = "animatediff"


@pytest.mark.parametrize("engine", ENGINE_NAMES)
def test_onnx_loop_makes_deterministic_frames(model_repository: Path, engine: str) -> None:
    pipeline = load_pipeline(assets_dir(model_repository / MODEL_ID))
    components = OnnxComponents.from_repository(model_repository, MODEL_ID, intra_op_num_threads=2, engine=engine)
    request = GenerationRequest("a lighthouse at dusk", 64, 64, 3, 2, 7.5, 5)
    events = []
    first = asyncio.run(pipeline(request, components, on_progress=events.append))
    again = asyncio.run(pipeline(request, components))
    assert first.dtype == np.uint8 and first.shape == (3, 64, 64, 3)
    np.testing.assert_array_equal(first, again)
    assert events[-1].phase == PHASE_DONE and len(events) == 2 + 2 + 1
