"""The thin ``1/model.py`` adapters of the Python-backend models, in one place.

The exporter writes them into every Python-backend model directory it creates; the tracked copies under
``model_repository/`` hold the same text (a test checks that).
"""

from __future__ import annotations

from typing import Final

_HEADER: Final = '"""Triton Python-backend entry point; written by the export (export/shims.py)."""\n\n'

COMPONENT_MODEL_PY: Final = _HEADER + "from visualizr.triton.onnx_component import TritonPythonModel  # noqa: F401\n"
PIPELINE_MODEL_PY: Final = _HEADER + "from visualizr.triton.pipeline_model import TritonPythonModel  # noqa: F401\n"
