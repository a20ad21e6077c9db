"""Validate a generation request, decoded by its route (``frontend.bodies``), against the model card of the
requested model.

Order of checks: JSON syntax and field types (INVALID_PARAMETERS, while decoding), presence of the prompt
(INVALID_PARAMETERS for a missing or null one), the prompt's content: empty after strip or too long
(INVALID_PROMPT), the model (MODEL_NOT_FOUND), the style (one the model takes, ``frontend.styles``), then every
numeric parameter against the card's range and step (INVALID_PARAMETERS). Error details always name the
offending ``field``.

The helpers below (``check_prompt``, ``resolve_card``, ``resolve_parameters``, ``frames_for_duration``,
``check_resolution``, ``resolve_seed``) are shared by the three kinds of request (text-to-video here,
``from_image`` and ``character`` next to this module).
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from visualizr.frontend.catalog import ModelCatalog
from visualizr.frontend.errors import InvalidParametersError, InvalidPromptError, ModelNotFoundError, VisualizrError
from visualizr.frontend.generation.schemas import (
    DEFAULT_MODEL,
    MAX_PROMPT_CHARS,
    GenerateVideoRequest,
)
from visualizr.frontend.jobs.naming import input_path
from visualizr.frontend.jobs.record import KIND_IMAGE, KIND_TEXT, QUEUED, STEP_QUEUED, GenerationParameters, JobRecord
from visualizr.frontend.styles import check_style
from visualizr.model_card import ModelCard, ParameterRange
from visualizr.pipeline.request import MAX_SEED

SHOWN_DIGITS = 24  # a number echoed in an error is cut to this many characters
_INT_PARAMETERS = ("width", "height", "num_frames", "fps", "num_inference_steps")
PARAMETER_NAMES = (*_INT_PARAMETERS, "guidance_scale")
# Pixels per latent cell: width/height must be multiples of it whatever the card says.
_PIXEL_MULTIPLE = 8
FROM_IMAGE_ROUTE = "/api/v1/generate/video/from-image"


RandomSeed = Callable[[], int] | None


class ValidatedRequest(msgspec.Struct, frozen=True):
    card: ModelCard
    prompt: str
    negative_prompt: str
    style: str | None
    parameters: GenerationParameters
    kind: str = KIND_TEXT
    source_png: bytes | None = None  # image-to-video: the source image, resized to width x height, as PNG
    end_png: bytes | None = None  # keyframes: the end image, likewise
    character_id: str | None = None  # character-animation: the registry's character

    def queued_record(self, request_id: str, created_at: float) -> JobRecord:
        """The job's row as it is first stored: queued, its source image (if any) at ``input_path``."""
        return JobRecord(
            request_id=request_id,
            model=self.card.id,
            prompt=self.prompt,
            negative_prompt=self.negative_prompt,
            style=self.style,
            parameters=self.parameters,
            status=QUEUED,
            progress=0,
            current_step=STEP_QUEUED,
            created_at=created_at,
            kind=self.kind,
            source_image=input_path(request_id) if self.source_png is not None else None,
            character_id=self.character_id,
        )


def _range(card: ModelCard, name: str) -> ParameterRange:
    rng = card.parameters.get(name)
    if rng is None:
        raise ModelNotFoundError(
            f"Model {card.id!r} is not available: its model card has no range for {name!r}",
            {"model": card.id, "reason": f"model card without parameter {name!r}"},
        )
    return rng


def _pixel_multiple(card: ModelCard, name: str) -> int:
    return math.lcm(_range(card, name).multiple_of or 1, _PIXEL_MULTIPLE)


def _check_range(name: str, value: float, rng: ParameterRange, multiple_of: int | None, field: str) -> None:
    # ints compare exactly whatever their size (10**4000 is just out of range); floats must be finite
    if (isinstance(value, float) and not math.isfinite(value)) or value < rng.min or value > rng.max:
        shown = shown_number(value)
        raise InvalidParametersError(
            f"{field} must be between {rng.min} and {rng.max}, got {shown}",
            {"field": field, "value": shown, "min": rng.min, "max": rng.max},
        )
    if multiple_of and int(value) % multiple_of != 0:
        raise InvalidParametersError(
            f"{field} must be a multiple of {multiple_of}, got {value}",
            {"field": field, "value": value, "multiple_of": multiple_of},
        )


