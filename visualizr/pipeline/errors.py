"""Exceptions raised by the denoising loop."""

from __future__ import annotations


class PipelineError(Exception):
    """Base class of the pipeline's own errors."""


class InvalidRequest(PipelineError, ValueError):
    """The request's inputs are missing, malformed or out of range (the caller's fault)."""


class Cancelled(PipelineError):
    """The caller cancelled the request; the loop stopped before its next component call."""

    def __init__(self, step: int, total_steps: int) -> None:
        super().__init__(f"cancelled after {step}/{total_steps} denoising steps")
        self.step = step
        self.total_steps = total_steps
