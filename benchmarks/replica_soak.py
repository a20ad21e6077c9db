"""The acceptance soak of the scale-out API tier, on loopback (``benchmarks.replicas``): K API replicas on one
PostgreSQL + one S3 server in front of M tritonservers; concurrent clients submit small jobs round-robin over the
replicas, cancel some on the replica after the one that accepted them, WebSocket subscribers on a third replica
follow every job; one replica is SIGKILLed mid-run and restarted, one tritonserver SIGKILLed (and restarted).

Then, from the database, the object store and the API: every accepted job must end completed or cancelled exactly
once (0 lost, 0 stuck, 0 failed; no DELETE answered "cancelled" for a job that then completed), every subscriber
must get every job's terminal event once, every MP4 must decode (downloaded from a replica other than the one that
accepted it) with the requested frame count, and the object store must hold the files of the completed jobs and
nothing else. Prints the figures (``--json``: one JSON object as the last line); exits 1 when one of them is off.

    python -m benchmarks.replica_soak [--replicas 3] [--tritons 2] [--jobs 300] [--clients 8] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import random
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import httpx
import psycopg
import websockets
from psycopg.rows import dict_row

from benchmarks.replicas import Replica, ReplicaStack, replica_stack
from visualizr.frontend.jobs.naming import ASSET_FILE_RE, VIDEO_SUFFIX, request_id_of
from visualizr.frontend.jobs.record import CANCELLED, COMPLETED, FAILED, PROCESSING, TERMINAL_STATES
from visualizr.settings import Settings

RETRY_S = 120
JOB = {"width": 64, "height": 64, "num_frames": 4, "fps": 4, "num_inference_steps": 2, "guidance_scale": 7.5}


@dataclass
class Run:
    """What the clients saw."""

    key_prefix: str = field(default_factory=lambda: f"soak-{time.time_ns()}")  # of the Idempotency-Keys
    accepted: dict[str, int] = field(default_factory=dict)  # request id -> the replica that accepted it
    refused: Counter[str] = field(default_factory=Counter)  # why a submission was not accepted
    cancels: Counter[int] = field(default_factory=Counter)  # DELETE answers by status code
    acknowledged: set[str] = field(default_factory=set)  # jobs a DELETE answered "cancelled" for
    terminal_events: list[Counter[str]] = field(default_factory=list)  # per subscriber: request id -> count
    replica_killed_at: float | None = None
    replicas: list[Replica] = field(default_factory=list)  # as they were at the start
    victims: list[str] = field(default_factory=list)  # jobs running on the killed replica when it died
    submitted: asyncio.Event = field(default_factory=asyncio.Event)  # every client is through its jobs
    done: asyncio.Event = field(default_factory=asyncio.Event)  # every job settled: the subscribers stop


async def request_any(client: httpx.AsyncClient, stack: ReplicaStack, first: int, method: str, path: str,
                      **kwargs: object) -> tuple[int, httpx.Response]:  # fmt: skip
    """``method path`` on replica ``first``, or the next live one (a client retrying elsewhere, for up to
    ``RETRY_S`` seconds: a lone replica may be restarting)."""
    deadline = time.monotonic() + RETRY_S
    step = 0
    while time.monotonic() < deadline:
        index = (first + step) % len(stack.replicas)
        with contextlib.suppress(httpx.TransportError):
            return index, await client.request(method, stack.replicas[index].base_url + path, **kwargs)
        step += 1
        await asyncio.sleep(0.2)
    raise RuntimeError(f"no replica answered {method} {path} in {RETRY_S} s")


async def client_loop(stack: ReplicaStack, run: Run, jobs: list[int], args: argparse.Namespace) -> None:
    async with httpx.AsyncClient(timeout=60) as client:
        while jobs:
            number = jobs.pop()
            body = {**JOB, "prompt": f"soak {number}", "seed": number}
            # a retry after a lost answer (its replica killed) must not make a second job
            headers = {"Idempotency-Key": f"{run.key_prefix}-{number}"}
            index, response = await request_any(
                client, stack, number, "POST", "/api/v1/generate/video", json=body, headers=headers
            )
            if response.status_code != 202:
                run.refused[f"{response.status_code} {response.json().get('error', {}).get('code')}"] += 1
                continue
            request_id = response.json()["request_id"]
            run.accepted[request_id] = index
            if number % args.cancel_every == 0:
                await asyncio.sleep(random.uniform(0, 2))
                _, cancelled = await request_any(client, stack, index + 1, "DELETE", f"/api/v1/generate/{request_id}")
                run.cancels[cancelled.status_code] += 1
                if cancelled.status_code == 200 and cancelled.json().get("status") == CANCELLED:
                    run.acknowledged.add(request_id)


async def subscriber(stack: ReplicaStack, run: Run, replica: int) -> None:
    """Subscribes to every accepted job on one replica, reconnecting (and resubscribing) when it goes away."""
    received: Counter[str] = Counter()
    run.terminal_events.append(received)
    url = stack.replicas[replica].base_url.replace("http", "ws", 1) + "/api/v1/ws/generation"
    while not run.done.is_set():
        subscribed: set[str] = set()
        try:
            async with websockets.connect(url, open_timeout=10) as ws:
                while not run.done.is_set():
                    for request_id in [r for r in run.accepted if r not in subscribed and r not in received]:
                        await ws.send(json.dumps({"type": "subscribe", "request_id": request_id}))
                        subscribed.add(request_id)
                    with contextlib.suppress(TimeoutError):
                        message = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
                        if message.get("type") in TERMINAL_STATES:
                            received[message["request_id"]] += 1
        except (OSError, websockets.WebSocketException):
            await asyncio.sleep(0.5)


def rows(stack: ReplicaStack) -> dict[str, dict[str, Any]]:
    """Every job row, by request id."""
    with psycopg.connect(stack.database_url, row_factory=dict_row) as conn:
        return {row["request_id"]: row for row in conn.execute("SELECT * FROM jobs")}


def state(table: dict[str, dict[str, Any]], request_id: str) -> str:
    return table.get(request_id, {}).get("status", "")


async def chaos(stack: ReplicaStack, run: Run, args: argparse.Namespace) -> None:
    """SIGKILL one replica once ``kill_replica_after`` jobs were accepted (restart it ``down_s`` later), then one
    tritonserver of the harness's own (restarted likewise)."""
    while len(run.accepted) < args.kill_replica_after and not run.submitted.is_set():
        await asyncio.sleep(0.1)
    victim = stack.replicas[1 % len(stack.replicas)]
    victim.kill()
    run.replica_killed_at = time.time()
    table = await asyncio.to_thread(rows, stack)
    run.victims = [r for r in run.accepted if state(table, r) == PROCESSING and runner(table, run, r) is victim]
    await asyncio.sleep(args.down_s)
    # as a new pod would (a new name), or under its old one (--restart-same-name)
    renamed = None if args.restart_same_name else f"{victim.replica_id}-life{victim.lives + 1}"
    await asyncio.to_thread(victim.start, renamed)
    if stack.tritons and args.kill_triton:
        stack.kill_triton(0)
        await asyncio.sleep(args.down_s)
        await asyncio.to_thread(stack.restart_triton, 0)