def shown_number(value: float) -> float | str:
    """A number as an error may echo it: as it is, or cut short (as text) when it is huge."""
    text = str(value)
    return value if len(text) <= SHOWN_DIGITS else text[:SHOWN_DIGITS] + "..."


def check_prompt(
    text: str | None, field: str = "prompt", *, required_error: type[VisualizrError] = InvalidParametersError
) -> str:
    """The stripped prompt; INVALID_PROMPT when empty or too long (``required_error`` when absent)."""
    if text is None:
        raise required_error(f"{field} is required", {"field": field, "reason": "required"})
    prompt = text.strip()
    if not prompt:
        raise InvalidPromptError(f"{field} must not be empty", {"field": field})
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InvalidPromptError(
            f"{field} is longer than {MAX_PROMPT_CHARS} characters", {"field": field, "max_length": MAX_PROMPT_CHARS}
        )
    return prompt


def check_text(value: str | None, field: str, max_chars: int) -> str | None:
    """An optional short text field, stripped; None when absent."""
    if value is None:
        return None
    if len(value) > max_chars:
        raise InvalidParametersError(
            f"{field} is longer than {max_chars} characters", {"field": field, "max_length": max_chars}
        )
    return value.strip()


def serves(card: ModelCard, kind: str) -> bool:
    """Whether a model serves a kind of request. Every kind runs the same pipeline model; image-to-video needs
    its optional ``image``/``strength`` inputs (``capabilities.supports_image_to_video``), text an image-to-video
    model with a keyframe stage (``capabilities.text_to_video_via_keyframe``)."""
    if kind == KIND_IMAGE:
        return card.type == KIND_IMAGE or card.capabilities.supports_image_to_video
    return card.type == KIND_TEXT or card.capabilities.text_to_video_via_keyframe


def default_model(catalog: ModelCatalog, kind: str) -> str:
    """The model a request without ``model`` runs on: for image-to-video the repository's first model whose type
    is image-to-video (Stable Video Diffusion in the demo; a job for an unloaded model loads it), else
    DEFAULT_MODEL (whose family may serve images too); DEFAULT_MODEL for the other kinds."""
    if kind == KIND_IMAGE:
        return next((card.id for card in catalog.cards() if card.type == KIND_IMAGE), DEFAULT_MODEL)
    return DEFAULT_MODEL


def resolve_card(catalog: ModelCatalog, model: str | None, kind: str = KIND_TEXT) -> ModelCard:
    """The model's card (MODEL_NOT_FOUND), checked to serve ``kind`` (INVALID_PARAMETERS naming ``model``)."""
    card = catalog.get(model if model is not None else default_model(catalog, kind))
    if not serves(card, kind):
        hint = f"; it animates an image: use POST {FROM_IMAGE_ROUTE}" if card.type == KIND_IMAGE else ""
        raise InvalidParametersError(
            f"Model {card.id!r} does not serve {kind} requests (type {card.type!r}){hint}",
            {"field": "model", "value": card.id, "type": card.type},
        )
    return card


def check_negative_prompt(text: str | None, card: ModelCard | None = None) -> str:
    """The stripped negative prompt: its length, then (given the card) whether the model supports one."""
    negative = check_text(text, "negative_prompt", MAX_PROMPT_CHARS) or ""
    if negative and card is not None and not card.capabilities.supports_negative_prompt:
        raise InvalidParametersError(
            f"Model {card.id!r} does not support a negative prompt", {"field": "negative_prompt"}
        )
    return negative


def default_of(card: ModelCard, name: str) -> int | float:
    return _range(card, name).default


