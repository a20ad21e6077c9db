"""The provisioned Grafana dashboard queries only series that exist today: the API's /metrics, the pipeline
model's visualizr_pipeline_* and Triton's nv_inference_* (read from the real tritonserver's metrics port)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from tests.support.deploy import DOCKER_DIR
from tests.support.fakes import FakeBackend, make_settings, running_app
from tests.support.prometheus import parse_exposition
from visualizr.launcher import TritonServer
from visualizr.triton import metrics as pipeline_metrics

DASHBOARD = json.loads((DOCKER_DIR / "grafana" / "dashboards" / "visualizr.json").read_text())
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def _expressions() -> list[str]:
    return [t["expr"] for p in DASHBOARD["panels"] for t in p.get("targets", [])]


def _series(prefix: str) -> set[str]:
    return {name for e in _expressions() for name in re.findall(rf"\b({prefix}[a-z0-9_]*)", e)}


def _available(types: dict[str, str]) -> set[str]:
    """Series a query can name: every family, and a histogram's _bucket/_sum/_count."""
    names = set(types)
    names |= {f"{n}{s}" for n, kind in types.items() if kind == "histogram" for s in HISTOGRAM_SUFFIXES}
    return names


def test_every_panel_has_a_query_and_a_unique_id() -> None:
    graphs = [p for p in DASHBOARD["panels"] if p["type"] != "row"]
    assert graphs and all(p["targets"] and all(t["expr"] for t in p["targets"]) for p in graphs)
    ids = [p["id"] for p in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))
    sources = [p.get("datasource") for p in graphs] + [t.get("datasource") for p in graphs for t in p["targets"]]
    assert all(s == {"type": "prometheus", "uid": "prometheus"} for s in sources)  # the provisioned datasource


def test_quantiles_are_taken_of_histogram_buckets() -> None:
    for expression in _expressions():
        for argument in re.findall(r"histogram_quantile\([^,]+,(.*)", expression):
            assert "_bucket[" in argument, expression


def test_api_series_exist_on_the_api_metrics(tmp_path: Path) -> None:
    with running_app(make_settings(tmp_path), FakeBackend()) as client:
        types, _ = parse_exposition(client.get("/metrics").text)
    pipeline = {
        pipeline_metrics.STEP_SECONDS: "histogram",
        pipeline_metrics.GENERATION_SECONDS: "histogram",
        pipeline_metrics.GENERATIONS: "counter",
        pipeline_metrics.ACTIVE: "gauge",
    }
    used = _series("visualizr_")
    assert used - _available({**types, **pipeline}) == set()
    assert {n for n in used if n.startswith("visualizr_pipeline_")}  # the pipeline panels are there
    assert {n for n in used if not n.startswith("visualizr_pipeline_")}  # and the API's


@pytest.mark.integration
def test_triton_and_pipeline_series_exist_on_tritons_metrics_port(triton: TritonServer) -> None:
    url = f"http://{triton.settings.triton_host}:{triton.settings.triton_metrics_port}/metrics"
    types, _ = parse_exposition(httpx.get(url, timeout=10).text)
    used = _series("nv_") | {n for n in _series("visualizr_") if n.startswith("visualizr_pipeline_")}
    assert used and used - _available(types) == set()
