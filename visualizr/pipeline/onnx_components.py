"""Components run in-process by a CPU engine (onnxruntime by default) over the exported ONNX files of a repository.

Used by tests and by the benchmark that compares the Triton pipeline with the same loop run in-process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnxruntime as ort

from visualizr.families import get_family
from visualizr.names import ONNX_FILENAME, component_model_name
from visualizr.pipeline.cpu_engines import ONNXRUNTIME, Engine, OnnxRuntimeEngine, open_engine
from visualizr.pipeline_config import PIPELINE_CONFIG_FILENAME, assets_dir, read_pipeline_config


def component_onnx_path(model_repository: Path, model_id: str, component: str, version: int | str = 1) -> Path:
    """``<repository>/<model_id>_<component>/<version>/model.onnx``."""
    return Path(model_repository) / component_model_name(model_id, component) / str(version) / ONNX_FILENAME


def open_session(path: Path, intra_op_num_threads: int = 0) -> ort.InferenceSession:
    """A CPU onnxruntime session; 0 threads lets onnxruntime choose."""
    return OnnxRuntimeEngine(path, intra_op_num_threads).session


class OnnxComponents:
    """The Components protocol over one CPU engine per network (each call runs in a worker thread)."""

    def __init__(self, engines: Mapping[str, Engine]) -> None:
        self._engines = dict(engines)

    @classmethod
    def from_repository(
        cls, model_repository: Path, model_id: str, intra_op_num_threads: int = 0, engine: str = ONNXRUNTIME
    ) -> OnnxComponents:
        """Every network of the exported model ``model_id`` opened by ``engine`` (its family is read from its
        pipeline.json; an optional network the model was exported without is left out)."""
        config = read_pipeline_config(assets_dir(Path(model_repository) / model_id) / PIPELINE_CONFIG_FILENAME)
        paths = {
            network.component: (component_onnx_path(model_repository, model_id, network.component), network.optional)
            for network in get_family(config.family).networks
        }
        return cls(
            {
                component: open_engine(engine, path, intra_op_num_threads)
                for component, (path, optional) in paths.items()
                if not optional or path.is_file()
            }
        )

    async def run(self, component: str, inputs: dict[str, np.ndarray], output: str) -> np.ndarray:
        (result,) = await asyncio.to_thread(self._engines[component].run, [output], inputs)
        return result
