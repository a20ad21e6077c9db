"""The Grafana dashboard reads only series the README documents (the integration test checks that those exist)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.support.readme_metrics import documented_series

DASHBOARD = Path(__file__).resolve().parent.parent / "docker" / "grafana" / "dashboards" / "visualizr.json"
SUFFIXES = ("_bucket", "_sum", "_count")


def test_dashboard_queries_name_documented_series() -> None:
    documented = documented_series()
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    assert len(expressions) >= 10
    for expr in expressions:
        for series in re.findall(r"\b((?:visualizr|nv)_[a-z_]+)\b", expr):
            base = next((series[: -len(s)] for s in SUFFIXES if series.endswith(s)), series)
            assert base in documented or series in documented, (expr, series)
