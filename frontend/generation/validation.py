"""Decode and validate a generation request against the model card of the requested model.

Order of checks: JSON syntax, field types and presence (INVALID_PARAMETERS, also for a missing, null or
non-string prompt), the prompt's content: empty after strip or too long (INVALID_PROMPT), the model
(MODEL_NOT_FOUND), then every numeric parameter against the card's range and step (INVALID_PARAMETERS).
Error details always name the offending ``field``.
"""

from __future__ import annotations

import math
import re
import secrets
from typing import Any

import msgspec

from frontend.errors import InvalidParametersError, InvalidPromptError
from frontend.generation.schemas import (
    DEFAULT_MODEL,
    MAX_PROMPT_CHARS,
    MAX_SEED,
    MAX_STYLE_CHARS,
    GenerateVideoRequest,
    GenerationParameters,
)
from frontend.models_catalog import ModelCatalog
from visualizr.model_card import ModelCard, ParameterRange

_AT_FIELD_RE = re.compile(r"^(?P<reason>.*?) - at `\$\.(?P<field>[A-Za-z0-9_]+)[^`]*`$")
_UNKNOWN_FIELD_RE = re.compile(r"^Object contains unknown field `(?P<field>[^`]*)`")

# Used only where a model card does not describe a parameter.
FALLBACK_RANGES: dict[str, ParameterRange] = {
    "width": ParameterRange(
        min=64, max=1024, default=512, description="Frame width in pixels", multiple_of=8
    ),
    "height": ParameterRange(
        min=64, max=1024, default=512, description="Frame height in pixels", multiple_of=8
    ),
    "num_frames": ParameterRange(min=1, max=64, default=16, description="Frames to generate"),
    "fps": ParameterRange(min=1, max=60, default=8, description="Frames per second of the video"),
    "num_inference_steps": ParameterRange(min=1, max=100, default=25, description="Denoising steps"),
    "guidance_scale": ParameterRange(min=1.0, max=20.0, default=7.5, description="Classifier-free guidance"),
}
_INT_PARAMETERS = ("width", "height", "num_frames", "fps", "num_inference_steps")
# Pixels per latent cell: width/height must be multiples of it whatever the card says.
_PIXEL_MULTIPLE = 8


class ValidatedRequest(msgspec.Struct, frozen=True):
    card: ModelCard
    prompt: str
    negative_prompt: str
    style: str | None
    parameters: GenerationParameters


def decode_request(body: bytes) -> GenerateVideoRequest:
    if not body.strip():
        raise InvalidParametersError(
            "Request body must be a JSON object", {"field": None, "reason": "empty body"}
        )
    try:
        return msgspec.json.decode(body, type=GenerateVideoRequest)
    except msgspec.ValidationError as exc:
        text = str(exc)
        match = _AT_FIELD_RE.match(text)
        if match:
            field = match.group("field")
            reason = match.group("reason").replace(" | null", "")
            raise InvalidParametersError(
                f"Invalid value for {field!r}: {reason}", {"field": field, "reason": reason}
            ) from None
        match = _UNKNOWN_FIELD_RE.match(text)
        if match:
            field = match.group("field")
            raise InvalidParametersError(
                f"Unknown field {field!r}", {"field": field, "reason": "unknown field"}
            ) from None
        raise InvalidParametersError(
            f"Invalid request body: {text}", {"field": None, "reason": text}
        ) from None
    except msgspec.DecodeError as exc:
        raise InvalidParametersError("Malformed JSON body", {"field": None, "reason": str(exc)}) from None


def _range(card: ModelCard, name: str) -> ParameterRange:
    return card.parameters.get(name) or FALLBACK_RANGES[name]


def _check_range(name: str, value: float, rng: ParameterRange, multiple_of: int | None) -> None:
    if value < rng.min or value > rng.max:
        raise InvalidParametersError(
            f"{name} must be between {rng.min} and {rng.max}, got {value}",
            {"field": name, "value": value, "min": rng.min, "max": rng.max},
        )
    if multiple_of and int(value) % multiple_of != 0:
        raise InvalidParametersError(
            f"{name} must be a multiple of {multiple_of}, got {value}",
            {"field": name, "value": value, "multiple_of": multiple_of},
        )


def validate_request(
    req: GenerateVideoRequest, catalog: ModelCatalog, *, random_seed: Any = None
) -> ValidatedRequest:
    if req.prompt is None:
        raise InvalidParametersError("prompt is required", {"field": "prompt", "reason": "required"})
    prompt = req.prompt.strip()
    if not prompt:
        raise InvalidPromptError("Prompt must not be empty", {"field": "prompt"})
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InvalidPromptError(
            f"Prompt is longer than {MAX_PROMPT_CHARS} characters",
            {"field": "prompt", "max_length": MAX_PROMPT_CHARS},
        )
    negative = (req.negative_prompt or "").strip()
    if len(negative) > MAX_PROMPT_CHARS:
        raise InvalidParametersError(
            f"negative_prompt is longer than {MAX_PROMPT_CHARS} characters",
            {"field": "negative_prompt", "max_length": MAX_PROMPT_CHARS},
        )
    if req.style is not None and len(req.style) > MAX_STYLE_CHARS:
        raise InvalidParametersError(
            f"style is longer than {MAX_STYLE_CHARS} characters",
            {"field": "style", "max_length": MAX_STYLE_CHARS},
        )

    card = catalog.get(req.model if req.model is not None else DEFAULT_MODEL)
    if card.type != "text-to-video":
        raise InvalidParametersError(
            f"Model {card.id!r} does not generate video from text (type {card.type!r})",
            {"field": "model", "value": card.id, "type": card.type},
        )
    if negative and not card.capabilities.supports_negative_prompt:
        raise InvalidParametersError(
            f"Model {card.id!r} does not support a negative prompt", {"field": "negative_prompt"}
        )

    values: dict[str, Any] = {}
    for name in (*_INT_PARAMETERS, "guidance_scale"):
        rng = _range(card, name)
        given = getattr(req, name)
        value = rng.default if given is None else given
        value = float(value) if name == "guidance_scale" else int(value)
        multiple = rng.multiple_of
        if name in ("width", "height"):
            multiple = math.lcm(multiple or 1, _PIXEL_MULTIPLE)
        _check_range(name, value, rng, multiple if name in _INT_PARAMETERS else None)
        values[name] = value

    if req.seed is None:
        seed = int(random_seed()) if random_seed is not None else secrets.randbelow(2**32)
    else:
        seed = req.seed
        if seed < 0 or seed > MAX_SEED:
            raise InvalidParametersError(
                f"seed must be between 0 and {MAX_SEED}, got {seed}",
                {"field": "seed", "value": seed, "min": 0, "max": MAX_SEED},
            )
    return ValidatedRequest(
        card=card,
        prompt=prompt,
        negative_prompt=negative,
        style=req.style,
        parameters=GenerationParameters(seed=seed, **values),
    )
