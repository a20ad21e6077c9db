"""How far the ETA is from the truth: a mixed workload on the real stack (tritonserver + the API, its own or one
given by ``--url``), measured from outside as a client sees it.

    python -m benchmarks.eta [--quick] [--url http://127.0.0.1:8000] [--workers N] [--rounds 14] [--warmup 10]

Jobs of both families (AnimateDiff, 320-384 px, 32-48 frames, 40-48 steps; Stable Video Diffusion through its
keyframe, 192-256 px, 16-24 frames, 8-12 steps: ``SIZES``), about 3 to 20 s each on the 2-core CPU demo (the
contract's estimates are whole seconds, the nearest: a job under 2.5 s cannot be within +-20 %, and the demo's
pipelines have got fast enough that smaller sizes make such jobs; ``--sizes small``: the earlier, 1-15 s), in
rounds submitted alone (concurrency 1) or three at once (concurrency 3, submitted one after the other and run by
``--workers`` at a time: ``make serve``'s 1 by default; 2 share the CPU); the benchmark's own stack starts with
Stable Video Diffusion not loaded, so its first job of it loads it (a cold load). For each job: a quote
(``POST /generate/quote``, the same body) just before the submission, the 202's ``estimated_time_seconds`` (the
first estimate) and, at the first poll at or past 50 % progress, the time so far plus ``estimated_remaining_seconds``;
each against the submission's true time to completed (polled every ``POLL_S``; ``run``: the job's own
``processing_time_seconds``, the rest was its wait). Signed relative error ``(estimate - actual) / actual``.
``joined``: a job submitted after it ran beside it (no estimate made at its submission could know). Prints the
table, then over the jobs after the warm-up: the share within +-20 % and the median |error| of each, and of the
first estimates of the jobs none joined.
``--quick``: a few small jobs (a test runs it on the session stack). ``--repeat N``: then the first job of the
workload N more times alone, one after the other: the spread of one job's own time on this machine (its noise
floor: no estimate of it can be closer than its times are to each other).

The machine is shared and noisy: read one run's figures as a scale, not as a record.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks.stack import stack_settings, start_api
from visualizr.launcher import TritonServer
from visualizr.settings import Settings

MODELS = ("animatediff", "stable-video-diffusion")
SIZES = {  # model -> sides, frame counts, step counts (the quick run's: QUICK_SIZES)
    "animatediff": ((320, 384), (32, 48), (40, 48)),  # was 256-320 px, 24-32 frames, 32-48 steps: 2-4 s now
    "stable-video-diffusion": ((192, 256), (16, 24), (8, 12)),
}
SMALL_SIZES = {  # the workload's sizes before (1-2 s AnimateDiff jobs: whole seconds cannot score them)
    "animatediff": ((192, 256, 320), (16, 24, 32), (12, 16, 24)),
    "stable-video-diffusion": ((128, 192, 256), (12, 16, 24), (8, 12, 16)),
}
QUICK_SIZES = ((64, 96), (8, 12), (4, 6))
POLL_S = 0.1
WITHIN = 0.2
JOB_TIMEOUT_S = 600.0


@dataclass
class Job:
    body: dict[str, object]
    concurrency: int
    quote: float = 0.0
    first: float = 0.0
    halfway: float | None = None
    actual: float = 0.0
    run: float = 0.0
    request_id: str = ""
    submitted: float = 0.0

    def errors(self) -> tuple[float, float | None, float]:
        """Signed relative errors of the first estimate, the estimate at 50 %, the quote."""
        half = None if self.halfway is None else (self.halfway - self.actual) / self.actual
        return (self.first - self.actual) / self.actual, half, (self.quote - self.actual) / self.actual


def workload(rounds: int, seed: int, quick: bool, sizes: dict[str, tuple] = SIZES) -> list[list[dict[str, object]]]:
    """Rounds of job bodies: one job (concurrency 1) or three (concurrency 3), alternating."""
    rng = random.Random(seed)
    out = []
    for index in range(rounds):
        batch = []
        for _ in range(1 if index % 2 == 0 else 3):
            model = rng.choice(MODELS)
            sides, frames, steps = QUICK_SIZES if quick else sizes[model]
            side = rng.choice(sides)
            batch.append({
                "prompt": "a lighthouse on a cliff at dusk",
                "model": model,
                "width": side,
                "height": rng.choice((sides[0], side)),
                "num_frames": rng.choice(frames),
                "num_inference_steps": rng.choice(steps),
                "seed": rng.randrange(1000),
            })  # fmt: skip
        out.append(batch)
    return out


def submit(client: httpx.Client, job: Job) -> None:
    """Quote the job, then submit it: its quote and its first estimate."""
    quoted = client.post("/api/v1/generate/quote", json=job.body)
    quoted.raise_for_status()
    job.quote = quoted.json()["estimated_time_seconds"]
    job.submitted = time.monotonic()
    accepted = client.post("/api/v1/generate/video", json=job.body)
    accepted.raise_for_status()
    job.first = accepted.json()["estimated_time_seconds"]
    job.request_id = accepted.json()["request_id"]


def follow(client: httpx.Client, job: Job) -> Job:
    """Poll the job to its end: its estimate at 50 % and its true time."""
    while time.monotonic() - job.submitted < JOB_TIMEOUT_S:
        status = client.get(f"/api/v1/generate/status/{job.request_id}").json()
        if status["status"] in ("completed", "failed", "cancelled"):
            if status["status"] != "completed":
                raise RuntimeError(f"{job.request_id} ended {status['status']}: {status.get('error')}")
            job.actual = time.monotonic() - job.submitted
            job.run = status["processing_time_seconds"]
            return job
        if job.halfway is None and status["status"] == "processing" and status["progress"] >= 50:
            job.halfway = time.monotonic() - job.submitted + status["estimated_remaining_seconds"]
        time.sleep(POLL_S)
    raise RuntimeError(f"{job.request_id} not done after {JOB_TIMEOUT_S} s")


def measure(base_url: str, rounds: list[list[dict[str, object]]]) -> list[Job]:
    """Each round's jobs quoted and submitted one after the other (at once), then followed together."""
    jobs: list[Job] = []
    with httpx.Client(base_url=base_url, timeout=60) as client, ThreadPoolExecutor(3) as pool:
        for batch in rounds:
            round_jobs = [Job(body, len(batch)) for body in batch]
            for job in round_jobs:
                submit(client, job)
            jobs += list(pool.map(lambda job: follow(client, job), round_jobs))
    return jobs


