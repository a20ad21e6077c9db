"""Hostile input shared by the unit and integration tests: numbers no model card allows, spelled every way a
client can send them, and the request fields they go into."""

from __future__ import annotations

HUGE = "9" * 4000  # 10**4000 - 1: beyond any machine integer and any float
# JSON number literals (JSON has no NaN or Infinity); none is inside any card's range.
JSON_NUMBERS = (
    HUGE,
    "-" + HUGE,
    "1e308",
    "-1e308",
    "1.7976931348623157e308",
    "1e999",
    "-1e999",
    "18446744073709551616",  # 2**64
    "9223372036854775808",  # 2**63: one past the largest seed
    "-9223372036854775809",
    "5e-324",
)
# Multipart text fields can also spell NaN, the infinities and negative zero.
FORM_NUMBERS = (*JSON_NUMBERS, "nan", "NaN", "-nan", "inf", "-inf", "Infinity", "-Infinity", "1e999", "-0.0")

VIDEO_FIELDS = ("width", "height", "num_frames", "fps", "num_inference_steps", "guidance_scale", "seed")
CHARACTER_FIELDS = ("duration_seconds", "seed")
IMAGE_FIELDS = (
    "duration_seconds",
    "fps",
    "motion_strength",
    "width",
    "height",
    "seed",
    "num_inference_steps",
    "guidance_scale",
)


def json_body(base: str, field: str, literal: str) -> bytes:
    """``base`` (a JSON object's members, without braces) plus ``"field": literal``, the literal as written."""
    return f'{{{base}, "{field}": {literal}}}'.encode()
