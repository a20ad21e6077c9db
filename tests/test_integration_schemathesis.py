"""schemathesis against the served OpenAPI document of a real API process (API keys on, the session Triton): every
operation, the three generate routes' request bodies included (their documented examples let it get past
validation, so jobs are really queued, polled and cancelled), bounded by examples per operation. Goal: 0 server
errors.

The queue cap is raised for this API: a full queue answers 503 QUEUE_FULL by design, as health answers 503 only
while no inference server is up (the session Triton is up throughout).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.stack import start_sibling_api
from visualizr.launcher import TritonServer
from visualizr.settings import Settings

pytestmark = pytest.mark.integration

API_KEY = "schemathesis-key"
MAX_EXAMPLES = 25
SEED = 20261201
GENERATE = ("POST /api/v1/generate/video", "POST /api/v1/generate/character-animation")


def exchanges(node: Any) -> Iterator[tuple[str, str, int]]:
    """(method, url, status) of every request/response pair in a schemathesis NDJSON event."""
    if isinstance(node, dict):
        request, response = node.get("request"), node.get("response")
        if isinstance(request, dict) and isinstance(response, dict) and "status_code" in response:
            yield request.get("method", ""), request.get("uri", ""), int(response["status_code"])
        for value in node.values():
            yield from exchanges(value)
    elif isinstance(node, list):
        for value in node:
            yield from exchanges(value)


def test_schemathesis_finds_no_server_error(
    triton: TritonServer, stack_env: tuple[Settings, dict[str, str]], tmp_path: Path
) -> None:
    _, env = stack_env
    api = start_sibling_api(
        env, tmp_path / "data", VISUALIZR_API_KEYS=API_KEY, VISUALIZR_QUEUE_SIZE="10000", VISUALIZR_WORKERS="1"
    )
    try:
        document = httpx.get(f"{api.base_url}/schema/openapi.json", timeout=30).json()
        done = subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "run", f"{api.base_url}/schema/openapi.json"]
            + ["--header", f"Authorization: Bearer {API_KEY}", "--checks", "not_a_server_error"]
            + ["--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED), "--workers", "2"]
            + ["--generation-database", "none", "--request-timeout", "60", "--no-color"]
            + ["--report", "ndjson", "--report-dir", str(tmp_path / "report")],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=420,
        )
    finally:
        api.stop()
    summary = done.stdout[done.stdout.find("SUMMARY") :] or done.stdout[-3000:]
    events = [json.loads(line) for f in (tmp_path / "report").glob("*.ndjson") for line in f.read_text().splitlines()]
    seen = Counter(exchange for event in events for exchange in exchanges(event))
    server_errors = {k: n for k, n in seen.items() if k[2] >= 500}
    assert done.returncode == 0 and not server_errors, f"{server_errors}\n{summary}\n{done.stderr[-2000:]}"

    operations = {f"{m.upper()} {p}" for p, methods in document["paths"].items() for m in methods}
    assert f"Tested: {len(operations)}" in summary, summary  # every operation of the document, none skipped
    statuses = Counter((method, url.split("?")[0].removeprefix(api.base_url), status) for method, url, status in seen)
    for operation in GENERATE:
        method, path = operation.split(" ")
        assert statuses[(method, path, 202)] > 0, f"{operation} never got past validation: {statuses}"
    assert "Traceback" not in api.log_tail(200_000)
