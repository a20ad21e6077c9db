"""benchmarks/eta_replay.py run briefly: runs stored in a real job database (SQLite) are replayed through the cost
model, one row per run, the error of each before it is learnt, and a summary after the warm-up that is small when
the runs follow the model's terms (and not when they do not)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from benchmarks import eta_replay
from visualizr.frontend.generation.reporting.cost_model import DECODE, DENOISE, samples_of_run
from visualizr.frontend.jobs.database import SqliteDatabase
from visualizr.frontend.jobs.record import GenerationParameters
from visualizr.frontend.jobs.store import JobStore

SIZES = [GenerationParameters(side, side, frames, 8, steps, 7.5, 1)
         for side, frames, steps in ((64, 8, 4), (128, 16, 12), (96, 12, 8), (128, 8, 20))]  # fmt: skip


def store_runs(data_dir: Path, seconds_per_work: list[float]) -> None:
    """One run per rate, its denoising at that many seconds per unit of work, its decoding as the prior has it."""

    async def scenario() -> None:
        store = JobStore(SqliteDatabase(data_dir / "jobs.sqlite3"))
        await store.open()
        try:
            for index, rate in enumerate(seconds_per_work):
                parameters = SIZES[index % len(SIZES)]
                cells = parameters.width * parameters.height / 64
                work = parameters.num_inference_steps * 2 * parameters.num_frames * cells
                phases = {DENOISE: 0.01 * parameters.num_inference_steps + rate * work, DECODE: 0.05}
                run = samples_of_run("m", parameters, phases, sum(phases.values()) + 0.1, beside={})
                await store.add_cost_samples(run, recorded_at=float(index), keep=1000)
        finally:
            await store.close()

    asyncio.run(scenario())


def test_the_replay_prints_each_run_s_error_and_a_small_one_for_runs_the_model_fits(tmp_path: Path) -> None:
    store_runs(tmp_path, [3e-6] * 16)
    lines = eta_replay.main([str(tmp_path), "--warmup", "8"])
    assert len(lines) == 1 + 16 + 1, lines
    assert all(" m " in row and "denoise" in row for row in lines[1:-1]), lines
    assert lines[-1].startswith("after 8 warm-up runs, 8 runs: 100 % within +-20 %"), lines


def test_runs_whose_time_jumps_show_in_the_replay(tmp_path: Path) -> None:
    store_runs(tmp_path, [3e-6] * 8 + [3e-6, 12e-6] * 4)  # every other run four times as slow
    lines = eta_replay.main([str(tmp_path), "--warmup", "8"])
    within = int(lines[-1].split(": ")[1].split(" %")[0])
    assert within <= 50, lines