def resolve_parameters(
    card: ModelCard, given: Mapping[str, float | None], fields: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Every pipeline parameter: ``given[name]`` or the card's default, checked against the card's range and
    step. ``fields`` names the request field to blame for a parameter derived from another one."""
    values: dict[str, Any] = {}
    for name in PARAMETER_NAMES:
        rng = _range(card, name)
        value = given.get(name)
        value = rng.default if value is None else value
        multiple = _pixel_multiple(card, name) if name in ("width", "height") else rng.multiple_of
        field = (fields or {}).get(name, name)
        _check_range(name, value, rng, multiple if name in _INT_PARAMETERS else None, field)
        values[name] = float(value) if name == "guidance_scale" else int(value)
    return values


def frames_for_duration(card: ModelCard, duration: float | None, fps: int, field: str = "duration_seconds") -> int:
    """``round(duration x fps)`` frames, the duration checked against the card (capabilities and num_frames);
    the card's default frame count when ``duration`` is absent."""
    frames = _range(card, "num_frames")
    if duration is None:
        return int(frames.default)
    caps = card.capabilities
    low = max(float(caps.min_duration_seconds), frames.min / fps)
    high = min(float(caps.max_duration_seconds), frames.max / fps)
    in_range = math.isfinite(duration) and low - 1e-9 <= duration <= high + 1e-9
    count = round(duration * fps) if in_range else 0
    if not in_range or not frames.min <= count <= frames.max:
        raise InvalidParametersError(
            f"{field} must be between {low:g} and {high:g} seconds at {fps} fps, got {duration}",
            {"field": field, "value": duration, "min": round(low, 3), "max": round(high, 3), "fps": fps},
        )
    return count


def check_resolution(card: ModelCard, width: int, height: int, field: str = "resolution") -> None:
    """Both sides within the card's range and multiples of its pixel step, blamed on one ``WxH`` field."""
    w, h = _range(card, "width"), _range(card, "height")
    multiple = math.lcm(_pixel_multiple(card, "width"), _pixel_multiple(card, "height"))
    inside = w.min <= width <= w.max and h.min <= height <= h.max
    if not inside or width % multiple or height % multiple:
        raise InvalidParametersError(
            f"{field} must be between {w.min}x{h.min} and {w.max}x{h.max} in multiples of {multiple}, "
            f"got {width}x{height}",
            {
                "field": field,
                "value": f"{width}x{height}",
                "min_resolution": f"{w.min}x{h.min}",
                "max_resolution": f"{w.max}x{h.max}",
                "multiple_of": multiple,
            },
        )


def size_limits(card: ModelCard, name: str) -> tuple[int, int, int]:
    """(lowest, highest, step) of the sizes ``name`` (width or height) may take."""
    rng, step = _range(card, name), _pixel_multiple(card, name)
    return math.ceil(rng.min / step) * step, int(rng.max) // step * step, step


def resolve_seed(seed: int | None, random_seed: RandomSeed = None) -> int:
    if seed is None:
        return int(random_seed()) if random_seed is not None else secrets.randbelow(2**32)
    if seed < 0 or seed > MAX_SEED:
        raise InvalidParametersError(
            f"seed must be between 0 and {MAX_SEED}, got {shown_number(seed)}",
            {"field": "seed", "value": shown_number(seed), "min": 0, "max": MAX_SEED},
        )
    return seed


def validate_request(
    req: GenerateVideoRequest, catalog: ModelCatalog, *, random_seed: RandomSeed = None
) -> ValidatedRequest:
    prompt = check_prompt(req.prompt)
    negative = check_negative_prompt(req.negative_prompt)
    card = resolve_card(catalog, req.model)
    negative = check_negative_prompt(negative, card)
    style = check_style(req.style, "style", card)
    values = resolve_parameters(card, {name: getattr(req, name) for name in PARAMETER_NAMES})
    return ValidatedRequest(
        card=card,
        prompt=prompt,
        negative_prompt=negative,
        style=style,
        parameters=GenerationParameters(seed=resolve_seed(req.seed, random_seed), **values),
    )
