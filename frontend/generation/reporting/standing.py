"""Where each job stands, as the API shows it, read from the shared queue (the job table) so that every replica
answers alike: a waiting job's place and what it waits for (a worker, its retry's backoff, an inference endpoint,
disk space), the seconds left, its status body and progress message, the 202 body, a quote. A job running on this
replica adds its measured pace.

Estimates come from the cost model (``cost_model``): each job's solo seconds of work (with a load when its model is
not loaded and no job before it loads it; a running job's work left at its own pace), run through a simulation of
the scheduler (``schedule.simulate``): the workers take the queue in order, jobs running at once share the machine
at the learnt slowdown of each model beside the others. A waiting job's wait is its simulated start, its
estimate its simulated end; a running job's time left, its simulated end among the jobs running and waiting
(which start as workers free up). The 202's estimate and the status' time left are whole seconds, the nearest
(``views.whole_seconds``); a quote's are not rounded."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from visualizr.frontend import clock
from visualizr.frontend.catalog import ModelCatalog
from visualizr.frontend.errors import ModelNotFoundError
from visualizr.frontend.generation.dispatch.queue import LiveJob, LocalQueue
from visualizr.frontend.generation.reporting import views
from visualizr.frontend.generation.reporting.cost_model import CostModel
from visualizr.frontend.generation.reporting.eta import (
    MIN_ESTIMATE_SECONDS,
    Workload,
    remaining_seconds,
    workload,
)
from visualizr.frontend.generation.reporting.schedule import Timing, Work, jobs_beside, simulate
from visualizr.frontend.generation.running.runner import InferenceGate
from visualizr.frontend.generation.schemas import GenerateVideoResponse, JobStatus, WsProgress
from visualizr.frontend.infra.disk import DiskGuard
from visualizr.frontend.jobs.files import JobFiles
from visualizr.frontend.jobs.record import (
    KIND_IMAGE,
    PROCESSING,
    QUEUED,
    STEP_QUEUED,
    STEP_RETRYING,
    STEP_WAITING_FOR_DISK,
    STEP_WAITING_FOR_INFERENCE,
    STEP_WAITING_FOR_OBJECT_STORE,
    GenerationParameters,
    JobRecord,
)
from visualizr.frontend.jobs.store import JobStore
from visualizr.frontend.jobs.work_queue import QueueView, queue_view

LOADED_TTL_SECONDS = 2.0  # how long a model's loaded state, asked of the inference servers, is taken as known
FIRST_ESTIMATES_KEPT = 10_000  # the 202 estimates of jobs not yet done, kept for the calibration histogram


class Standing:
    def __init__(
        self,
        store: JobStore,
        local: LocalQueue,
        costs: CostModel,
        catalog: ModelCatalog,
        gate: InferenceGate,
        disk: DiskGuard,
        files: JobFiles,
        workers: int,
        now: Callable[[], float],
    ) -> None:
        self.store, self.local, self.costs, self.catalog = store, local, costs, catalog
        self.gate, self.disk, self.files, self.workers, self._now = gate, disk, files, workers, now
        self._loaded: dict[str, tuple[float, bool]] = {}  # model -> (asked at, loaded)
        self.first_estimates: dict[str, float] = {}  # request_id -> its 202's estimate (jobs submitted here)

    def _keyframe(self, model: str, kind: str) -> bool:
        """Whether a job makes its keyframe first: a prompt-only job on an image-to-video model."""
        try:
            image_model = self.catalog.get(model).type == KIND_IMAGE
        except ModelNotFoundError:  # its card is gone: the job will fail, its estimate matters little
            image_model = False
        return image_model and kind != KIND_IMAGE

    def workload(self, model: str, kind: str, parameters: GenerationParameters) -> Workload:
        return workload(self.costs, model, parameters, keyframe=self._keyframe(model, kind))

    def solo(self, model: str, kind: str, parameters: GenerationParameters, cold: bool = False) -> float:
        """Solo seconds of a run (``cold``: its model must load first)."""
        return self.costs.solo_seconds(model, parameters, keyframe=self._keyframe(model, kind), cold=cold)

    async def loaded(self, model: str) -> bool:
        """Whether the model is loaded on an inference server (asked at most every ``LOADED_TTL_SECONDS``)."""
        asked_at, loaded = self._loaded.get(model, (-LOADED_TTL_SECONDS, True))
        if self._now() - asked_at >= LOADED_TTL_SECONDS:
            loaded = await self.gate.loaded(model)
            self._loaded[model] = (self._now(), loaded)
        return loaded

    async def live(self, record: JobRecord) -> LiveJob:
        """A job about to run here, with its solo estimate."""
        cold = not await self.loaded(record.model)
        estimate = max(MIN_ESTIMATE_SECONDS, self.solo(record.model, record.kind, record.parameters, cold))
        return LiveJob(record, self.workload(record.model, record.kind, record.parameters), estimate)

    def held_by(self, record: JobRecord) -> tuple[str, str] | None:
        """(current_step, reason) of a waiting job that cannot start yet; None when only a worker is missing."""
        if record.not_before > self._now():
            return STEP_RETRYING, f"runs again in {record.not_before - self._now():.0f} s: {record.last_error}"
        blocked = self.gate.blocked_reason(record.model)
        if blocked is not None:
            return STEP_WAITING_FOR_INFERENCE, blocked
        shortage = self.disk.shortage()
        if shortage:
            return STEP_WAITING_FOR_DISK, shortage
        return (STEP_WAITING_FOR_OBJECT_STORE, self.files.outage) if self.files.outage else None

    def startable(self, record: JobRecord) -> bool:
        return self.held_by(record) is None

    def solo_left(self, job: LiveJob) -> float:
        """Solo seconds of work a job running here has left: its time left at its pace so far, less the slowdown
        of the jobs that ran beside it."""
        pace_slowdown = self.costs.slowdown(job.record.model, job.company.mean(self._now()))
        return remaining_seconds(job.workload, job.pace, job.estimate_seconds, self._now(), pace_slowdown)

    def _running_work(self, running: list[JobRecord], others: list[JobRecord] | None = None) -> list[Work]:
        """Solo seconds of work left of each running job: by its pace where it runs here, else its solo estimate
        less its time so far at its slowdown beside the jobs running now (``running`` and ``others``)."""
        models = Counter(rec.model for rec in [*running, *(others or [])])
        work = []
        for rec in running:
            job = self.local.live.get(rec.request_id)
            if job is not None:
                work.append(Work(rec.model, self.solo_left(job)))
            else:
                slowdown = self.costs.slowdown(rec.model, jobs_beside(models, rec.model))
                elapsed = self._now() - (rec.started_at or self._now())
                solo = self.solo(rec.model, rec.kind, rec.parameters)
                work.append(Work(rec.model, max(0.0, solo - elapsed / slowdown)))
        return work

    async def _waiting_work(self, view: QueueView, extra: list[tuple[str, str, GenerationParameters]]) -> list[Work]:
        """Solo seconds of each job of ``view.ahead`` then ``extra``: a cold model loads once, for its first job."""
        models = {m for m, _, _ in view.ahead} | {m for m, _, _ in extra}
        loading = {m for m in models if not await self.loaded(m)} - {rec.model for rec in view.running}
        work = []
        for model, kind, parameters in [*view.ahead, *extra]:
            work.append(Work(model, self.solo(model, kind, parameters, model in loading)))
            loading.discard(model)
        return work

    def _simulate(self, running: list[Work], waiting: list[Work]) -> tuple[list[float], list[Timing]]:
        return simulate(running, waiting, self.workers, self.costs.slowdown)

    async def remaining(self, job: LiveJob) -> float:
        """Seconds until a job running here is done: its simulated end beside the jobs running and waiting."""
        view: QueueView = await self.store.run(queue_view(None))
        running = [rec for rec in view.running if rec.request_id != job.request_id]
        waiting = await self._waiting_work(view, [])
        own = Work(job.record.model, self.solo_left(job))
        return self._simulate([own, *self._running_work(running, [job.record])], waiting)[0][0]

    async def running_remaining(self) -> list[float]:
        view: QueueView = await self.store.run(queue_view(None))
        return self._simulate(self._running_work(view.running), [])[0]

    async def _wait_and_run(
        self, view: QueueView, model: str, kind: str, parameters: GenerationParameters
    ) -> tuple[float, float]:
        """(seconds until a worker takes a job behind ``view.ahead``, seconds of its run)."""
        waiting = await self._waiting_work(view, [(model, kind, parameters)])
        _, timings = self._simulate(self._running_work(view.running), waiting)
        own = timings[-1]
        return own.start, max(MIN_ESTIMATE_SECONDS, own.end - own.start)

    async def waiting(self, record: JobRecord) -> views.Waiting:
        view: QueueView = await self.store.run(queue_view(record))
        wait, run = await self._wait_and_run(view, record.model, record.kind, record.parameters)
        held = self.held_by(record)
        step, reason = held if held else (STEP_QUEUED, None)
        return views.Waiting(view.position, wait + run, step, reason)

    async def quote(self, model: str, kind: str, parameters: GenerationParameters) -> tuple[int, float, float]:
        """(queue position, seconds of waiting, seconds of running) a job submitted now would get; position 0 (and
        no wait) when a worker here would take it at once."""
        view: QueueView = await self.store.run(queue_view(None))
        wait, run = await self._wait_and_run(view, model, kind, parameters)
        starts_now = not view.ahead and self.local.idle_count > 0
        return (0, 0.0, run) if starts_now else (view.position, wait, run)

    async def status_of(self, rec: JobRecord, job: LiveJob | None) -> JobStatus:
        if rec.status == QUEUED:
            return views.job_status(rec, 0.0, await self.waiting(rec))
        remaining = await self.remaining(job) if job and rec.status == PROCESSING else 0.0
        return views.job_status(rec, remaining)

    async def progress_message(self, rec: JobRecord, job: LiveJob | None) -> WsProgress:
        if rec.status == QUEUED:
            return views.progress_message(rec, 0.0, await self.waiting(rec))
        return views.progress_message(rec, await self.remaining(job) if job else 0.0)

    async def accepted(self, record: JobRecord, job: LiveJob | None) -> GenerateVideoResponse:
        """The 202 body of a job just stored (or found again by its idempotency key)."""
        estimate, position = 0.0, 0
        if record.status == QUEUED:
            waiting = await self.waiting(record)
            estimate, position = waiting.remaining_seconds, waiting.position
        elif record.status == PROCESSING and job is not None:
            estimate = await self.remaining(job)
        shown = views.whole_seconds(estimate) if not record.terminal else 0
        if not record.terminal:  # kept until the job is done (a repeat keeps the first)
            if len(self.first_estimates) >= FIRST_ESTIMATES_KEPT:
                self.first_estimates.pop(next(iter(self.first_estimates)))
            self.first_estimates.setdefault(record.request_id, shown)
        return GenerateVideoResponse(
            request_id=record.request_id,
            status=record.status,
            estimated_time_seconds=shown,
            queue_position=position,
            created_at=clock.iso(record.created_at) or "",
        )
