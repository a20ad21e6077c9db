"""What a client needs to build generation forms beyond the model cards: the character catalogue, the prompt
length, the default motion strength and where job updates stream (the studio page inlines it). The styles a model
takes are on its details (``capabilities.styles``)."""

from __future__ import annotations

from typing import Any

from visualizr import __version__
from visualizr.frontend.generation.intake import characters
from visualizr.frontend.generation.intake.from_image import DEFAULT_MOTION_STRENGTH
from visualizr.frontend.generation.schemas import MAX_PROMPT_CHARS
from visualizr.frontend.paths import WS_PATH


def client_options() -> dict[str, Any]:
    return {
        "version": __version__,
        "ws_path": WS_PATH,
        "max_prompt_chars": MAX_PROMPT_CHARS,
        "default_motion_strength": DEFAULT_MOTION_STRENGTH,
        "characters": {name: c.appearance for name, c in characters.CHARACTERS.items()},
        "actions": list(characters.ACTIONS),
        "emotions": list(characters.EMOTIONS),
        "backgrounds": list(characters.BACKGROUNDS),
        "defaults": {
            "action": characters.DEFAULT_ACTION,
            "emotion": characters.DEFAULT_EMOTION,
            "background": characters.DEFAULT_BACKGROUND,
        },
    }
