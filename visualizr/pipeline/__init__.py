"""What every family's denoising loop shares: the request, progress events, errors, the Components protocol
and the loop skeleton (``visualizr.pipeline.diffusion``). The loops themselves live in ``visualizr.families``."""

from visualizr.pipeline.components import Components
from visualizr.pipeline.errors import Cancelled, InvalidRequest, PipelineError
from visualizr.pipeline.progress import ProgressEvent
from visualizr.pipeline.request import GenerationRequest, check_common_inputs

__all__ = [
    "Cancelled",
    "Components",
    "GenerationRequest",
    "InvalidRequest",
    "PipelineError",
    "ProgressEvent",
    "check_common_inputs",
]
