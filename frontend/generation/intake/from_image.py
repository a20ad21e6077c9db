"""Validate ``POST /api/v1/generate/video/from-image`` (multipart/form-data) into an ordinary generation job.

Fields: ``image`` (file, required), ``motion_prompt`` (the prompt: missing or empty -> INVALID_PROMPT; a
model without a prompt, Stable Video Diffusion, does not use it), ``duration_seconds`` (-> ``round(duration x
fps)`` frames; absent: the card's default frame count), ``fps``, ``motion_strength`` (0 < x <= 1, default
``DEFAULT_MOTION_STRENGTH``) and, beyond the reference, ``model`` (absent: the repository's image-to-video model,
see ``validation.default_model``), ``width``, ``height``, ``negative_prompt``, ``seed``, ``num_inference_steps``,
``guidance_scale``, and ``end_image`` (file, keyframes: the video ends at it; only for a model whose card has
``supports_end_image``, else INVALID_PARAMETERS naming it; fitted like the image). The route decodes the form
into ``ImageToVideoForm`` (``frontend.bodies``): empty text fields count as absent (HTML forms send them);
unknown fields, repeated fields and non-numbers are INVALID_PARAMETERS naming the field, as in the JSON
endpoint.

``motion_strength`` m is what the model's family makes of it (``visualizr.families``, ``Family.motion``):
AnimateDiff's img2img ``strength`` = m; Stable Video Diffusion's ``motion_bucket_id`` = floor(255 m) and
``noise_aug_strength`` = 0.04 m (m = 0.5 gives SVD's defaults, 127 and 0.02).

Order of checks: form syntax and field types (the image a file part), the prompt, the model, the end image's
support, motion_strength, the parameters, then the image's header, whose aspect ratio sets a missing
width/height (``output_size``); only then are its pixels decoded (in a thread, at the scale the output needs).
"""

from __future__ import annotations

import asyncio
import math
from typing import Final

import numpy as np
from litestar.datastructures import UploadFile

from visualizr.families import FAMILY_NAMES, get_family
from visualizr.frontend.catalog import ModelCatalog
from visualizr.frontend.errors import InvalidParametersError, InvalidPromptError
from visualizr.frontend.generation.intake.validation import (
    RandomSeed,
    ValidatedRequest,
    check_negative_prompt,
    check_prompt,
    default_of,
    frames_for_duration,
    resolve_card,
    resolve_parameters,
    resolve_seed,
    size_limits,
)
from visualizr.frontend.generation.schemas import ImageToVideoForm
from visualizr.frontend.infra import images
from visualizr.frontend.jobs.record import KIND_IMAGE, GenerationParameters
from visualizr.model_card import ModelCard

DEFAULT_MOTION_STRENGTH: Final = 0.7
PROMPT_FIELD: Final = "motion_prompt"


def _strength(value: float | None) -> float:
    strength = DEFAULT_MOTION_STRENGTH if value is None else value
    # checked as the pipeline gets it (FP32): 5e-324 is a positive double but 0 in FP32
    if not (math.isfinite(strength) and 0 < strength <= 1 and np.float32(strength) > 0):
        raise InvalidParametersError(
            f"motion_strength must be greater than 0 and at most 1, got {strength}",
            {"field": "motion_strength", "value": strength, "min_exclusive": 0, "max": 1},
        )
    return strength


def motion_parameters(card: ModelCard, motion_strength: float) -> dict[str, int | float]:
    """The GenerationParameters fields ``motion_strength`` sets for the card's family."""
    if card.family in FAMILY_NAMES:
        return get_family(card.family).motion(motion_strength)
    return {"strength": motion_strength}


async def read_upload(part: UploadFile) -> bytes:
    """The bytes of the ``image`` file part (at most MAX_IMAGE_BYTES + 1 are read)."""
    data = await part.read(images.MAX_IMAGE_BYTES + 1)
    images.check_size(len(data))
    return data


def _fit(value: float, limits: tuple[int, int, int]) -> int:
    low, high, step = limits
    return min(high, max(low, round(value / step) * step))


def output_size(card: ModelCard, image_size: tuple[int, int], width: int | None, height: int | None) -> tuple[int, int]:
    """(width, height) of the video: given sizes as they are (validated later against the card); a missing
    one follows the image's aspect ratio; both missing fit the image inside the card's default size."""
    image_w, image_h = image_size
    aspect = image_w / image_h
    w_limits, h_limits = size_limits(card, "width"), size_limits(card, "height")
    if width is not None and height is not None:
        return width, height
    if width is not None:
        return width, _fit(width / aspect, h_limits)
    if height is not None:
        return _fit(height * aspect, w_limits), height
    box_w, box_h = float(default_of(card, "width")), float(default_of(card, "height"))
    scale = min(box_w / image_w, box_h / image_h)
    return _fit(image_w * scale, w_limits), _fit(image_h * scale, h_limits)


def _fitted_png(source: images.SourceImage, width: int, height: int) -> bytes:
    return images.png_bytes(source.fitted(width, height))


async def validate_image_request(
    form: ImageToVideoForm, catalog: ModelCatalog, *, random_seed: RandomSeed = None
) -> ValidatedRequest:
    prompt = check_prompt(form.motion_prompt, PROMPT_FIELD, required_error=InvalidPromptError)
    negative = check_negative_prompt(form.negative_prompt)
    card = resolve_card(catalog, form.model, KIND_IMAGE)
    negative = check_negative_prompt(negative, card)
    if form.end_image is not None and not card.capabilities.supports_end_image:
        raise InvalidParametersError(
            f"Model {card.id!r} does not support an end image (keyframes)", {"field": "end_image", "model": card.id}
        )
    strength = _strength(form.motion_strength)
    given: dict[str, float | None] = {
        name: getattr(form, name) for name in ("width", "height", "fps", "num_inference_steps", "guidance_scale")
    }
    fps = int(resolve_parameters(card, given)["fps"])  # everything but the duration, before decoding the image
    num_frames = frames_for_duration(card, form.duration_seconds, fps)
    seed = resolve_seed(form.seed, random_seed)
    data = await read_upload(form.image)
    source = await asyncio.to_thread(images.open_image, data)  # the header (a PNG's EXIF may need more)
    width, height = output_size(card, source.size, form.width, form.height)
    values = resolve_parameters(card, {**given, "width": width, "height": height, "num_frames": num_frames})
    png = await asyncio.to_thread(_fitted_png, source, width, height)
    end_png = None
    if form.end_image is not None:
        end_source = await asyncio.to_thread(images.open_image, await read_upload(form.end_image))
        end_png = await asyncio.to_thread(_fitted_png, end_source, width, height)
    end_parameters = {"end_image": True} if end_png is not None else {}
    return ValidatedRequest(
        card=card,
        prompt=prompt,
        negative_prompt=negative,
        style=None,
        parameters=GenerationParameters(seed=seed, **motion_parameters(card, strength), **end_parameters, **values),
        kind=KIND_IMAGE,
        source_png=png,
        end_png=end_png,
    )
