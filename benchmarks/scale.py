"""The API tier at scale, through the real API over HTTP, each comparison interleaved in one run:

1. **A big job table**: status p50/p99 (``GET /api/v1/generate/status/{id}``, random ids) and asset-listing p50/p99
   (``GET /api/v1/assets/videos``) with ``--jobs`` completed jobs (default 100,000) in the table: SQLite vs PostgreSQL
   with the files in the data folder (each job has its empty MP4 there: the listing keeps the jobs whose MP4 exists),
   and PostgreSQL with the files in S3 (the replicas' setup: the table is the truth, paged by the database). The rows
   are bulk-loaded into the migrated schema (executemany / COPY), not submitted through the API. These APIs point at
   a Triton address nothing serves: no inference runs beside the measurement.
2. **Replicas**: submit and status throughput (requests/s, ``--clients`` concurrent clients) with ``--replicas`` API
   processes (default 3) vs one, on one PostgreSQL, in front of one tritonserver loading only AnimateDiff
   (``benchmarks.replicas``). "One" sends every request to replica 0, "N" spreads them over all, alternating rounds.
   The tiny jobs are cancelled after each round (untimed), so the backlog stays small.

    python -m benchmarks.scale [--jobs 100000] [--requests 300] [--replicas 3] [--submissions 120] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import httpx
import msgspec

from benchmarks.backing_services import PostgresServer, S3Server
from benchmarks.replicas import replica_stack, shared_storage
from benchmarks.stack import ApiProcess, free_port, stack_settings, start_api
from visualizr.frontend.jobs.database import POSTGRESQL, Connection, open_database
from visualizr.frontend.jobs.naming import asset_names, new_request_id, video_id_of
from visualizr.frontend.jobs.record import COMPLETED, KIND_TEXT, GenerationParameters, JobRecord, VideoMetadata
from visualizr.frontend.jobs.store import JobStore
from visualizr.settings import Settings

TINY_JOB = {"width": 64, "height": 64, "num_frames": 4, "fps": 4, "num_inference_steps": 2, "guidance_scale": 7.5}
_JSON_COLUMNS = ("parameters", "metadata")


# ------------------------------------------------------------------------------------------ the big table


def completed_job(index: int, now: float) -> JobRecord:
    created = now - 30 * 86400 + index * 7.0
    parameters = GenerationParameters(**TINY_JOB, seed=index)
    metadata = VideoMetadata(0.5, 8, "64x64", 4096, "mp4", "h264", 4)
    request_id = new_request_id(KIND_TEXT)
    return JobRecord(
        request_id=request_id, model="animatediff", prompt=f"scale job {index}", negative_prompt="", style=None,
        parameters=parameters, status=COMPLETED, progress=100, current_step="completed", created_at=created,
        started_at=created + 1, completed_at=created + 5, video_path=asset_names(video_id_of(request_id))[0],
        metadata=metadata, processing_time_seconds=4.0, attempts=1,
    )  # fmt: skip


def bulk_load(conn: Connection, jobs: Sequence[JobRecord]) -> None:
    """Insert ``jobs`` in one transaction: COPY on PostgreSQL, executemany on SQLite."""
    columns = JobRecord.__struct_fields__
    rows = []
    for job in jobs:
        row = msgspec.structs.asdict(job)
        for name in _JSON_COLUMNS:
            row[name] = None if row[name] is None else msgspec.json.encode(row[name]).decode()
        rows.append(tuple(int(row[c]) if isinstance(row[c], bool) else row[c] for c in columns))  # flags: INTEGER
    if conn.dialect == POSTGRESQL:
        with conn.raw.cursor().copy(f"COPY jobs ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    else:
        conn.raw.executemany(f"INSERT INTO jobs ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", rows)


def filled_api(data_dir: Path, jobs: Sequence[JobRecord], assets: Path | None, **storage: str) -> ApiProcess:
    """An API (no Triton behind it) on a job table holding ``jobs``, their MP4s in the ``assets`` folder (None: the
    files are in the object store ``storage`` names)."""
    settings, env = stack_settings(data_dir, VISUALIZR_TRITON_URLS=f"127.0.0.1:{free_port()}", **storage)
    database = open_database(settings.database_url, settings.database_path)
    JobStore(database).check()  # the schema, migrated as the API does at start-up
    database.run_once(lambda conn: bulk_load(conn, jobs))
    if assets is not None:
        settings.assets_dir.parent.mkdir(parents=True, exist_ok=True)
        settings.assets_dir.symlink_to(assets, target_is_directory=True)
    return start_api(settings, env, timeout_s=120)


def timed_get(client: httpx.Client, url: str) -> float:
    started = time.perf_counter()
    response = client.get(url)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"GET {url}: {response.status_code} {response.text[:300]}")
    return elapsed


def percentile(samples: list[float], q: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1]


def big_table(postgres: PostgresServer, s3: S3Server, root: Path, jobs: int, requests: int) -> None:
    now = time.time()
    records = [completed_job(i, now) for i in range(jobs)]
    assets = root / "assets"
    assets.mkdir(parents=True)
    for record in records:
        (assets / record.video_path).touch()
    loaded = time.perf_counter()
    apis = {
        "sqlite": filled_api(root / "sqlite", records, assets),
        "postgresql": filled_api(root / "postgresql", records, assets, VISUALIZR_DATABASE_URL=postgres.new_database()),
        "postgresql+s3": filled_api(root / "pg-s3", records, None, **shared_storage(postgres.new_database(), s3)),
    }
    print(f"{jobs} completed jobs loaded into each table, APIs up in {time.perf_counter() - loaded:.1f} s")
    try:
        ids = [r.request_id for r in records]
        samples: dict[tuple[str, str], list[float]] = {}
        with httpx.Client(timeout=120) as client:
            for api in apis.values():  # one warm-up each
                timed_get(client, f"{api.base_url}/api/v1/assets/videos?limit=20")
            for i in range(requests):
                engines = list(apis.items())
                order = engines[i % len(engines) :] + engines[: i % len(engines)]  # each first in turn
                status_path = f"/api/v1/generate/status/{random.choice(ids)}"
                for name, api in order:
                    samples.setdefault((name, "status"), []).append(timed_get(client, api.base_url + status_path))
                    listing = f"{api.base_url}/api/v1/assets/videos?limit=20&offset={random.randrange(0, 1000)}"
                    samples.setdefault((name, "listing"), []).append(timed_get(client, listing))
    finally:
        for api in apis.values():
            api.stop()
    for what in ("status", "listing"):
        for name in apis:
            got = samples[(name, what)]
            print(f"{what:7} {name:13} p50 {percentile(got, 50) * 1e3:8.1f} ms  p99 {percentile(got, 99) * 1e3:8.1f} ms"
                  f"  ({len(got)} requests, {jobs} jobs)")  # fmt: skip
        for name in ("postgresql", "postgresql+s3"):
            ratio = percentile(samples[(name, what)], 99) / percentile(samples[("sqlite", what)], 99)
            print(f"{what} p99 {name} / sqlite = {ratio:.2f}")


# ------------------------------------------------------------------------------------------- replicas


async def concurrently(count: int, clients: int, request: Callable[[httpx.AsyncClient, int], Awaitable[None]]) -> float:
    """Seconds ``clients`` concurrent clients take to make ``count`` requests (``request(client, index)``)."""
    indices = iter(range(count))

    async def client_loop(client: httpx.AsyncClient) -> None:
        for index in indices:
            await request(client, index)

    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=120) as client:
        await asyncio.gather(*(client_loop(client) for _ in range(clients)))
    return time.perf_counter() - started


async def submit_all(urls: list[str], count: int, clients: int) -> tuple[float, list[tuple[str, str]]]:
    """``count`` tiny jobs, round-robin over ``urls``: (seconds, [(url, request id) accepted])."""
    accepted: list[tuple[str, str]] = []

    async def submit(client: httpx.AsyncClient, index: int) -> None:
        url = urls[index % len(urls)]
        body = {**TINY_JOB, "prompt": f"scale {index}", "seed": index}
        response = await client.post(f"{url}/api/v1/generate/video", json=body)
        if response.status_code != 202:
            raise RuntimeError(f"submit: {response.status_code} {response.text[:300]}")
        accepted.append((url, response.json()["request_id"]))

    return await concurrently(count, clients, submit), accepted


async def poll_all(urls: list[str], ids: list[str], count: int, clients: int) -> float:
    """Seconds for ``count`` status requests over ``ids``, round-robin over ``urls``."""

    async def poll(client: httpx.AsyncClient, index: int) -> None:
        response = await client.get(f"{urls[index % len(urls)]}/api/v1/generate/status/{ids[index % len(ids)]}")
        if response.status_code != 200:
            raise RuntimeError(f"status: {response.status_code} {response.text[:300]}")

    return await concurrently(count, clients, poll)


async def cancel_all(accepted: list[tuple[str, str]]) -> None:
    async with httpx.AsyncClient(timeout=120) as client:
        for url, request_id in accepted:
            await client.delete(f"{url}/api/v1/generate/{request_id}")


def replicas_throughput(args: argparse.Namespace, postgres: PostgresServer, root: Path) -> None:
    repository = Settings.from_env().model_repository
    overrides = {"VISUALIZR_WORKERS": "1", "VISUALIZR_QUEUE_SIZE": "100000"}
    with replica_stack(root, repository, args.replicas, tritons=1, postgres=postgres, **overrides) as stack:
        layouts = {"1": stack.urls[:1], str(args.replicas): stack.urls}
        rates: dict[tuple[str, str], list[float]] = {}
        for round_index in range(args.rounds):
            order = list(layouts.items()) if round_index % 2 == 0 else list(reversed(layouts.items()))
            for name, urls in order:
                seconds, accepted = asyncio.run(submit_all(urls, args.submissions, args.clients))
                rates.setdefault((name, "submit"), []).append(len(accepted) / seconds)
                ids = [request_id for _, request_id in accepted]
                seconds = asyncio.run(poll_all(urls, ids, args.requests, args.clients))
                rates.setdefault((name, "status"), []).append(args.requests / seconds)
                asyncio.run(cancel_all(accepted))
    for what in ("submit", "status"):
        for name in layouts:
            got = rates[(name, what)]
            print(f"{what:6} {name} replica(s): median {statistics.median(got):7.1f} requests/s  "
                  f"({', '.join(f'{r:.1f}' for r in got)})")  # fmt: skip
        ratio = statistics.median(rates[(str(args.replicas), what)]) / statistics.median(rates[("1", what)])
        print(f"{what} throughput {args.replicas} replicas / 1 = {ratio:.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=100_000, help="completed jobs in the table")
    parser.add_argument("--requests", type=int, default=300, help="status/listing requests per engine and round")
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--submissions", type=int, default=120, help="jobs submitted per layout and round")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients of the throughput rounds")
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds per layout (alternating)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="visualizr-scale-") as scratch, PostgresServer() as postgres:
        root = Path(scratch)
        with S3Server(root / "s3") as s3:
            big_table(postgres, s3, root / "table", args.jobs, args.requests)
        replicas_throughput(args, postgres, root / "replicas")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
