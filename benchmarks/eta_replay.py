"""Where the ETA's error comes from, run by run: a stack's stored cost samples (``eta_samples`` in its data
folder, e.g. ``python -m benchmarks.eta --data-dir DIR``) replayed through the cost model in the order it learnt
them. Before each run is learnt, its predicted seconds, given the company it really had (the jobs beside it by
model, time-weighted; ``slowdown``: the model's for that company), against its measured ones: in total (a cold
load left out: its own term) and per part.

    python -m benchmarks.eta_replay DIR [--warmup 10]

The summary, over the runs after the warm-up: the median |error| and the share within +-20 % of a run's time when
the jobs beside it are known: the part of an estimate's error that is the cost model's and the machine's, not the
queue's (``benchmarks/eta.py`` measures the whole).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from pathlib import Path

from visualizr.frontend.generation.reporting.cost_model import LOAD, OVERHEAD, CostModel
from visualizr.frontend.jobs.database import SqliteDatabase
from visualizr.frontend.jobs.record import CostSample
from visualizr.frontend.jobs.store import JobStore

WITHIN = 0.2


async def stored_runs(data_dir: Path) -> list[list[CostSample]]:
    store = JobStore(SqliteDatabase(data_dir / "jobs.sqlite3"))
    await store.open()
    try:
        return await store.cost_samples()
    finally:
        await store.close()


def replay(runs: list[list[CostSample]], warmup: int) -> list[str]:
    costs, errors = CostModel(), []
    lines = ["  # model                     n slowdown speed measured predicted  error | beside | measured/expected"]
    for index, run in enumerate(runs):
        timed = [sample for sample in run if sample.part != LOAD]
        measured = sum(sample.seconds for sample in timed)
        predicted = sum(costs.predicted(sample) for sample in timed)
        error = (predicted - measured) / measured if measured > 0 else 0.0
        if index >= warmup:
            errors.append(error)
        parts = " ".join(f"{s.part} {s.seconds:.2f}/{costs.predicted(s):.2f}" for s in run)
        whole = next((s for s in run if s.part == OVERHEAD), run[0])  # its company: the run's
        model, beside = whole.model, whole.company
        company = " ".join(f"{other} {n:.2f}" for other, n in sorted(beside.items())) or "-"
        lines.append(
            f"{index:3} {model:<22} {whole.concurrency:4.2f} {costs.slowdown(model, beside):8.2f} {costs.speed:5.2f} "
            f"{measured:8.2f}s {predicted:8.2f}s {100 * error:+5.0f}% | {company} | {parts}"
        )
        costs.observe(run)
    if errors:
        within = sum(abs(e) <= WITHIN for e in errors) / len(errors)
        median = statistics.median(abs(e) for e in errors)
        lines.append(
            f"after {warmup} warm-up runs, {len(errors)} runs: {100 * within:.0f} % within +-{100 * WITHIN:.0f} %, "
            f"median |error| {100 * median:.1f} %"
        )
    return lines


def main(argv: list[str] | None = None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path, help="a stack's data folder (its jobs.sqlite3)")
    parser.add_argument("--warmup", type=int, default=10, help="runs left out of the summary (default 10)")
    args = parser.parse_args(argv)
    lines = replay(asyncio.run(stored_runs(args.data_dir)), args.warmup)
    print("\n".join(lines), flush=True)
    return lines


if __name__ == "__main__":
    main()
