"""The interface between the job workers and whatever runs the diffusion pipeline (Triton in production).

A backend turns one ``GenerationInput`` into a ``GenerationStream``: an async iterator of ``GenerationEvent``
in pipeline order (text_encoding, frame_generation per step, decoding, done). The ``done`` event, the last
one, carries the frames. ``cancel()`` stops the work; the iterator then ends (StopAsyncIteration) promptly. A
pipeline error raises ``BackendError`` from the iterator.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

import msgspec
import numpy as np

from visualizr.pipeline.progress import ProgressEvent


class GenerationInput(msgspec.Struct, frozen=True):
    request_id: str
    model: str  # Triton name of the pipeline model == public model id
    prompt: str
    negative_prompt: str
    width: int
    height: int
    num_frames: int
    num_inference_steps: int
    guidance_scale: float
    seed: int
    # image-to-video: the source image, uint8 [height, width, 3], and how far the video may depart from it
    image: np.ndarray | None = None
    strength: float = 1.0


# phase (visualizr.names.PHASES), step, total_steps; the last event (phase done) carries uint8 frames [F,H,W,3]
GenerationEvent = ProgressEvent


class BackendError(Exception):
    """The pipeline failed (or could not be reached). ``details`` is the backend's own message."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.details = details


@runtime_checkable
class GenerationStream(Protocol):
    def __aiter__(self) -> AsyncIterator[GenerationEvent]: ...

    def cancel(self) -> None: ...


@runtime_checkable
class GenerationBackend(Protocol):
    def stream(self, request: GenerationInput) -> GenerationStream: ...

    async def ready(self, model: str) -> bool: ...

    async def aclose(self) -> None: ...
