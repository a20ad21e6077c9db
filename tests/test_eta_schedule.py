"""The queue's part of an estimate (``generation.reporting.schedule``, ``Standing``): the scheduler simulated over
the jobs running and waiting, jobs run at once sharing the machine at the learnt slowdown; a run's company counted
by time; a running job's pace less the slowdown it ran at. Pure logic: a fake store answers the queue, a fake gate
says every model is loaded, an injected clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from visualizr import names
from visualizr.frontend.catalog import ModelCatalog
from visualizr.frontend.generation.dispatch.queue import Company, LiveJob, LocalQueue
from visualizr.frontend.generation.reporting.cost_model import CostModel
from visualizr.frontend.generation.reporting.eta import Pace, Workload, remaining_seconds
from visualizr.frontend.generation.reporting.schedule import Timing, Work, simulate
from visualizr.frontend.generation.reporting.standing import Standing
from visualizr.frontend.jobs.record import KIND_TEXT, PROCESSING, GenerationParameters, JobRecord
from visualizr.frontend.jobs.work_queue import QueueView

SMALL = GenerationParameters(64, 64, 4, 4, 2, 7.5, 1)
HALVED = CostModel(contention=1.0).slowdown  # two at once: each at half speed


def jobs(*seconds: float, model: str = "m") -> list[Work]:
    return [Work(model, s) for s in seconds]


def test_jobs_alone_run_at_solo_speed_and_wait_for_a_free_worker_in_order() -> None:
    ends, timings = simulate(jobs(3.0), jobs(1.0, 2.0), workers=1, slowdown=HALVED)
    assert ends == [3.0] and timings == [Timing(3.0, 4.0), Timing(4.0, 6.0)]


def test_jobs_sharing_the_machine_slow_each_other_only_while_they_overlap() -> None:
    # A (4 s of work) and B (2 s) run at half speed; B ends at 4, C (1 s) starts then beside A; A is alone last.
    ends, timings = simulate(jobs(4.0, 2.0), jobs(1.0), workers=2, slowdown=HALVED)
    assert ends == pytest.approx([7.0, 4.0])
    assert timings == [Timing(pytest.approx(4.0), pytest.approx(6.0))]
    # no slowdown (a machine with room for both): the list scheduling of solo times
    ends, timings = simulate(jobs(4.0, 2.0), jobs(1.0), workers=2, slowdown=lambda model, beside: 1.0)
    assert ends == [4.0, 2.0] and timings == [Timing(2.0, 3.0)]


def test_more_jobs_running_than_workers_all_run_on_and_a_waiting_job_waits_for_room() -> None:
    # another replica's job counts: three run at a third of their speed each, the waiting one starts when two are left
    ends, timings = simulate(
        jobs(1.0, 1.0, 2.0), jobs(1.0), workers=2, slowdown=lambda model, beside: 1 + sum(beside.values())
    )
    assert ends == pytest.approx([3.0, 3.0, 5.0])
    assert timings == [Timing(pytest.approx(3.0), pytest.approx(5.0))]
    assert simulate([], [], workers=2, slowdown=HALVED) == ([], [])


def test_a_run_s_company_is_weighted_by_time_by_model() -> None:
    company = Company()
    assert company.mean(now=0.0) == {}  # nothing noted: alone
    company.note({"m": 1}, now=10.0)
    assert company.mean(now=10.0) == {"m": 1.0}  # noted, no time yet: what it runs beside now
    company.note({}, now=13.0)  # 3 s beside another
    company.note({}, now=14.0)  # 1 s alone (the same company noted again changes nothing)
    assert company.mean(now=16.0) == pytest.approx({"m": 3 / 6})  # and 2 s more alone, up to now
    company.note({"m": 1, "n": 1}, now=16.0)
    assert company.mean(now=18.0) == pytest.approx({"m": (3 + 2) / 8, "n": 2 / 8})
    assert company.mean(now=18.0, since=12.0) == pytest.approx({"m": (1 + 2) / 6, "n": 2 / 6})  # a part of the run


def test_each_measured_part_of_a_run_keeps_the_company_it_had() -> None:
    job = LiveJob(record("video_req_a"), Workload(0.0, 1.0, 0.0, 0.0), estimate_seconds=1.0)
    job.company.note({}, now=0.0)
    job.measured("denoise", 4.0, now=4.0)  # alone
    job.company.note({"n": 1}, now=4.0)
    job.measured("decode", 2.0, now=6.0)  # beside a job of n
    job.company.note({}, now=7.0)
    job.measured("encode", 2.0, now=8.0)  # beside it for half of it
    assert job.phases == {"denoise": 4.0, "decode": 2.0, "encode": 2.0}
    assert job.part_company() == {"denoise": {}, "decode": {"n": 1.0}, "encode": {"n": 0.5}}
    assert job.company.mean(now=8.0) == pytest.approx({"n": 3 / 8})


def test_jobs_beside_jobs_of_a_model_that_slows_them_more_end_later() -> None:
    # "svd" beside "svd" runs at a third of its speed, beside "ad" (or "ad" beside anything) at half speed
    def slowdown(model: str, beside: dict[str, float]) -> float:
        return 1 + sum(n * (2.0 if model == beside_model == "svd" else 1.0) for beside_model, n in beside.items())

    ends, _ = simulate([Work("svd", 2.0), Work("svd", 2.0)], [], workers=2, slowdown=slowdown)
    assert ends == pytest.approx([6.0, 6.0])
    ends, _ = simulate([Work("svd", 2.0), Work("ad", 2.0)], [], workers=2, slowdown=slowdown)
    assert ends == pytest.approx([4.0, 4.0])
    # the waiting job's start and end follow whom it runs beside
    _, timings = simulate([Work("svd", 2.0), Work("ad", 1.0)], [Work("svd", 1.0)], workers=2, slowdown=slowdown)
    # ad ends at 2 (half speed), svd has 1 left; the waiting svd starts at 2 beside it: both at a third, end at 5
    assert timings == [Timing(pytest.approx(2.0), pytest.approx(5.0))]


def test_a_running_job_s_work_left_is_its_pace_less_the_slowdown_it_ran_at() -> None:
    work, pace = Workload(0.0, 8.0, 1.0, 1.0, conditioning=0.0), Pace()
    pace.reached(work, names.PHASE_FRAME_GENERATION, 0, 8, now=0.0)
    pace.reached(work, names.PHASE_FRAME_GENERATION, 4, 8, now=8.0)  # half the denoising took 8 s: twice its estimate
    alone = remaining_seconds(work, pace, 10.0, 8.0)
    assert alone == pytest.approx(2 * 4.0 + 2.0)  # its steps at its pace, decoding and encoding at the estimate's
    assert remaining_seconds(work, pace, 10.0, 8.0, pace_slowdown=2.0) == pytest.approx(4.0 + 2.0)


class FakeStore:
    def __init__(self, view: QueueView) -> None:
        self.view = view

    async def run(self, work: Callable[[object], QueueView]) -> QueueView:
        return self.view


class LoadedGate:
    async def loaded(self, model: str) -> bool:
        return True


def record(request_id: str) -> JobRecord:
    return JobRecord(request_id, "m", "p", "", None, SMALL, PROCESSING, 10, names.PHASE_TEXT_ENCODING, 1.0)


def test_the_standing_of_running_and_waiting_jobs_is_their_simulated_schedule(tmp_path: Path) -> None:
    local, costs = LocalQueue(), CostModel(contention=1.0)
    a, b = record("video_req_a"), record("video_req_b")
    view = QueueView([("m", KIND_TEXT, SMALL)], [a, b])
    unused = None  # the disk and the files: an estimate needs the queue, the costs, the cards and the gate
    standing = Standing(
        FakeStore(view), local, costs, ModelCatalog(tmp_path), LoadedGate(), unused, unused, 2, lambda: 100.0
    )
    work = Workload(0.0, 1.0, 0.0, 0.0)
    for rec, solo in ((a, 4.0), (b, 2.0)):  # no progress yet: their solo estimates are all they have left
        local.live[rec.request_id] = LiveJob(rec, work, estimate_seconds=solo)
    waiting = standing.solo("m", KIND_TEXT, SMALL)
    assert waiting > 0
    # b ends at 4 (half speed beside a); the waiting job then runs beside a (2 s left of it) at half speed
    overlap = min(2.0, waiting)
    a_end = 4.0 + 2 * overlap + (2.0 - overlap)
    assert asyncio.run(standing.remaining(local.live["video_req_a"])) == pytest.approx(a_end)
    assert asyncio.run(standing.running_remaining()) == pytest.approx([4.0 + 2.0, 4.0])  # nothing waits: a alone last
    wait, run = asyncio.run(standing._wait_and_run(QueueView([], [a, b]), "m", KIND_TEXT, SMALL))
    assert wait == pytest.approx(4.0) and run == pytest.approx(2 * overlap + (waiting - overlap))
    # a job that ran beside another so far (company 2) has its paced time left at half speed in solo work
    job = local.live["video_req_a"]
    job.pace.reached(work, names.PHASE_FRAME_GENERATION, 0, 4, now=90.0)
    job.pace.reached(work, names.PHASE_FRAME_GENERATION, 2, 4, now=99.0)
    job.company.note({"m": 1}, now=90.0)
    job.company.note({"m": 1}, now=100.0)
    paced = remaining_seconds(work, job.pace, 4.0, 100.0)
    assert standing.solo_left(job) == pytest.approx(paced / 2) and paced > 4.0
