"""Visualizr shared core: tensor-name vocabulary, model card schema, pipeline loop, Triton launcher."""

__version__ = "0.1.0"
