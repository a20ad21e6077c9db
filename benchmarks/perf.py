"""``make perf``: perf_analyzer over every Triton model of the repository, one table at the end.

    python -m benchmarks.perf                      # start a private tritonserver on the repository
    python -m benchmarks.perf --url HOST:8001      # a running Triton (gRPC), e.g. a GPU deployment

For each pipeline model in the repository (its model card) and the component models it lists: the export's
perf_analyzer data (``build/perf_inputs/<model>/``, real token ids and images, see export/perf_inputs.py), each
component at every concurrency of ``--concurrency``, the pipeline (decoupled) with ``-i grpc --streaming`` and
``--bls-composing-models`` at ``--pipeline-concurrency``, all in count windows with a loose stability threshold
(multi-second requests on a shared CPU never meet perf_analyzer's default 10 %).

Latency of the pipeline: from perf_analyzer's per-request export, last response (the frames: what a client waits
for) in the p50/p95/p99 columns, first response in ``first p50``. Server queue / compute: from Triton's statistics
before and after each run, per request; for the pipeline, summed over its composing models (BLS calls).
Writes ``build/perf/results.json`` and ``.csv``; says what it does on stderr.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmarks.perf_tool import find_perf_analyzer, say
from visualizr.export.perf_inputs import perf_inputs_dir, read_manifest
from visualizr.launcher import models_to_load
from visualizr.model_card import MODEL_CARD_FILENAME
from visualizr.pipeline.engine_calibration import served_engine
from visualizr.settings import REPO_ROOT, Settings

OUT_DIR = REPO_ROOT / "build" / "perf"
RETRIES = 2
UNSTABLE = "Failed to obtain stable measurement"


@dataclass
class Row:
    model: str
    kind: str  # component | pipeline
    profile: str
    concurrency: int
    batch_size: int
    throughput: float = 0.0  # inferences (component: samples) per second
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    first_p50_ms: float | None = None  # decoupled models: first response
    queue_ms: float = 0.0  # server queue per request (pipeline: in its composing models)
    compute_ms: float = 0.0  # server compute per request (pipeline: in its composing models)
    requests: int = 0
    errors: list[str] = field(default_factory=list)
    engine: str = "-"  # a component's CPU engine (this repository's calibration or VISUALIZR_CPU_ENGINE)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="gRPC address of a running Triton (default: start one on the repository)")
    parser.add_argument("--repository", type=Path, help="model repository (default: VISUALIZR_MODEL_REPOSITORY)")
    parser.add_argument("--model", action="append", help="pipeline model id (repeatable; default: every card)")
    parser.add_argument("--profile", default="default", help="perf input profile: default | max | image")
    parser.add_argument("--concurrency", default="1,2", help="component concurrencies, comma-separated")
    parser.add_argument("--pipeline-concurrency", default="1", help="pipeline concurrencies, comma-separated")
    parser.add_argument("--request-count", type=int, default=20, help="requests per window, components")
    parser.add_argument("--pipeline-request-count", type=int, default=2, help="requests per window, pipeline")
    parser.add_argument("--stability", type=int, default=100, help="perf_analyzer -s (percent)")
    parser.add_argument("--max-trials", type=int, default=4, help="perf_analyzer --max-trials")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    args = parser.parse_args(argv)
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    args.pipeline_concurrency = [int(c) for c in args.pipeline_concurrency.split(",")]
    return args


def _stats(client, models: list[str]) -> dict[str, dict[str, int]]:
    """Cumulative request count, queue and compute nanoseconds per model (Triton's statistics extension)."""
    result = {}
    for model in models:
        stats = client.get_inference_statistics(model, as_json=True)["model_stats"]
        s = next(iter(stats), {}).get("inference_stats", {})
        ns = {k: int(s.get(k, {}).get("ns", 0)) for k in ("queue", "compute_input", "compute_infer",
                                                               "compute_output")}
        result[model] = {"count": int(s.get("success", {}).get("count", 0)), "queue": ns["queue"],
                         "compute": ns["compute_input"] + ns["compute_infer"] + ns["compute_output"]}
    return result


def _server_split(before: dict, after: dict, model: str, composing: list[str]) -> tuple[float, float, int]:
    """(queue ms, compute ms) per request of ``model``, from its composing models when it has some."""
    requests = after[model]["count"] - before[model]["count"]
    if requests <= 0:
        return 0.0, 0.0, 0
    sources = composing or [model]
    queue = sum(after[m]["queue"] - before[m]["queue"] for m in sources)
    compute = sum(after[m]["compute"] - before[m]["compute"] for m in sources)
    return queue / requests / 1e6, compute / requests / 1e6, requests


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def _streaming_latencies(export_file: Path) -> tuple[list[float], list[float]]:
    """(first-response, last-response) latency in ms of every request in perf_analyzer's profile export."""
    data = json.loads(export_file.read_text())
    first, last = [], []
    for experiment in data["experiments"]:
        for request in experiment["requests"]:
            responses = request.get("response_timestamps") or []
            if responses:
                first.append((responses[0] - request["timestamp"]) / 1e6)
                last.append((responses[-1] - request["timestamp"]) / 1e6)
    return first, last


def _command(pa: list[str], url: str, model: str, profile: dict, data_dir: Path, concurrency: int,
             count: int, args: argparse.Namespace) -> list[str]:
    command = [*pa, "-m", model, "-u", url, "-i", "grpc", "--input-data", str(data_dir / profile["input_data"]),
               "-b", str(profile["batch_size"]), "--concurrency-range", f"{concurrency}:{concurrency}",
               "--measurement-mode", "count_windows", "--measurement-request-count", str(count),
               "-s", str(args.stability), "--max-trials", str(args.max_trials)]
    return command + [f"--shape={shape}" for shape in profile["shape"]]


def composing_models(pa: list[str], url: str, entry: dict, profile: dict, data_dir: Path, client) -> list[str]:
    """The component models a pipeline request of this profile calls, found by sending one (which also warms the
    pipeline up): perf_analyzer fails on a composing model that a request never reaches."""
    candidates = entry["composing_models"]
    before = _stats(client, candidates)
    probe = argparse.Namespace(stability=100, max_trials=1)
    command = [*_command(pa, url, entry["model"], profile, data_dir, 1, 1, probe), "--streaming"]
    subprocess.run(command, capture_output=True, text=True)
    after = _stats(client, candidates)
    return [m for m in candidates if after[m]["count"] > before[m]["count"]]


def run_one(pa: list[str], url: str, entry: dict, profile_name: str, data_dir: Path, concurrency: int,
            args: argparse.Namespace, client, work: Path) -> Row:
    model, pipeline = entry["model"], entry["decoupled"]
    profile = entry["profiles"][profile_name]
    row = Row(model, entry["kind"], profile_name, concurrency, profile["batch_size"])
    csv_file, export_file = work / f"{model}-{concurrency}.csv", work / f"{model}-{concurrency}.json"
    count = args.pipeline_request_count if pipeline else args.request_count
    composing = composing_models(pa, url, entry, profile, data_dir, client) if pipeline else []
    watched = [model, *composing]
    started = time.perf_counter()
    for attempt in range(1 + RETRIES):  # a fast model's short windows may not settle on a busy machine: longer ones
        command = [*_command(pa, url, model, profile, data_dir, concurrency, count, args), "-f", str(csv_file)]
        if pipeline:
            command += ["--streaming", f"--bls-composing-models={','.join(composing)}",
                        "--profile-export-file", str(export_file)]
        say(f"{model} ({entry['kind']}, {profile_name}) at concurrency {concurrency}: perf_analyzer, "
            f"windows of {count} requests{' (again, longer)' if attempt else ''} ...")
        before = _stats(client, watched)
        done = subprocess.run(command, capture_output=True, text=True)
        after = _stats(client, watched)
        if done.returncode == 0 or UNSTABLE not in done.stdout + done.stderr:
            break
        count *= 4
    if done.returncode != 0 or not csv_file.is_file():
        tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
        row.errors.append(f"perf_analyzer exited {done.returncode}: {' | '.join(tail)}")
        say(f"  failed: {row.errors[-1]}")
        return row
    with csv_file.open() as f:
        measured = next(csv.DictReader(f))
    row.throughput = float(measured["Inferences/Second"])
    if pipeline:
        first, last = _streaming_latencies(export_file)
        row.p50_ms, row.p95_ms, row.p99_ms = (_percentile(last, q) for q in (50, 95, 99))
        row.first_p50_ms = statistics.median(first)
    else:
        row.p50_ms, row.p95_ms, row.p99_ms = (float(measured[f"p{q} latency"]) / 1000 for q in (50, 95, 99))
    row.queue_ms, row.compute_ms, row.requests = _server_split(before, after, model, composing)
    say(f"  {row.throughput:.3f} infer/s, p50 {row.p50_ms:.1f} ms ({time.perf_counter() - started:.0f} s)")
    return row


def table(rows: list[Row]) -> str:
    header = (f"{'model':<26} {'profile':<8} {'conc':>4} {'batch':>5} {'infer/s':>9} {'p50 ms':>9} {'p95 ms':>9} "
              f"{'p99 ms':>9} {'first p50':>9} {'queue ms':>9} {'compute ms':>10} {'engine':<11}  errors")
    lines = [header, "-" * len(header)]
    for r in rows:
        first = f"{r.first_p50_ms:9.1f}" if r.first_p50_ms is not None else f"{'-':>9}"
        lines.append(f"{r.model:<26} {r.profile:<8} {r.concurrency:>4} {r.batch_size:>5} {r.throughput:>9.3f} "
                     f"{r.p50_ms:>9.1f} {r.p95_ms:>9.1f} {r.p99_ms:>9.1f} {first} {r.queue_ms:>9.1f} "
                     f"{r.compute_ms:>10.1f} {r.engine:<11}  {'; '.join(r.errors) or '-'}")
    return "\n".join(lines)


def write_results(rows: list[Row], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    records = [asdict(r) for r in rows]
    (out / "results.json").write_text(json.dumps(records, indent=2) + "\n")
    with (out / "results.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(records[0]) if records else ["model"])
        writer.writeheader()
        writer.writerows({**r, "errors": "; ".join(r["errors"])} for r in records)
    say(f"wrote {out / 'results.json'} and {out / 'results.csv'}")


def pipeline_ids(repository: Path, wanted: list[str] | None) -> list[str]:
    ids = sorted(p.parent.name for p in repository.glob(f"*/{MODEL_CARD_FILENAME}"))
    return [i for i in ids if not wanted or i in wanted]


def ensure_inputs(repository: Path, model_id: str) -> dict:
    manifest = read_manifest(repository, model_id)
    if manifest is None:
        say(f"no perf_analyzer data in {perf_inputs_dir(repository, model_id)}: re-running the export")
        subprocess.run([sys.executable, "-m", "visualizr.export", "--force", "--repository", str(repository)],
                       check=True)
        manifest = read_manifest(repository, model_id)
    if manifest is None:
        raise SystemExit(f"perf: the export wrote no perf_analyzer data for {model_id}")
    return manifest


def _start_triton(stack: ExitStack, repository: Path) -> str:
    from benchmarks.stack import stack_settings
    from visualizr.launcher import TritonServer

    data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="visualizr-perf-")))
    settings, _ = stack_settings(data_dir, VISUALIZR_MODEL_REPOSITORY=str(repository))
    say(f"starting tritonserver on {repository} (gRPC {settings.triton_grpc_url}; log {data_dir}/logs)")
    server = stack.enter_context(TritonServer(settings, models=models_to_load(repository)))
    server.wait_ready(300)
    return settings.triton_grpc_url


