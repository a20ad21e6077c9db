"""Every error code the API can answer with is documented (the reference's table or the README's) and has a typed
error in the SDK."""

from __future__ import annotations

import re
from pathlib import Path

import visualizr.frontend.app  # noqa: F401 - every domain's error classes, whatever ran before
from tests.support.spec_reference import spec_text
from visualizr.frontend import errors
from visualizr_client._errors import ERRORS_BY_CODE

REPO_ROOT = Path(__file__).resolve().parent.parent


def error_classes() -> dict[str, int]:
    """code -> HTTP status of the error tree's classes, the topmost class of each code (a subclass that only
    changes the status, like 416 for a Range, is a variant of its code)."""
    found: dict[str, int] = {}
    pending = [errors.VisualizrError]
    while pending:
        cls = pending.pop(0)  # breadth first: parents before their subclasses
        pending.extend(cls.__subclasses__())
        found.setdefault(cls.code, cls.http_status)
    return found


def api_codes() -> set[str]:
    """Every code the API answers with: the tree's and those the handler maps other exceptions to."""
    constants = {value for name, value in vars(errors).items() if name.isupper() and value == name}
    return constants | set(error_classes())


def documented(text: str) -> dict[str, int]:
    """``| `CODE` | status | ... |`` rows of a markdown table."""
    return {code: int(status) for code, status in re.findall(r"^\| `([A-Z_]+)` \| (\d{3}) \|", text, re.M)}


def test_every_code_is_documented_with_its_status() -> None:
    tables = {**documented(spec_text()), **documented((REPO_ROOT / "README.md").read_text())}
    assert api_codes() <= set(tables), api_codes() - set(tables)
    assert {code: tables[code] for code in error_classes()} == error_classes()


def test_every_code_has_a_typed_sdk_error() -> None:
    assert api_codes() <= set(ERRORS_BY_CODE), api_codes() - set(ERRORS_BY_CODE)
