"""Styles: named prompt templates and negative-prompt additions that the API wraps around a request's prompt.

``style`` (``POST /api/v1/generate/video``) and ``animation_style`` (character animation) take the same table. A
style applies to a model that takes a prompt (``styles_for``); the API sends the model ``template`` with
``{prompt}`` replaced by the request's prompt (a character's composed description) and the style's ``negative``
appended to the request's negative prompt. The job keeps the request's own prompt and the style's name, so the
gallery shows what the user wrote and a re-run applies the style once. README ("Styles") lists the table.
"""

from __future__ import annotations

from typing import Final

import msgspec

from visualizr.frontend.errors import InvalidParametersError
from visualizr.frontend.jobs.record import KIND_TEXT
from visualizr.model_card import ModelCard

PROMPT_SLOT: Final = "{prompt}"


class Style(msgspec.Struct, frozen=True):
    template: str  # the prompt the model gets, PROMPT_SLOT standing for the request's prompt
    negative: str  # added to the request's negative prompt


STYLES: Final[dict[str, Style]] = {
    "cinematic": Style(
        "cinematic film still of {prompt}, shallow depth of field, anamorphic lens, dramatic lighting, film grain",
        "cartoon, anime, illustration, painting, flat lighting",
    ),
    "natural": Style(
        "{prompt}, natural light, true-to-life colors, smooth lifelike motion",
        "oversaturated, artificial lighting, stylized, jerky motion",
    ),
    "anime": Style(
        "anime style {prompt}, cel shading, clean line art, vibrant colors, key visual",
        "photo, photorealistic, realism, 3d render",
    ),
    "photorealistic": Style(
        "photograph of {prompt}, photorealistic, 35mm lens, sharp focus, high dynamic range, fine detail",
        "cartoon, anime, illustration, painting, drawing, 3d render, cgi",
    ),
    "3d": Style(
        "3d render of {prompt}, octane render, soft global illumination, volumetric light, highly detailed",
        "photo, flat 2d, sketch, painting, low poly",
    ),
    "cartoon": Style(
        "cartoon of {prompt}, bold outlines, flat bright colors, playful animation",
        "photo, photorealistic, realism, 3d render",
    ),
    "watercolor": Style(
        "watercolor painting of {prompt}, soft washes, paper texture, gentle colors",
        "photo, 3d render, hard digital edges",
    ),
}


def takes_prompt(card: ModelCard) -> bool:
    """Whether the model makes videos from a prompt (so that a style can shape it): a text-to-video model, or an
    image-to-video one with a keyframe stage (its text requests' first frame is made from the prompt)."""
    return card.type == KIND_TEXT or card.capabilities.text_to_video_via_keyframe


def styles_for(card: ModelCard) -> list[str]:
    """The styles a model takes: every style for a model that takes a prompt, none otherwise."""
    return list(STYLES) if takes_prompt(card) else []


def check_style(value: str | None, field: str, card: ModelCard) -> str | None:
    """The style's name (case and surrounding space ignored), None when absent; INVALID_PARAMETERS naming
    ``field`` and listing the known styles when the model takes no such style."""
    if value is None:
        return None
    known = styles_for(card)
    name = value.strip().lower()
    if name in known:
        return name
    shown = value[:40]
    raise InvalidParametersError(
        f"Unknown {field} {shown!r}; model {card.id!r} takes the styles: {', '.join(known) or 'none'}",
        {"field": field, "value": shown, "known": known},
    )


def styled(prompt: str, negative_prompt: str, style: str | None) -> tuple[str, str]:
    """(prompt, negative prompt) as the model gets them: ``style``'s template around the prompt and its negative
    after the request's own. An absent style, or a name no longer in the table (an old job), leaves them as they
    are."""
    chosen = STYLES.get(style or "")
    if chosen is None:
        return prompt, negative_prompt
    negative = ", ".join(part for part in (negative_prompt, chosen.negative) if part)
    return chosen.template.replace(PROMPT_SLOT, prompt), negative
