"""Validate ``POST /api/v1/generate/character-animation`` into an ordinary generation job.

The prompt is composed from the character catalogue (``generation.characters``); ``animation_style`` is one of the
API's styles (``frontend.styles``; absent: none), applied as ``style`` is on text-to-video; ``resolution`` ("WxH")
is checked against the card's width/height ranges as one field; ``duration_seconds`` becomes
``round(duration x fps)`` frames at the card's default fps; ``num_inference_steps`` (optional) is checked against
the card, guidance takes the card's default. Unknown ``character_id``: 400 INVALID_PARAMETERS naming the field
and listing the known ids (the reference has no character error code).
"""

from __future__ import annotations

import re

from visualizr.frontend.catalog import ModelCatalog
from visualizr.frontend.errors import InvalidParametersError
from visualizr.frontend.generation.intake.characters import (
    CHARACTERS,
    DEFAULT_ACTION,
    DEFAULT_BACKGROUND,
    DEFAULT_EMOTION,
    MAX_WORD_CHARS,
    compose_prompt,
)
from visualizr.frontend.generation.intake.validation import (
    RandomSeed,
    ValidatedRequest,
    check_negative_prompt,
    check_resolution,
    check_text,
    default_of,
    frames_for_duration,
    resolve_card,
    resolve_parameters,
    resolve_seed,
)
from visualizr.frontend.generation.schemas import CharacterAnimationRequest
from visualizr.frontend.jobs.record import KIND_CHARACTER, GenerationParameters
from visualizr.frontend.styles import check_style
from visualizr.model_card import ModelCard

_RESOLUTION_RE = re.compile(r"^\s*([0-9]{1,5})\s*[xX]\s*([0-9]{1,5})\s*$")


def parse_resolution(card: ModelCard, resolution: str | None) -> tuple[int, int]:
    """(width, height) of a ``WxH`` resolution (the card's default size when absent), within the card."""
    if resolution is None:
        width, height = int(default_of(card, "width")), int(default_of(card, "height"))
    else:
        match = _RESOLUTION_RE.match(resolution)
        if match is None:
            raise InvalidParametersError(
                f"resolution must look like '512x512', got {resolution[:40]!r}",
                {"field": "resolution", "value": resolution[:40], "reason": "expected WIDTHxHEIGHT"},
            )
        width, height = int(match.group(1)), int(match.group(2))
    check_resolution(card, width, height)
    return width, height


def _word(value: str | None, field: str, default: str) -> str:
    word = check_text(value, field, MAX_WORD_CHARS)
    if word is None:
        return default
    if not word:
        raise InvalidParametersError(f"{field} must not be empty", {"field": field})
    return word


def validate_character_request(
    req: CharacterAnimationRequest, catalog: ModelCatalog, *, random_seed: RandomSeed = None
) -> ValidatedRequest:
    if req.character_id is None:
        raise InvalidParametersError(
            "character_id is required", {"field": "character_id", "reason": "required", "known": sorted(CHARACTERS)}
        )
    if req.character_id not in CHARACTERS:
        shown = req.character_id[:40]
        raise InvalidParametersError(
            f"Unknown character_id {shown!r}; known characters: {', '.join(sorted(CHARACTERS))}",
            {"field": "character_id", "value": shown, "known": sorted(CHARACTERS)},
        )
    words = {
        "action": _word(req.action, "action", DEFAULT_ACTION),
        "emotion": _word(req.emotion, "emotion", DEFAULT_EMOTION),
        "background": _word(req.background, "background", DEFAULT_BACKGROUND),
    }
    composed = compose_prompt(req.character_id, **words)
    card = resolve_card(catalog, req.model, KIND_CHARACTER)
    style = check_style(req.animation_style, "animation_style", card)
    width, height = parse_resolution(card, req.resolution)
    fps = int(default_of(card, "fps"))
    num_frames = frames_for_duration(card, req.duration_seconds, fps)
    values = resolve_parameters(
        card,
        {
            "width": width,
            "height": height,
            "fps": fps,
            "num_frames": num_frames,
            "num_inference_steps": req.num_inference_steps,
        },
        {"width": "resolution", "height": "resolution", "num_frames": "duration_seconds"},
    )
    negative = composed.negative_prompt if card.capabilities.supports_negative_prompt else ""
    return ValidatedRequest(
        card=card,
        prompt=composed.prompt,
        negative_prompt=check_negative_prompt(negative, card),
        style=style,
        parameters=GenerationParameters(seed=resolve_seed(req.seed, random_seed), **values),
        kind=KIND_CHARACTER,
    )
