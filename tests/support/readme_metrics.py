"""The README's Prometheus section, read by the tests that check it against the real endpoints and the dashboard."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent.parent / "README.md"


def documented_series() -> dict[str, tuple[str, set[str]]]:
    """series -> (endpoint, labels) from the README's metrics table."""
    section = README.read_text().split("## Metrics (Prometheus)", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([a-z_:]+)` \|[^|]+\|([^|]*)\| (API|Triton) \|$", section, flags=re.M)
    return {name: (endpoint, {label.strip() for label in labels.split(",") if label.strip()})
            for name, labels, endpoint in rows}


def promql_examples() -> list[str]:
    section = README.read_text().split("## Metrics (Prometheus)", 1)[1]
    block = section.split("```promql", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line and not line.startswith("#")]
