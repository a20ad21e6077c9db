"""Every benchmark script runs, briefly, so a refactor cannot silently break it (its numbers are not checked:
speed lives in the benchmarks' own interleaved runs, never in tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from visualizr.families import FAMILY_NAMES
from visualizr.model_card import MODEL_CARD_FILENAME, read_model_card
from visualizr.pipeline.cpu_engines import CPU_ENGINES

REPO_ROOT = Path(__file__).resolve().parent.parent
TINY = ["--rounds", "1", "--width", "64", "--height", "64", "--num-frames", "4", "--num-inference-steps", "2"]
VERSUS_LINES = ("diffusers  median", "diffusers-1t median", "rest       median", "rest / diffusers =")
STARTUP_LINES = ("tritonserver start -> ready", "  this checkout", "  baseline HEAD", "this checkout / baseline =")
# pipeline_overhead covers every model of the demo repository: one per family, named like it
OVERHEAD_LINES = (
    "in-process   median",
    "triton       median",
    "rest         median",
    *(f"{family}: triton / in-process" for family in FAMILY_NAMES),
    *(f"{family}: (rest - encoding) / triton" for family in FAMILY_NAMES),
)


LARGE_CLIP = ["--width", "64", "--height", "64", "--frames", "20", "--steps", "2"]  # past one context window
ASSET_LINES = ("folder whole median", "s3     whole median", "s3 / folder: whole throughput =")
# benchmarks.scale, briefly: a small table, two replicas, one round
SCALE = ["--jobs", "2000", "--requests", "20", "--replicas", "2", "--submissions", "8", "--clients", "4",
         "--rounds", "1"]  # fmt: skip
SCALE_LINES = (
    "status p99 postgresql / sqlite =",
    "listing p99 postgresql / sqlite =",
    "listing p99 postgresql+s3 / sqlite =",
    "submit throughput 2 replicas / 1 =",
    "status throughput 2 replicas / 1 =",
)
CPU_ENGINE_LINES = ("CPU engines, ms per call", "animatediff_unet", "torch ms", "openvino / ort     torch / ort")
# The benchmarks that need one model only have their tritonservers load that one (VISUALIZR_LOAD_MODELS).
ANIMATEDIFF_ONLY = {"VISUALIZR_LOAD_MODELS": "animatediff"}


@pytest.mark.integration
@pytest.mark.parametrize(
    ("module", "args", "lines", "overrides"),
    [
        ("pipeline_overhead", TINY, OVERHEAD_LINES, {}),
        ("versus_diffusers", TINY, VERSUS_LINES, ANIMATEDIFF_ONLY),
        ("upload_memory", ["--uploads", "2", "--side", "512"], ("jpeg x2", "png  x2", "peak RSS"), {}),
        ("triton_startup", ["--rounds", "1", "--baseline", "HEAD"], STARTUP_LINES, ANIMATEDIFF_ONLY),
        ("large_clip", LARGE_CLIP, ("20 frames, 2 steps, in-process", "s per step", "peak RSS"), {}),
        ("large_clip", [*LARGE_CLIP, "--triton"], ("through Triton", "peak RSS per stub animatediff"), {}),
        ("job_events", ["--jobs", "5", "--seconds", "0.3"], ("latency: 15 of 15", "p99", "notices/s"), {}),
        ("asset_serving", ["--mib", "2", "--rounds", "1", "--ranges", "3"], ASSET_LINES, {}),
        ("scale", SCALE, SCALE_LINES, ANIMATEDIFF_ONLY),
        ("cpu_engines", ["--rounds", "1", "--models", "animatediff"], CPU_ENGINE_LINES, {}),
    ],
)
def test_benchmark_runs(
    model_repository: Path, module: str, args: list[str], lines: tuple[str, ...], overrides: dict[str, str]
) -> None:
    env = {**os.environ, "VISUALIZR_MODEL_REPOSITORY": str(model_repository), **overrides}
    done = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{module}", *args], cwd=REPO_ROOT, env=env, capture_output=True,
        text=True, timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for line in lines:
        assert line in done.stdout, done.stdout


# The soak as this build can pass it: one replica (the queue is still per process), killed and restarted mid-run, on
# a Triton of its own (killed and restarted too; the session's server is never hit by a dead client's streams).
# The acceptance scale test, smaller: three API replicas on one PostgreSQL + one S3 in front of two tritonservers,
# every 7th job cancelled on another replica, WebSocket subscribers on a third, one replica SIGKILLed after 20
# accepted jobs and restarted, one tritonserver SIGKILLed (~75 s on the 2-core dev machine).
SOAK_JOBS, SOAK_CANCEL_EVERY = 90, 7
SOAK = ["--replicas", "3", "--tritons", "2", "--jobs", str(SOAK_JOBS), "--clients", "6", "--subscribers", "2",
        "--cancel-every", str(SOAK_CANCEL_EVERY), "--kill-replica-after", "20", "--timeout", "600",
        "--json"]  # fmt: skip


@pytest.mark.integration
def test_replica_soak_three_replicas_two_tritons_with_kills(model_repository: Path) -> None:
    env = {**os.environ, "VISUALIZR_MODEL_REPOSITORY": str(model_repository)}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.replica_soak", *SOAK], cwd=REPO_ROOT, env=env, capture_output=True,
        text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["accepted"] == SOAK_JOBS and result["completed"] + result["cancelled"] == SOAK_JOBS, result
    figures = ("failed", "lost", "unknown_jobs", "stuck", "cancel_ignored", "duplicated_events", "missing_events",
               "bad_videos", "store_missing", "store_extra")  # fmt: skip
    for figure in figures:
        assert result[figure] == 0, (figure, result)
    assert result["store_objects"] == result["completed"], result  # one MP4 in the bucket per completed job
    # every 7th job's DELETE sent; each one answered "cancelled" cancelled its job (one may finish before its DELETE)
    assert sum(result["cancel_answers"].values()) == SOAK_JOBS // SOAK_CANCEL_EVERY, result
    assert result["cancelled"] == result["cancel_answers"].get("200", 0), result
    assert (result["death_to_rerun_s"] is not None) == (result["victims"] > 0), result
    print("replica soak:", {k: result[k] for k in ("seconds", "completed", "cancelled", "victims", "death_to_rerun_s")})
    assert done.returncode == 0 and "verdict            pass" in done.stdout, done.stdout


@pytest.mark.integration
def test_make_perf_smoke_every_model_answers(model_repository: Path, tmp_path: Path) -> None:
    """A short perf_analyzer run on the demo against a real tritonserver: every Triton model of every card (each
    family's) answers, with throughput > 0 and no error (the smallest request; perf_analyzer fetched as on a
    fresh clone)."""
    command = [sys.executable, "-m", "benchmarks.perf", "--profile", "min", "--concurrency", "1",
               "--request-count", "5", "--pipeline-request-count", "1", "--out", str(tmp_path)]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = json.loads((tmp_path / "results.json").read_text())
    cards = [read_model_card(model_repository / family / MODEL_CARD_FILENAME) for family in FAMILY_NAMES]
    assert sorted(r["model"] for r in rows) == sorted(m for card in cards for m in card.triton_models)
    for row in rows:
        assert row["throughput"] > 0 and not row["errors"], row
        # a component's CPU engine: the one its calibration chose when this run's tritonserver loaded it
        assert row["engine"] in (CPU_ENGINES if row["kind"] == "component" else {"-"}), row
    pipelines = [r for r in rows if r["kind"] == "pipeline"]
    assert sorted(r["model"] for r in pipelines) == sorted(FAMILY_NAMES)
    for pipeline in pipelines:
        assert 0 < pipeline["first_p50_ms"] <= pipeline["p50_ms"] and pipeline["compute_ms"] > 0, pipeline
    assert "model" in done.stdout and "first p50" in done.stdout  # the table
    assert "perf: " in done.stderr  # narration
