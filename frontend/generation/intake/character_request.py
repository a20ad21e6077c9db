"""Validate ``POST /api/v1/generate/character-animation`` into an ordinary generation job.

The character comes from the registry (``frontend.characters``; unknown id: 404 CHARACTER_NOT_FOUND), the prompt
from its name and description (``intake.characters``); ``animation_style`` is one of the API's styles
(``frontend.styles``; absent: none), applied as ``style`` is on text-to-video; ``resolution`` ("WxH") is checked
against the card's width/height ranges as one field; ``duration_seconds`` becomes ``round(duration x fps)``
frames at the card's default fps; ``num_inference_steps`` (optional) is checked against the card, guidance takes
the card's default.

The character's first reference picture, fitted to the video's size as the from-image route fits its image,
conditions the video where the model can: on an IP-Adapter model (``capabilities.supports_ip_adapter``) it is the
adapter's image, at ``character_strength`` (0-1; default the card's ``character_strength`` parameter, else
``DEFAULT_CHARACTER_STRENGTH``); on an image-to-video model (``type`` image-to-video, Stable Video Diffusion) it is
the conditioning image. Elsewhere, or for a character without pictures, the prompt alone describes it.
"""

from __future__ import annotations

import asyncio
import math
import re
from typing import Final

from visualizr.frontend.catalog import ModelCatalog
from visualizr.frontend.errors import InvalidParametersError
from visualizr.frontend.generation.intake.characters import (
    COMMON_NEGATIVE,
    DEFAULT_ACTION,
    DEFAULT_BACKGROUND,
    DEFAULT_EMOTION,
    MAX_WORD_CHARS,
    Character,
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
from visualizr.frontend.infra import images
from visualizr.frontend.jobs.characters import CharacterBook, CharacterRow
from visualizr.frontend.jobs.record import KIND_CHARACTER, KIND_IMAGE, GenerationParameters
from visualizr.frontend.styles import check_style
from visualizr.model_card import ModelCard

DEFAULT_CHARACTER_STRENGTH: Final = 0.6
STRENGTH_PARAMETER: Final = "character_strength"  # the card parameter whose default is the model's strength




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


def conditioning(card: ModelCard) -> str | None:
    """How a reference picture conditions a video of the card: ``"ip_adapter"``, ``"image"`` or None (not at all)."""
    if card.capabilities.supports_ip_adapter:
        return "ip_adapter"
    if card.type == KIND_IMAGE and card.capabilities.supports_image_to_video:
        return "image"
    return None


def character_strength(card: ModelCard, value: float | None) -> float:
    """The adapter scale: the request's (0-1) or the card's default."""
    if value is None:
        given = card.parameters.get(STRENGTH_PARAMETER)
        return float(given.default) if given is not None else DEFAULT_CHARACTER_STRENGTH
    if not (math.isfinite(value) and 0 <= value <= 1):
        raise InvalidParametersError(
            f"character_strength must be from 0 to 1, got {value}",
            {"field": "character_strength", "value": value, "min": 0, "max": 1},
        )
    return value


async def _reference_png(registry: CharacterBook, row: CharacterRow, width: int, height: int) -> bytes:
    """The character's first picture, fitted to width x height (centre crop, Lanczos), as PNG."""
    stored = await registry.picture(row.character_id, 1)
    fitted = await asyncio.to_thread(lambda: images.open_image(stored).fitted(width, height))
    return images.png_bytes(fitted)


async def validate_character_request(
    req: CharacterAnimationRequest,
    catalog: ModelCatalog,
    registry: CharacterBook,
    *,
    random_seed: RandomSeed = None,
) -> ValidatedRequest:
    if req.character_id is None:
        raise InvalidParametersError("character_id is required", {"field": "character_id", "reason": "required"})
    words = {
        "action": _word(req.action, "action", DEFAULT_ACTION),
        "emotion": _word(req.emotion, "emotion", DEFAULT_EMOTION),
        "background": _word(req.background, "background", DEFAULT_BACKGROUND),
    }
    card = resolve_card(catalog, req.model, KIND_CHARACTER)
    by = conditioning(card)
    strength = character_strength(card, req.character_strength)
    row = await registry.resolve(req.character_id)
    composed = compose_prompt(row.name, Character(row.description, COMMON_NEGATIVE), **words)
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
    seed = resolve_seed(req.seed, random_seed)
    pictured = by is not None and bool(row.reference_images)
    reference = await _reference_png(registry, row, width, height) if pictured else None
    adapter = {"character_strength": strength} if pictured and by == "ip_adapter" else {}
    return ValidatedRequest(
        card=card,
        prompt=composed.prompt,
        negative_prompt=check_negative_prompt(negative, card),
        style=style,
        parameters=GenerationParameters(seed=seed, **adapter, **values),
        kind=KIND_CHARACTER,
        source_png=reference,
        character_id=row.character_id,
    )
