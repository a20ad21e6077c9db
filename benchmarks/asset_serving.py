"""``/assets/video/...`` through the API: the data folder vs an S3 bucket (SeaweedFS on loopback), the same file
and the same API code, so the ratio is what proxying from S3 costs.

Starts SeaweedFS and two API processes (no Triton: only the file route is used), puts one ``--mib`` MiB file as
``video_<hex>.mp4`` in each store, then, interleaved round by round:
  whole : GET of the whole file (MiB/s)
  range : ``--ranges`` GETs of a random 256 KiB range each (a player seeking), p50 / p99 in ms
and prints the medians and the ratios S3 / folder.

    python -m benchmarks.asset_serving [--mib 32] [--rounds 5] [--ranges 50]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks.backing_services import S3Server
from benchmarks.stack import ApiProcess, free_port, stack_settings, start_api

MIB = 1024 * 1024
SPAN = 256 * 1024
FILE_NAME = "video_0123456789abcdef.mp4"
URL = f"/assets/video/{FILE_NAME}"


def api_on(data_dir: Path, **overrides: str) -> ApiProcess:
    settings, env = stack_settings(data_dir, VISUALIZR_TRITON_URLS=f"127.0.0.1:{free_port()}", **overrides)
    return start_api(settings, env)


def whole_mib_per_s(client: httpx.Client, size: int) -> float:
    started = time.perf_counter()
    response = client.get(URL)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200 and len(response.content) == size, response.status_code
    return size / MIB / elapsed


def range_ms(client: httpx.Client, size: int, count: int, rng: random.Random) -> list[float]:
    times = []
    for _ in range(count):
        first = rng.randrange(0, size - SPAN)
        started = time.perf_counter()
        response = client.get(URL, headers={"Range": f"bytes={first}-{first + SPAN - 1}"})
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 206 and len(response.content) == SPAN, response.status_code
    return times


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ranges", type=int, default=50)
    args = parser.parse_args()
    data = os.urandom(args.mib * MIB)
    with tempfile.TemporaryDirectory() as scratch, S3Server(Path(scratch) / "s3") as s3:
        root = Path(scratch)
        folder_dir = root / "folder"
        (folder_dir / "assets" / "video").mkdir(parents=True)
        (folder_dir / "assets" / "video" / FILE_NAME).write_bytes(data)
        s3.client().put_object(Bucket=s3.bucket, Key=f"bench/assets/video/{FILE_NAME}", Body=data)
        bucket = {"VISUALIZR_ASSET_STORE": f"s3://{s3.bucket}/bench", "VISUALIZR_S3_ENDPOINT_URL": s3.endpoint_url}
        apis = {"folder": api_on(folder_dir), "s3": api_on(root / "s3-api", **bucket, **s3.credentials)}
        try:
            clients = {name: httpx.Client(base_url=api.base_url, timeout=120) for name, api in apis.items()}
            whole: dict[str, list[float]] = {name: [] for name in apis}
            ranges: dict[str, list[float]] = {name: [] for name in apis}
            rng = random.Random(0)
            for client in clients.values():  # warm-up: connections, the S3 client
                range_ms(client, len(data), 2, rng)
            for _ in range(args.rounds):
                for name, client in clients.items():
                    whole[name].append(whole_mib_per_s(client, len(data)))
                    ranges[name] += range_ms(client, len(data), args.ranges, rng)
        finally:
            for api in apis.values():
                api.stop()
    print(f"{args.mib} MiB file, {args.rounds} round(s), {args.ranges} range(s) of {SPAN // 1024} KiB per round")
    p50 = {name: percentile(times, 50) for name, times in ranges.items()}
    for name in apis:
        rate, p99 = statistics.median(whole[name]), percentile(ranges[name], 99)
        print(f"{name:6s} whole median {rate:8.1f} MiB/s   range p50 {p50[name]:6.2f} ms  p99 {p99:6.2f} ms")
    ratio = statistics.median(whole["s3"]) / statistics.median(whole["folder"])
    print(f"s3 / folder: whole throughput = {ratio:.2f}, range p50 = {p50['s3'] / p50['folder']:.2f}")

if __name__ == "__main__":
    main()
