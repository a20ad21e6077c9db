"""The API reference as test data: the JSON examples of ``visualizr-api.md``, keyed by endpoint.

Tests read ``tests/data/visualizr-api.md``, the vendored copy of the reference, so they run the same with or without
``../shared/spec/`` beside the checkout; ``tests/test_docs.py`` keeps the copy equal to the shared one where it is.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

SHARED_SPEC = Path(__file__).resolve().parents[3] / "shared" / "spec" / "visualizr-api.md"
VENDORED_SPEC = Path(__file__).resolve().parents[1] / "data" / "visualizr-api.md"

HTTP_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}
_BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)
_ANY_BLOCK = re.compile(r"```(\w*)\n(.*?)```", re.S)  # the multipart example's block names no language
_LABEL = re.compile(r"\*\*(Response[^*]*?):?\*\*:?|^####\s+(.+)$", re.M)
_REQUEST_LABEL = re.compile(r"\*\*Request Body[^*]*\*\*")
_FORM_LINE = re.compile(r"^(\w+):\s*(.*?)\s*$")


def spec_text() -> str:
    return VENDORED_SPEC.read_text()


@cache
def endpoint_examples() -> dict[tuple[str, str], dict[str, Any]]:
    """{(METHOD, path template): {label: example}} for every ```http block followed by ```json responses;
    labels are the bold "Response (Processing)" captions. WebSocket message examples come under ("WS", title)."""
    text = spec_text()
    examples: dict[tuple[str, str], dict[str, Any]] = {}
    current: tuple[str, str] | None = None
    for block in _BLOCK.finditer(text):
        language, body = block.group(1), block.group(2)
        if language == "http" and body.split()[0] in HTTP_METHODS:
            method, path = body.split()[:2]
            current = (method, path)
            examples.setdefault(current, {})
        elif language == "json":
            preceding = text[: block.start()]
            labels = list(_LABEL.finditer(preceding))
            label_match = labels[-1] if labels else None
            label = (label_match.group(1) or label_match.group(2)).strip() if label_match else ""
            if label_match is not None and label_match.group(2):  # "#### Progress Update" etc.
                examples.setdefault(("WS", label), {})["message"] = json.loads(body)
            elif current is not None and label.startswith("Response"):
                examples[current][label] = json.loads(body)
    return examples


@cache
def request_bodies() -> dict[tuple[str, str], dict[str, Any]]:
    """{(METHOD, path template): body} of every example under a "Request Body" caption: a ```json block as its
    JSON, a multipart/form-data block (``name: value`` lines) as {name: text}, quotes around a value dropped.
    A file field keeps the reference's placeholder text (``[image file]``): the caller sends a file there."""
    text = spec_text()
    bodies: dict[tuple[str, str], dict[str, Any]] = {}
    current: tuple[str, str] | None = None
    previous_end = 0
    for block in _ANY_BLOCK.finditer(text):
        language, body = block.group(1), block.group(2)
        captioned = _REQUEST_LABEL.search(text, previous_end, block.start()) is not None
        previous_end = block.end()
        if language == "http" and body.split() and body.split()[0] in HTTP_METHODS:
            current = (body.split()[0], body.split()[1])
        elif captioned and current is not None:
            bodies[current] = json.loads(body) if language == "json" else _form_fields(body)
    return bodies


def _form_fields(block: str) -> dict[str, str]:
    fields = {}
    for line in block.strip().splitlines():
        match = _FORM_LINE.match(line.strip())
        assert match, f"not a 'name: value' line of a form example: {line!r}"
        fields[match.group(1)] = match.group(2).removeprefix('"').removesuffix('"')
    return fields


def example(method: str, path: str, label: str = "Response") -> Any:
    return endpoint_examples()[(method, path)][label]


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def assert_matches(actual: Any, spec: Any, where: str = "$", maps: frozenset[str] = frozenset()) -> None:
    """Every field of the spec's example is present in ``actual`` with a compatible JSON type (null allowed for
    numbers and strings: values not measured yet). Lists: each element against the example's first element.
    ``maps``: paths whose keys are ids (e.g. ``$.models``): each value is checked against the example's first."""
    if isinstance(spec, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
        if where in maps:
            template = next(iter(spec.values()))
            for key, value in actual.items():
                assert_matches(value, template, f"{where}.{key}", maps)
            return
        missing = sorted(set(spec) - set(actual))
        assert not missing, f"{where}: missing {missing} (has {sorted(actual)})"
        for key, value in spec.items():
            assert_matches(actual[key], value, f"{where}.{key}", maps)
    elif isinstance(spec, list):
        assert isinstance(actual, list), f"{where}: expected a list, got {actual!r}"
        if spec and isinstance(spec[0], dict | list):
            for index, item in enumerate(actual):
                assert_matches(item, spec[0], f"{where}[{index}]", maps)
    elif actual is not None or _kind(spec) not in {"number", "str"}:
        assert _kind(actual) == _kind(spec), f"{where}: {actual!r} is not a {_kind(spec)} like {spec!r}"
