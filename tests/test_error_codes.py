"""Every error code the API can answer with is documented (the reference's table or the README's) and has a typed
error in the SDK."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from visualizr.frontend import errors
from visualizr_client._errors import ERRORS_BY_CODE

REPO_ROOT = Path(__file__).resolve().parent.parent
SPEC = REPO_ROOT.parent / "shared" / "spec" / "visualizr-api.md"


def api_codes() -> dict[str, int]:
    found: dict[str, int] = {}
    pending = [errors.VisualizrError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        found[cls.code] = cls.http_status
    return found


def documented(text: str) -> dict[str, int]:
    """``| `CODE` | status | ... |`` rows of a markdown table."""
    return {code: int(status) for code, status in re.findall(r"^\| `([A-Z_]+)` \| (\d{3}) \|", text, re.M)}


@pytest.mark.skipif(not SPEC.exists(), reason="the spec is not beside the repo")
def test_every_code_is_documented_with_its_status() -> None:
    tables = {**documented(SPEC.read_text()), **documented((REPO_ROOT / "README.md").read_text())}
    assert api_codes() == {code: tables.get(code) for code in api_codes()}


def test_every_code_has_a_typed_sdk_error() -> None:
    assert set(api_codes()) <= set(ERRORS_BY_CODE)
