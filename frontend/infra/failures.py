"""How a run on the inference tier can fail: ``BackendError`` and its kinds. The generation runner decides from the
kind whether running the job again can help; the model placement decides what to do about the endpoint."""

from __future__ import annotations

# What went wrong (BackendError.kind).
INPUT = "input"  # the pipeline refused the request itself: running it again cannot help
OUT_OF_MEMORY = "out_of_memory"  # the GPU ran out of memory: INSUFFICIENT_GPU_MEMORY, not retried
UNREACHABLE = "unreachable"  # the endpoint could not be reached or went away mid-stream
UNHEALTHY_MODEL = "unhealthy_model"  # a model's Python-backend stub died (``triton_model`` names it)
MODEL_UNAVAILABLE = "model_unavailable"  # a model the pipeline needs is not loaded (unloaded under the job)
STALLED = "stalled"  # the stream went silent for longer than the stall timeout
INTERNAL = "internal"  # any other pipeline error
RETRYABLE = frozenset({UNREACHABLE, UNHEALTHY_MODEL, MODEL_UNAVAILABLE, STALLED, INTERNAL})


class BackendError(Exception):
    """The pipeline failed or could not be reached. ``details`` is the backend's own message."""

    def __init__(self, message: str, details: str = "", kind: str = INTERNAL, triton_model: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.kind = kind
        self.triton_model = triton_model

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE
