"""The prompt template of ``POST /api/v1/generate/character-animation`` and the built-in characters.

A character of the registry (``frontend.characters``) is a name, a description and reference pictures (which
condition the video where the model can: ``character_request``). ``CHARACTERS`` are the built-ins: their name is
their id, their description the appearance below. The prompt is::

    {name}, {description}, {action phrase}, {emotion phrase}, {background phrase}

(``{name}`` alone when the description is empty), e.g. ``assistant, a friendly humanoid AI assistant with a sleek
white body and soft glowing blue eyes, greeting, waving hello, happy expression, smiling, in a bright modern
office``, and the negative prompt the character's (``COMMON_NEGATIVE`` for every character of the registry).
Known words of each field get a richer phrase (``ACTIONS``, ``EMOTIONS``, ``BACKGROUNDS``); any other word is
used as given (short free text: ``MAX_WORD_CHARS``): an action as it is, an emotion as ``{word} expression``, a
background as ``{word} background``. ``animation_style`` is one of the API's styles (``frontend.styles``), which
wraps this prompt like any other. The same character, words, style and seed give the same video on one model.
"""

from __future__ import annotations

from typing import Final

import msgspec

MAX_WORD_CHARS: Final = 100


class Character(msgspec.Struct, frozen=True):
    appearance: str
    negative_prompt: str = ""


COMMON_NEGATIVE: Final = "blurry, low quality, distorted face, deformed body, extra limbs, text, watermark"

CHARACTERS: Final[dict[str, Character]] = {
    "assistant": Character(
        "a friendly humanoid AI assistant with a sleek white body and soft glowing blue eyes", COMMON_NEGATIVE
    ),
    "robot": Character("a small round service robot with a brushed metal shell and two antenna", COMMON_NEGATIVE),
    "narrator": Character(
        "a middle-aged storyteller with a warm face, a short grey beard and a tweed jacket", COMMON_NEGATIVE
    ),
    "teacher": Character("a cheerful young teacher with glasses, a green cardigan and a notebook", COMMON_NEGATIVE),
    "mascot": Character("a cartoon fox mascot with bright orange fur and a striped scarf", COMMON_NEGATIVE),
}

# Defaults of the optional fields (the reference's example values).
DEFAULT_ACTION: Final = "idle"
DEFAULT_EMOTION: Final = "neutral"
DEFAULT_BACKGROUND: Final = "studio"

ACTIONS: Final = {
    "idle": "standing still, breathing gently",
    "greeting": "greeting, waving hello",
    "talking": "talking to the camera",
    "nodding": "nodding in agreement",
    "thinking": "thinking, hand on chin",
    "pointing": "pointing to the side",
    "walking": "walking forward",
    "dancing": "dancing",
    "celebrating": "celebrating with raised arms",
}
EMOTIONS: Final = {
    "neutral": "neutral expression",
    "happy": "happy expression, smiling",
    "sad": "sad expression",
    "surprised": "surprised expression, wide eyes",
    "angry": "angry expression, frowning",
    "excited": "excited expression, big smile",
    "calm": "calm, relaxed expression",
}
BACKGROUNDS: Final = {
    "studio": "in front of a plain studio backdrop",
    "office": "in a bright modern office",
    "classroom": "in a classroom",
    "outdoors": "outdoors in a sunny park",
    "city": "on a busy city street",
    "space": "in outer space among the stars",
    "home": "in a cozy living room",
}


class CharacterPrompt(msgspec.Struct, frozen=True):
    prompt: str
    negative_prompt: str


def _phrase(word: str, known: dict[str, str], fallback: str) -> str:
    return known.get(word.lower(), fallback.format(word))


def compose_prompt(name: str, character: Character, action: str, emotion: str, background: str) -> CharacterPrompt:
    """The prompt of one animation of the character called ``name`` (before its style)."""
    parts = (
        f"{name}, {character.appearance}" if character.appearance else name,
        _phrase(action, ACTIONS, "{}"),
        _phrase(emotion, EMOTIONS, "{} expression"),
        _phrase(background, BACKGROUNDS, "{} background"),
    )
    return CharacterPrompt(prompt=", ".join(parts), negative_prompt=character.negative_prompt)
