"""The copy of the reference's Python SDK example (tests/support/sdk_example.py) stays in step with the spec; the
integration test runs it unchanged against the real server (tests/test_integration_sdk.py)."""

from __future__ import annotations

import pytest

from tests.support.sdk_example import FALLBACK, SPEC, extract, spec_sdk_example, split_example


@pytest.mark.skipif(not SPEC.is_file(), reason="the spec is not beside the repo")
def test_fallback_is_the_spec_example_verbatim() -> None:
    assert extract(SPEC.read_text()) == FALLBACK


def test_example_has_the_client_and_its_usage() -> None:
    source, _ = spec_sdk_example()
    head, usage = split_example(source)
    assert "class VisualizrClient" in head and "def wait_for_completion" in head
    assert "client = VisualizrClient(" in usage
    compile(source, "spec-sdk-example", "exec")
