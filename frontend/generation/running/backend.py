"""The seam between the job runner and whatever runs the diffusion pipeline (Triton in production).

A backend turns one ``GenerationInput`` into a ``GenerationStream`` on one inference endpoint: an async iterator
of ``ProgressEvent`` in pipeline order (text_encoding, frame_generation per step, decoding, done); the last
event carries the frames. ``cancel()`` stops the work; the iterator then ends promptly. A failure raises
``BackendError`` (``visualizr.frontend.infra.failures``) from the iterator, classified by ``kind`` so the runner
knows whether running the job again can help.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from visualizr.frontend.infra.endpoints import Endpoint
from visualizr.frontend.infra.failures import BackendError
from visualizr.pipeline.progress import ProgressEvent
from visualizr.pipeline.request import GenerationRequest


@dataclass(frozen=True)
class GenerationInput:
    """One run of a job: which pipeline model, under which request id, with which request."""

    request_id: str
    model: str  # Triton name of the pipeline model == public model id
    request: GenerationRequest


class GenerationStream(Protocol):
    def __aiter__(self) -> AsyncIterator[ProgressEvent]: ...

    def cancel(self) -> None: ...


class GenerationBackend(Protocol):
    def stream(self, endpoint: Endpoint, job: GenerationInput) -> GenerationStream: ...

    async def aclose(self) -> None: ...


__all__ = ["BackendError", "GenerationBackend", "GenerationInput", "GenerationStream"]