def main(argv: list[str] | None = None) -> int:
    from tritonclient.grpc import InferenceServerClient

    args = parse_args(argv)
    repository = (args.repository or Settings.from_env().model_repository).resolve()
    models = pipeline_ids(repository, args.model)
    if not models:
        raise SystemExit(f"perf: no pipeline model (model card) in {repository}")
    manifests = {m: ensure_inputs(repository, m) for m in models}
    pa = find_perf_analyzer()
    rows: list[Row] = []
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="visualizr-perf-runs-") as work:
        url = args.url or _start_triton(stack, repository)
        client = InferenceServerClient(url)
        for model_id, manifest in manifests.items():
            data_dir = perf_inputs_dir(repository, model_id)
            for entry in manifest["models"]:
                profile = args.profile if args.profile in entry["profiles"] else "default"
                sweep = args.pipeline_concurrency if entry["decoupled"] else args.concurrency
                for concurrency in sweep:
                    rows.append(run_one(pa, url, entry, profile, data_dir, concurrency, args, client, Path(work)))
        client.close()
    for row in rows:  # after the runs: a server started here calibrated its components when it loaded them
        if row.kind == "component":
            row.engine = served_engine(repository, row.model, Settings.from_env().cpu_engine)[0] or "unmeasured"
    print(table(rows))
    write_results(rows, args.out)
    return 1 if any(r.errors or r.throughput <= 0 for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
