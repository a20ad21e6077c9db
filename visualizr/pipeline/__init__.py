"""The denoising loop: importable, unit-tested, independent of Triton (see loop.TextToVideoPipeline)."""

from visualizr.pipeline.components import Components
from visualizr.pipeline.errors import Cancelled, InvalidRequest, PipelineError
from visualizr.pipeline.progress import ProgressEvent
from visualizr.pipeline.request import GenerationRequest, check_inputs

__all__ = [
    "Cancelled",
    "Components",
    "GenerationRequest",
    "InvalidRequest",
    "PipelineError",
    "ProgressEvent",
    "check_inputs",
]
