"""One text-to-video generation request as the denoising loop sees it, and its validation."""

from __future__ import annotations

import math
from dataclasses import dataclass

from visualizr.pipeline.errors import InvalidRequest
from visualizr.pipeline_config import PipelineConfig

MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    width: int
    height: int
    num_frames: int
    num_inference_steps: int
    guidance_scale: float
    seed: int
    negative_prompt: str = ""

    @property
    def do_classifier_free_guidance(self) -> bool:
        """Classifier-free guidance doubles the batch; a scale <= 1 makes it a no-op, so it is skipped."""
        return self.guidance_scale > 1.0


def check_inputs(request: GenerationRequest, config: PipelineConfig) -> None:
    """Raise InvalidRequest for inputs no network can run. Model-card ranges are the API's business."""
    if not isinstance(request.prompt, str) or not request.prompt.strip():
        raise InvalidRequest("prompt must be a non-empty string")
    if not isinstance(request.negative_prompt, str):
        raise InvalidRequest("negative_prompt must be a string")
    factor = config.vae_scale_factor
    for name in ("width", "height"):
        value = getattr(request, name)
        if value <= 0 or value % factor:
            raise InvalidRequest(f"{name} must be a positive multiple of {factor}, got {value}")
    if request.num_frames < 1:
        raise InvalidRequest(f"num_frames must be >= 1, got {request.num_frames}")
    if request.num_inference_steps < 1:
        raise InvalidRequest(f"num_inference_steps must be >= 1, got {request.num_inference_steps}")
    if not math.isfinite(request.guidance_scale) or request.guidance_scale < 0:
        raise InvalidRequest(f"guidance_scale must be a finite number >= 0, got {request.guidance_scale}")
    if not 0 <= request.seed <= MAX_SEED:
        raise InvalidRequest(f"seed must be in [0, {MAX_SEED}], got {request.seed}")
