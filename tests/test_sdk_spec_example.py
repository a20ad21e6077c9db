"""The reference's Python SDK example (tests/support/sdk_example.py reads it from the vendored reference) is whole;
the integration test runs it unchanged against the real server (tests/test_integration_sdk.py)."""

from __future__ import annotations

from tests.support.sdk_example import spec_sdk_example, split_example


def test_example_has_the_client_and_its_usage() -> None:
    source, _ = spec_sdk_example()
    head, usage = split_example(source)
    assert "class VisualizrClient" in head and "def wait_for_completion" in head
    assert "client = VisualizrClient(" in usage
    compile(source, "spec-sdk-example", "exec")
