"""Job events between two replicas over PostgreSQL LISTEN/NOTIFY: two ``EventRelay``s in one process on a server
of the benchmark's own (Debian's PostgreSQL on 127.0.0.1), replica A publishing, replica B's subscribers receiving.

    python -m benchmarks.job_events [--jobs 200] [--seconds 3]

* latency: A publishes one progress message per job every 0.1 s (a phase change each time, so the throttle sends
  them all) for ``--seconds``; B's delivery time minus the publish time, p50 / p99 / max;
* burst: A publishes the terminal message of ``--jobs`` x 10 jobs at once; how long until B has them all, and the
  rate that makes.

The machine is shared and noisy: read one run's figures as a scale, not as a record.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import msgspec

from benchmarks.backing_services import PostgresServer
from visualizr.frontend.generation.reporting.relay import EventRelay


class Received:
    """B's subscribers: every job watched; when each message arrived."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.terminal = 0

    def deliver(self, request_id: str, text: str, *, terminal: bool) -> None:
        if terminal:
            self.terminal += 1
        else:
            self.latencies.append(time.perf_counter() - msgspec.json.decode(text)["sent"])

    def watched(self, request_id: str) -> bool:
        return True

    def subscribed(self) -> list[str]:
        return []


async def no_row(request_id: str) -> tuple[msgspec.Struct, bool]:
    raise LookupError(request_id)


async def measure(url: str, jobs: int, seconds: float) -> None:
    a, b = EventRelay(url, "replica-a"), EventRelay(url, "replica-b")
    received = Received()
    tasks = [asyncio.create_task(a.run(Received(), no_row)), asyncio.create_task(b.run(received, no_row))]
    try:
        while not (a.listening and b.listening):
            await asyncio.sleep(0.01)
        rounds = max(1, round(seconds / 0.1))
        for step in range(rounds):
            for job in range(jobs):
                text = msgspec.json.encode({"request_id": f"job-{job}", "sent": time.perf_counter()}).decode()
                a.publish(f"job-{job}", text, step, terminal=False)
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        lat = sorted(received.latencies)
        print(f"latency: {len(lat)} of {rounds * jobs} progress notices, {jobs} jobs x {rounds} rounds")
        print(f"  p50 {1000 * statistics.median(lat):.1f} ms, p99 {1000 * lat[int(0.99 * (len(lat) - 1))]:.1f} ms, "
              f"max {1000 * lat[-1]:.1f} ms")  # fmt: skip
        burst = jobs * 10
        start = time.perf_counter()
        for job in range(burst):
            a.publish(f"done-{job}", '{"type":"completed"}', "end", terminal=True)
        while received.terminal < burst:
            await asyncio.sleep(0.001)
        took = time.perf_counter() - start
        print(f"burst: {burst} terminal notices in {1000 * took:.0f} ms = {burst / took:.0f} notices/s")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args(argv)
    with PostgresServer() as server:
        asyncio.run(measure(server.url, args.jobs, args.seconds))


if __name__ == "__main__":
    main()
