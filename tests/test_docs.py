"""Docs that are derived from code stay equal to it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.spec_reference import SHARED_SPEC, VENDORED_SPEC
from visualizr import names
from visualizr.families import FAMILY_NAMES, get_family
from visualizr.triton.pipeline_io import markdown_table

ARCHITECTURE = Path(__file__).resolve().parent.parent / "docs" / "ARCHITECTURE.md"


def test_architecture_shows_the_pipeline_io_table() -> None:
    text = ARCHITECTURE.read_text()
    families = [get_family(name) for name in FAMILY_NAMES]
    assert markdown_table(names.PIPELINE_INPUTS.values(), families) in text
    assert markdown_table(names.PIPELINE_OUTPUTS.values()) in text


def test_the_vendored_reference_is_the_shared_one() -> None:
    if not SHARED_SPEC.is_file():
        pytest.skip("no ../shared/spec beside this checkout: the tests read the vendored copy")
    assert VENDORED_SPEC.read_text() == SHARED_SPEC.read_text()