def runner(table: dict[str, dict[str, Any]], run: Run, request_id: str) -> Replica:
    """The replica running a job: the database's ``owner`` column where the queue lives in the database, else
    (an API that runs the jobs it accepted) the one that accepted it."""
    owner = table[request_id].get("owner")
    if owner is None:
        return run.replicas[run.accepted[request_id]]
    return next((r for r in run.replicas if r.replica_id == owner), run.replicas[run.accepted[request_id]])


def frames_of(stack: ReplicaStack, accepted_by: int, video_path: str) -> int:
    """The frame count of a job's MP4, downloaded from the replica after the one that accepted it (-1: none)."""
    replica = stack.replicas[(accepted_by + 1) % len(stack.replicas)]
    response = httpx.get(f"{replica.base_url}/assets/video/{video_path}", timeout=60)
    if response.status_code != 200:
        return -1
    with av.open(io.BytesIO(response.content)) as container:
        return sum(1 for _ in container.decode(container.streams.video[0]))


def stored_objects(stack: ReplicaStack) -> dict[str, list[str]]:
    """Request id -> the keys of its MP4 objects under this stack's prefix of the bucket."""
    prefix = stack.database_url.rsplit("/", 1)[-1]
    found: dict[str, list[str]] = {}
    for page in stack.s3.client().get_paginator("list_objects_v2").paginate(Bucket=stack.s3.bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            match = ASSET_FILE_RE.search(item["Key"])
            if match and match.group(2) == VIDEO_SUFFIX:
                found.setdefault(request_id_of(match.group(1)) or "", []).append(item["Key"])
    return found


def figures(stack: ReplicaStack, run: Run, seconds: float) -> dict[str, object]:
    table = rows(stack)
    states = Counter(state(table, r) for r in run.accepted if r in table)
    completed = {r for r in run.accepted if state(table, r) == COMPLETED}
    wanted = {r: json.loads(table[r]["parameters"])["num_frames"] for r in completed}
    bad_videos = [r for r in completed if frames_of(stack, run.accepted[r], table[r]["video_path"]) != wanted[r]]
    objects = stored_objects(stack)
    restarted = [table[r]["started_at"] for r in run.victims if table[r]["started_at"] is not None]
    first_rerun = min((s for s in restarted if s > (run.replica_killed_at or 0)), default=None)
    return {
        "replicas": len(stack.replicas), "tritons": len(stack.triton_urls), "seconds": round(seconds, 1),
        "accepted": len(run.accepted), "refused": dict(run.refused), "completed": states[COMPLETED],
        "cancelled": states[CANCELLED], "failed": states[FAILED],
        "lost": sum(1 for r in run.accepted if r not in table),
        "unknown_jobs": sum(1 for r in table if r not in run.accepted),  # made, but no client was told
        "stuck": sum(1 for r in run.accepted if r in table and state(table, r) not in TERMINAL_STATES),
        "cancel_answers": {str(k): v for k, v in run.cancels.items()},
        # a DELETE that answered "cancelled" for a job that then ended otherwise: two terminal states
        "cancel_ignored": sum(1 for r in run.acknowledged if state(table, r) != CANCELLED),
        "duplicated_events": sum(1 for got in run.terminal_events for n in got.values() if n > 1),
        "missing_events": sum(1 for got in run.terminal_events for r in run.accepted if r not in got),
        "bad_videos": len(bad_videos),
        "store_objects": sum(len(keys) for keys in objects.values()),
        "store_missing": sum(1 for r in completed if r not in objects),
        "store_extra": sum(len(keys) - (r in completed) for r, keys in objects.items()),
        # the jobs of those, their state and keys (at most 10): what to look at when store_extra is not 0
        "store_extra_jobs": [f"{r} {state(table, r) or 'no row'}: {' '.join(keys)}" for r, keys in objects.items()
                             if len(keys) > 1 or r not in completed][:10],  # fmt: skip
        "victims": len(run.victims),
        "death_to_rerun_s": None if first_rerun is None else round(first_rerun - run.replica_killed_at, 2),
    }  # fmt: skip


def healthy(result: dict[str, object]) -> bool:
    zero = ("failed", "lost", "unknown_jobs", "stuck", "cancel_ignored", "duplicated_events", "missing_events",
            "bad_videos", "store_missing", "store_extra")  # fmt: skip
    return all(result[k] == 0 for k in zero) and result["completed"] + result["cancelled"] == result["accepted"]


async def soak(stack: ReplicaStack, args: argparse.Namespace) -> dict[str, object]:
    run = Run(replicas=list(stack.replicas))
    started = time.monotonic()
    listeners = [asyncio.create_task(subscriber(stack, run, 2 % len(stack.replicas))) for _ in range(args.subscribers)]
    numbers = list(range(args.jobs, 0, -1))
    clients = asyncio.gather(*(client_loop(stack, run, numbers, args) for _ in range(args.clients)))
    clients.add_done_callback(lambda _: run.submitted.set())
    await asyncio.gather(chaos(stack, run, args), clients)
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        table = await asyncio.to_thread(rows, stack)
        if all(state(table, r) in TERMINAL_STATES for r in run.accepted):
            break
        await asyncio.sleep(1)
    await asyncio.sleep(2)  # the last terminal events reach the subscribers
    run.done.set()
    await asyncio.gather(*listeners)
    return await asyncio.to_thread(figures, stack, run, time.monotonic() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--tritons", type=int, default=2, help="tritonservers started here (--triton-urls: none)")
    parser.add_argument("--triton-urls", default="", help="comma-separated running Tritons to use instead")
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--subscribers", type=int, default=2)
    parser.add_argument("--cancel-every", type=int, default=7, help="every n-th job is cancelled")
    parser.add_argument("--kill-replica-after", type=int, default=60, help="accepted jobs before the SIGKILL")
    parser.add_argument("--down-s", type=float, default=3.0, help="seconds a killed server stays down")
    parser.add_argument("--no-kill-triton", dest="kill_triton", action="store_false")
    parser.add_argument("--restart-same-name", action="store_true", help="the killed replica comes back as itself")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for every job to settle")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    repository = Settings.from_env().model_repository
    urls = [u for u in args.triton_urls.split(",") if u]
    overrides = {"VISUALIZR_WORKERS": "2", "VISUALIZR_QUEUE_SIZE": str(args.jobs)}
    with (
        tempfile.TemporaryDirectory(prefix="visualizr-soak-") as root,
        replica_stack(Path(root), repository, args.replicas, args.tritons, triton_urls=urls, **overrides) as stack,
    ):
        result = asyncio.run(soak(stack, args))
    for name, value in result.items():
        print(f"{name:18} {value}")
    print(f"{'verdict':18} {'pass' if healthy(result) else 'FAIL'}")
    if args.json:
        print(json.dumps(result))
    return 0 if healthy(result) else 1


if __name__ == "__main__":
    raise SystemExit(main())
