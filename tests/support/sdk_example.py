"""The Python SDK example of the API reference (``## SDK Example``), read from the vendored reference at test
time (``tests.support.spec_reference``)."""

from __future__ import annotations

import re

from tests.support.spec_reference import VENDORED_SPEC, spec_text

USAGE_MARKER = "# Usage"


def extract(markdown: str) -> str:
    """The first ```python block after the "### Python SDK" heading."""
    section = markdown[markdown.index("### Python SDK") :]
    match = re.search(r"```python\n(.*?)```", section, flags=re.S)
    if match is None:
        raise ValueError("no ```python block under '### Python SDK'")
    return match.group(1)


def spec_sdk_example() -> tuple[str, str]:
    """(source, origin): the reference's example and the file it was read from."""
    return extract(spec_text()), str(VENDORED_SPEC)


def split_example(source: str) -> tuple[str, str]:
    """(class definition, usage): the usage part starts at the "# Usage" comment."""
    head, marker, usage = source.partition(USAGE_MARKER)
    if not marker:
        raise ValueError("the SDK example has no '# Usage' part")
    return head, marker + usage
