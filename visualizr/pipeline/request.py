"""One generation request as the denoising loops see it (every family: one request type), and the checks they
share."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import numpy as np

from visualizr import names
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
    # Image-to-video: the source image, uint8 [height, width, 3] (None: text-to-video). Left out of repr (the
    # logs would hold the pixels); equality compares its pixels, hashing ignores it.
    image: np.ndarray | None = field(default=None, repr=False, compare=False)
    # Keyframes (families whose card has supports_end_image): the video's last frame, like ``image``.
    end_image: np.ndarray | None = field(default=None, repr=False, compare=False)
    # How far the video may depart from the image: the last int(num_inference_steps * strength) of the
    # scheduler's timesteps run (diffusers img2img); 1.0 runs them all. Ignored without an image.
    strength: float = 1.0
    # Micro-conditioning of image-conditioned families (Stable Video Diffusion); None: the family's default.
    fps: int | None = None  # the frame rate the video is conditioned on (the encoded video's)
    motion_bucket_id: int | None = None  # how much the video moves
    noise_aug_strength: float | None = None  # noise added to the conditioning image
    min_guidance_scale: float | None = None  # guidance of the first frame; guidance_scale is the last frame's
    # IP-Adapter (families whose model has one): a reference picture, uint8 [H, W, 3] (None: none; like ``image``
    # left out of repr and compared by its pixels), and the adapter's scale in [0, 1].
    ip_adapter_image: np.ndarray | None = field(default=None, repr=False, compare=False)
    ip_adapter_scale: float = 1.0
    preview_every: int | None = None  # a latent preview every N denoising steps; None, 0: none (nothing computed)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GenerationRequest):
            return NotImplemented
        compared = [f.name for f in fields(self) if f.compare]
        if any(getattr(self, name) != getattr(other, name) for name in compared):
            return False
        pictures = ("image", "end_image", "ip_adapter_image")
        return all(_same_pixels(getattr(self, f), getattr(other, f)) for f in pictures)

    @property
    def do_classifier_free_guidance(self) -> bool:
        """Classifier-free guidance doubles the batch; a scale <= 1 makes it a no-op, so it is skipped."""
        return self.guidance_scale > 1.0


def _same_pixels(first: np.ndarray | None, second: np.ndarray | None) -> bool:
    if first is None or second is None:
        return first is second
    return first.dtype == second.dtype and np.array_equal(first, second)


def check_common_inputs(request: GenerationRequest, config: PipelineConfig) -> None:
    """Raise InvalidRequest for inputs no family's networks can run (each family's loop checks the inputs it
    uses on top). Model-card ranges are the API's business."""
    factor = config.vae_scale_factor
    for name in (names.IN_WIDTH, names.IN_HEIGHT):
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
    if (request.preview_every or 0) < 0:
        raise InvalidRequest(f"preview_every must be >= 0, got {request.preview_every}")
    if request.end_image is not None and request.image is None:
        raise InvalidRequest("end_image needs an image (the first frame)")
    for name in (names.IN_IMAGE, names.IN_END_IMAGE):
        image = getattr(request, name)
        if image is None:
            continue
        expected = (request.height, request.width, 3)
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.shape != expected:
            got = f"{image.dtype} {list(image.shape)}" if isinstance(image, np.ndarray) else type(image).__name__
            raise InvalidRequest(f"{name} must be uint8 [height, width, 3] = {list(expected)}, got {got}")


def check_prompt(request: GenerationRequest) -> None:
    """For the families that take a prompt: a non-empty prompt, a string negative prompt."""
    if not isinstance(request.prompt, str) or not request.prompt.strip():
        raise InvalidRequest("prompt must be a non-empty string")
    if not isinstance(request.negative_prompt, str):
        raise InvalidRequest("negative_prompt must be a string")
