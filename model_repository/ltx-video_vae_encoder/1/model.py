"""Triton Python-backend entry point; written by the export (export/shims.py)."""

from visualizr.triton.onnx_component import TritonPythonModel  # noqa: F401