def shown(error: float | None) -> str:
    return "     -" if error is None else f"{100 * error:+5.0f}%"


def summary(name: str, errors: list[float]) -> str:
    if not errors:
        return f"{name:>14}: no jobs"
    within = sum(abs(e) <= WITHIN for e in errors) / len(errors)
    median = statistics.median(abs(e) for e in errors)
    return f"{name:>14}: {100 * within:3.0f} % within +-{100 * WITHIN:.0f} %, median |error| {100 * median:4.1f} %"


def joined(job: Job, jobs: list[Job]) -> bool:
    """Whether a job submitted after ``job`` started before it ended."""
    end = job.submitted + job.actual
    return any(o.submitted > job.submitted and o.submitted + o.actual - o.run < end for o in jobs)


def report(jobs: list[Job], warmup: int) -> list[str]:
    lines = ["  # model                   size    fr st  conc  actual    run joined   first  at 50%   quote"]
    for index, job in enumerate(jobs):
        b = job.body
        first, half, quote = job.errors()
        size = f"{b['width']}x{b['height']}"
        lines.append(
            f"{index:3} {b['model']:<22} {size:>7} {b['num_frames']:>3} {b['num_inference_steps']:>2} "
            f"{job.concurrency:>5} {job.actual:6.1f}s {job.run:5.1f}s {'yes' if joined(job, jobs) else '':>6}  "
            f"{shown(first)}  {shown(half)}  {shown(quote)}"
        )
    scored = jobs[warmup:]
    lines.append(f"after {warmup} warm-up jobs, {len(scored)} jobs:")
    lines.append(summary("first estimate", [j.errors()[0] for j in scored]))
    lines.append(summary("none joined", [j.errors()[0] for j in scored if not joined(j, jobs)]))
    lines.append(summary("at 50 %", [h for j in scored if (h := j.errors()[1]) is not None]))
    lines.append(summary("quote", [j.errors()[2] for j in scored]))
    return lines


@contextmanager
def own_stack(workers: int, data_dir: str | None) -> Iterator[str]:
    """A stack of the benchmark's own, Stable Video Diffusion not loaded (its first job loads it): its API's URL.
    ``data_dir``: its data folder, kept (its job database holds the cost samples); else a temporary one."""
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(data_dir or scratch)
        settings, env = stack_settings(folder, VISUALIZR_WORKERS=str(workers), VISUALIZR_LOAD_MODELS=MODELS[0])
        with TritonServer(settings) as triton:
            triton.wait_ready(300)
            api = start_api(settings, env)
            try:
                yield api.base_url
            finally:
                api.stop()


def repeated(base_url: str, body: dict[str, object], times: int) -> list[str]:
    """One job run ``times`` times alone: the spread of its true time around their median."""
    with httpx.Client(base_url=base_url, timeout=60) as client:
        actuals = []
        for _ in range(times):
            job = Job(body, 1)
            submit(client, job)
            actuals.append(follow(client, job).actual)
    median = statistics.median(actuals)
    spread = [abs(a / median - 1) for a in actuals]
    return [
        f"the first job alone x {times}: {min(actuals):.1f} / {median:.1f} / {max(actuals):.1f} s (min / median / "
        f"max); off their median by {100 * statistics.median(spread):.0f} % (median), {100 * max(spread):.0f} % (max)"
    ]


def run_all(base_url: str, rounds: list[list[dict[str, object]]], warmup: int, repeat: int) -> list[str]:
    lines = report(measure(base_url, rounds), warmup)
    return lines + (repeated(base_url, rounds[0][0], repeat) if repeat else [])


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few small jobs")
    parser.add_argument("--url", help="an API already running (else a stack of the benchmark's own)")
    parser.add_argument("--workers", type=int, default=Settings().workers,
                        help="VISUALIZR_WORKERS of its own stack (default: the service's for one inference server)")
    parser.add_argument("--rounds", type=int, help="rounds of 1 or 3 jobs (default: 4 quick, 14)")
    parser.add_argument("--warmup", type=int, help="jobs left out of the summary (default: 2 quick, 10)")
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--sizes", choices=("default", "small"), default="default", help="small: the earlier sizes")
    parser.add_argument("--repeat", type=int, default=0, help="then run the first job this many times alone")
    parser.add_argument("--data-dir", help="the own stack's data folder, kept (default: a temporary one)")
    args = parser.parse_args(argv)
    sizes = SMALL_SIZES if args.sizes == "small" else SIZES
    rounds = workload(args.rounds or (4 if args.quick else 14), args.seed, args.quick, sizes)
    warmup = args.warmup if args.warmup is not None else (2 if args.quick else 10)
    if args.url:
        lines = run_all(args.url, rounds, warmup, args.repeat)
    else:
        with own_stack(args.workers, args.data_dir) as url:
            lines = run_all(url, rounds, warmup, args.repeat)
    print("\n".join(lines), flush=True)
    return lines


if __name__ == "__main__":
    main()
