"""The options of the CLI's job commands and their help: what each flag sends, and its default and limits, read
from the model card (``GET /api/v1/models/{id}``) when ``--help`` is asked for and the server answers."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

from visualizr_client import models as m
from visualizr_client._client import VisualizrClient
from visualizr_client._errors import VisualizrError

HELP_TIMEOUT = 2.0  # seconds the help waits for the server before falling back to plain help
MOTION_STRENGTH_DEFAULT = 0.7  # the API's default for image-to-video (visualizr-api.md, README)


@dataclass(frozen=True)
class Flag:
    field: str  # the request field it fills
    kind: type
    text: str  # what it is, for --help


SIZE = {
    "width": Flag("width", int, "video width in pixels"),
    "height": Flag("height", int, "video height in pixels"),
}
TUNING = {
    "steps": Flag("num_inference_steps", int, "denoising steps: more is slower and finer"),
    "guidance": Flag("guidance_scale", float, "how closely to follow the prompt"),
}
SEED = {"seed": Flag("seed", int, "random seed: the same seed and settings give the same video")}
MODEL = {"model": Flag("model", str, "model id (visualizr models)")}
NEGATIVE = {"negative": Flag("negative_prompt", str, "what the video should not show")}
WEBHOOK = {"webhook-url": Flag("webhook_url", str, "where the server POSTs the job's end, signed (README: Webhooks)")}

GENERATE_FLAGS = {
    **SIZE,
    "frames": Flag("num_frames", int, "frames to generate"),
    "fps": Flag("fps", int, "frames per second of the MP4"),
    **TUNING,
    **SEED,
    **NEGATIVE,
    **MODEL,
    "style": Flag("style", str, "a style that shapes the prompt, e.g. cinematic, anime"),
    **WEBHOOK,
}
FROM_IMAGE_FLAGS = {
    "duration": Flag("duration_seconds", float, "length of the video in seconds"),
    "fps": Flag("fps", int, "frames per second of the MP4"),
    "strength": Flag("motion_strength", float, "how far the video may move away from the image"),
    **SIZE,
    **TUNING,
    **SEED,
    **NEGATIVE,
    **MODEL,
    **WEBHOOK,
}
ANIMATE_FLAGS = {
    "action": Flag("action", str, "what the character does, e.g. greeting, talking, dancing"),
    "emotion": Flag("emotion", str, "e.g. happy, calm, surprised"),
    "background": Flag("background", str, "e.g. office, outdoors, space"),
    "duration": Flag("duration_seconds", float, "length of the video in seconds"),
    "resolution": Flag("resolution", str, "WIDTHxHEIGHT"),
    "style": Flag("animation_style", str, "a style that shapes the prompt, e.g. natural, cartoon, anime"),
    "strength": Flag("character_strength", float, "0-1: how much the reference picture conditions (IP-Adapter)"),
    "steps": TUNING["steps"],
    **SEED,
    **MODEL,
    **WEBHOOK,
}
JOB_COMMANDS = ("generate", "from-image", "animate")
IMAGE_TO_VIDEO = "image-to-video"  # a model card's type: animates an image, takes no prompt
CARD_PARAMETERS = ("width", "height", "num_frames", "fps", "num_inference_steps", "guidance_scale")


def _number(value: float | None) -> str:
    return "?" if value is None else f"{value:g}"


def _range(card: m.ModelDetail, name: str) -> str:
    r = card.parameters[name]
    multiple = f", a multiple of {r.multiple_of}" if r.multiple_of else ""
    return f"{_number(r.min)}-{_number(r.max)}{multiple}"


def limits(field: str, card: m.ModelDetail | None) -> str:
    """'<limits>; default <value>' of a request field (from ``card`` where the card says it)."""
    if field == "seed":
        return "0 or more; default: random"
    if field == "motion_strength":
        return f"above 0, at most 1; default {MOTION_STRENGTH_DEFAULT}"
    if field in ("negative_prompt", "action", "emotion", "background"):
        return "free text; default: the server's"
    if field == "webhook_url":
        return "an http(s) URL; default: none"
    if card is None:
        return "limits and default: see the model card"
    if field in ("style", "animation_style"):
        styles = card.capabilities.styles if card.capabilities else []
        return f"one of {', '.join(styles)}; default: none" if styles else f"{card.id} takes no style"
    params = card.parameters
    if field == "model":
        return f"default: the server's; these limits are {card.id}'s"
    if field in params:
        return f"{_range(card, field)}; default {_number(params[field].default)}"
    if field == "resolution" and {"width", "height"} <= params.keys():
        default = f"{_number(params['width'].default)}x{_number(params['height'].default)}"
        return f"width {_range(card, 'width')}, height {_range(card, 'height')}; default {default}"
    caps = card.capabilities
    if field == "duration_seconds" and caps is not None and {"num_frames", "fps"} <= params.keys():
        frames, fps = params["num_frames"].default, params["fps"].default
        default = f"{frames / fps:g} s ({_number(frames)} frames)" if frames and fps else "the card's"
        return f"{_number(caps.min_duration_seconds)}-{_number(caps.max_duration_seconds)} s; default {default}"
    return "default: the server's"


def card_note(card: m.ModelDetail | None) -> str:
    """The help's epilog: whose limits it shows, or why it shows none."""
    if card is None:
        return (
            "The server did not answer, so the model's limits and defaults are not shown: start it or pass --url "
            "(VISUALIZR_URL), or read them with `visualizr models MODEL_ID`."
        )
    return f"Limits and defaults are those of model {card.id!r} on the server (--model picks another)."


def add_flags(command: argparse.ArgumentParser, flags: dict[str, Flag], card: m.ModelDetail | None) -> None:
    command.epilog = card_note(card)
    for flag, spec in flags.items():
        metavar = "N" if spec.kind is int else "X" if spec.kind is float else "TEXT"
        command.add_argument(
            f"--{flag}", type=spec.kind, metavar=metavar, help=f"{spec.text} ({limits(spec.field, card)})"
        )


def default_model(models: Sequence[m.ModelSummary], command: str) -> str | None:
    """The model a job command runs on without --model, as the server picks it: from-image on the first
    image-to-video model (Stable Video Diffusion), the others on the first model that takes a prompt."""
    image_only = [x.id for x in models if x.type == IMAGE_TO_VIDEO]
    if command == "from-image" and image_only:
        return image_only[0]
    return next((x.id for x in models if x.type != IMAGE_TO_VIDEO), image_only[0] if image_only else None)


def card_for_help(argv: Sequence[str], url: str, api_key: str | None) -> m.ModelDetail | None:
    """The model card to show limits from, when ``argv`` asks for a job command's help; None otherwise or when
    the server does not answer within HELP_TIMEOUT."""
    if not {"-h", "--help"} & set(argv) or not set(JOB_COMMANDS) & set(argv):
        return None
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--url", default=url)
    pre.add_argument("--api-key", default=api_key)
    pre.add_argument("--model")
    known, _ = pre.parse_known_args(argv)
    try:
        with VisualizrClient(known.url, api_key=known.api_key, timeout=HELP_TIMEOUT) as client:
            command = next(a for a in argv if a in JOB_COMMANDS)
            model = known.model or default_model(client.list_models(), command)
            return client.get_model(model) if model else None
    except (VisualizrError, ValueError):
        return None
