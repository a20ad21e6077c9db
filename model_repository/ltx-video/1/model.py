"""Triton Python-backend entry point; written by the export (export/shims.py)."""

from visualizr.triton.pipeline_model import TritonPythonModel  # noqa: F401
