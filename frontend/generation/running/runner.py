"""One run of one job: an inference endpoint that serves its model (loaded on demand), the pipeline streamed from it
with progress, the frames checked and encoded. The runner decides nothing about the job's fate: it returns an
``Outcome`` (completed, failed, retry, stopped) and the service records it.

What is retried: every failure of the infrastructure (``BackendError.retryable``: the endpoint went away, a stub
died, a model was unloaded under the job, the stream stalled, an unexplained pipeline error) and a disk that filled
up while encoding. What fails the job: the pipeline refusing its input, the GPU running out of memory, a model
that cannot be loaded, frames of the wrong shape, a source image that cannot be read.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Protocol

import numpy as np

from visualizr.frontend import clock
from visualizr.frontend.errors import GENERATION_FAILED, INSUFFICIENT_GPU_MEMORY, VisualizrError
from visualizr.frontend.generation.dispatch.journal import JobJournal
from visualizr.frontend.generation.dispatch.queue import LiveJob
from visualizr.frontend.generation.reporting.cost_model import LOAD, PHASE_PARTS
from visualizr.frontend.generation.reporting.eta import Pace
from visualizr.frontend.generation.reporting.previews import PreviewThrottle
from visualizr.frontend.generation.reporting.views import FAILED_MESSAGE
from visualizr.frontend.generation.running.backend import GenerationBackend, GenerationInput, GenerationStream
from visualizr.frontend.generation.running.progress import DECODING_DONE, progress_of
from visualizr.frontend.generation.running.stall import StreamStalled, within_stall_timeout
from visualizr.frontend.infra.endpoints import Endpoint
from visualizr.frontend.infra.failures import OUT_OF_MEMORY, STALLED, BackendError
from visualizr.frontend.infra.objects import ObjectStoreError
from visualizr.frontend.jobs.database import is_disk_full
from visualizr.frontend.jobs.files import JobFiles, VideoAssets
from visualizr.frontend.jobs.naming import end_input_path, video_id_of
from visualizr.frontend.jobs.record import STEP_LOADING_MODEL, GenerationParameters, JobRecord, VideoMetadata
from visualizr.frontend.jobs.telemetry import JobTelemetry, PhaseTimer
from visualizr.frontend.styles import styled
from visualizr.model_card import ModelCard
from visualizr.names import PHASE_ENCODING, PHASE_TEXT_ENCODING
from visualizr.pipeline.request import GenerationRequest

logger = logging.getLogger("visualizr.frontend.generation")

OUT_OF_MEMORY_MESSAGE = "Not enough GPU memory available"
# (frames, fps, assets folder, video id, keyframe or None) -> the files written and the video's metadata
Encoder = Callable[[np.ndarray, int, Path, str, np.ndarray | None], tuple[VideoAssets, VideoMetadata]]

COMPLETED_RUN, FAILED_RUN, RETRY_RUN, STOPPED_RUN = "completed", "failed", "retry", "stopped"


@dataclass(frozen=True)
class Outcome:
    kind: str  # completed | failed | retry | stopped (cancelled under the run: nothing to record)
    details: str = ""
    code: str = GENERATION_FAILED
    message: str = FAILED_MESSAGE
    assets: VideoAssets | None = None
    metadata: VideoMetadata | None = None


def failed(details: str, code: str = GENERATION_FAILED, message: str = FAILED_MESSAGE) -> Outcome:
    return Outcome(FAILED_RUN, details, code, message)


class InferenceGate(Protocol):
    """What a run needs of model management (``visualizr.frontend.models.placement.Placement``)."""

    async def check_capacity(self, card: ModelCard, parameters: GenerationParameters) -> None: ...

    def blocked_reason(self, model_id: str) -> str | None:
        """Why no endpoint can take a job of this model now (None: one can)."""

    async def loaded(self, model_id: str) -> bool:
        """Whether an endpoint has the model loaded (a job of it runs without a load first)."""

    async def acquire(self, model_id: str, on_loading: Callable[[], Awaitable[None]]) -> Endpoint:
        """An endpoint serving the model, loaded there on demand; BackendError (retryable) when none is up,
        VisualizrError (MODEL_LOAD_FAILED) when the model cannot be loaded."""

    def release(self, endpoint: Endpoint) -> None: ...

    def report(self, endpoint: Endpoint, model_id: str, error: BackendError) -> None:
        """A run failed on the infrastructure: mark the endpoint down, heal a dead stub, ..."""

    def on_change(self, listener: Callable[[], None]) -> None: ...


def generation_request(
    record: JobRecord, image: np.ndarray | None, end_image: np.ndarray | None = None
) -> GenerationRequest:
    """What the pipeline gets for a job: its parameters, and its prompts with its style applied. ``image`` is the
    job's stored picture: the source image, or (a character job with ``character_strength``) the IP-Adapter's;
    ``end_image`` a keyframe job's end image."""
    params = record.parameters
    prompt, negative_prompt = styled(record.prompt, record.negative_prompt, record.style)
    adapter = params.character_strength is not None  # the image is a character's picture for the IP-Adapter
    adapter_inputs = {"ip_adapter_image": image, "ip_adapter_scale": params.character_strength} if adapter else {}
    return GenerationRequest(
        prompt=prompt,
        negative_prompt=negative_prompt,
        width=params.width,
        height=params.height,
        num_frames=params.num_frames,
        num_inference_steps=params.num_inference_steps,
        guidance_scale=params.guidance_scale,
        seed=params.seed,
        image=None if adapter else image,
        end_image=end_image,
        strength=params.strength if params.strength is not None else 1.0,
        fps=params.fps,  # the encoded video's; image-conditioned families (SVD) are conditioned on it
        motion_bucket_id=params.motion_bucket_id,
        noise_aug_strength=params.noise_aug_strength,
        **adapter_inputs,
    )


class JobRunner:
    def __init__(
        self,
        backend: GenerationBackend,
        gate: InferenceGate,
        journal: JobJournal,
        files: JobFiles,
        stall_timeout_s: float,
        encoder: Encoder,
        telemetry: JobTelemetry,
        now: Callable[[], float] = clock.now,
    ) -> None:
        self.backend = backend
        self.gate = gate
        self.journal = journal
        self.files = files
        self.stall_timeout_s = stall_timeout_s
        self.encoder = encoder
        self.telemetry = telemetry
        self._now = now

    async def run(self, job: LiveJob) -> Outcome:
        rec = job.record

        async def on_loading() -> None:
            await self.journal.progress(job, job.record.progress, STEP_LOADING_MODEL)

        asked = time.monotonic()
        try:
            endpoint = await self.gate.acquire(rec.model, on_loading)
            if job.record.current_step == STEP_LOADING_MODEL:
                job.measured(LOAD, time.monotonic() - asked, self._now())
        except BackendError as exc:
            return Outcome(RETRY_RUN, exc.details or exc.message)
        except VisualizrError as exc:
            reason = exc.details.get("reason", "") if isinstance(exc.details, dict) else exc.details
            return failed(str(reason or ""), exc.code, exc.message)
        try:
            return await self._run_on(endpoint, job)
        finally:
            self.gate.release(endpoint)

    async def _run_on(self, endpoint: Endpoint, job: LiveJob) -> Outcome:
        rec = job.record
        if job.terminal:
            return Outcome(STOPPED_RUN)
        try:
            image, end_image = await self._source_images(rec)
        except ValueError as exc:
            return failed(str(exc))
        except ObjectStoreError as exc:
            return Outcome(RETRY_RUN, str(exc))
        if job.record.current_step == STEP_LOADING_MODEL:
            await self.journal.progress(job, job.record.progress, PHASE_TEXT_ENCODING)
        request = generation_request(rec, image, end_image)
        if self.journal.wants_previews(rec.request_id):  # asked at the start: a run's request cannot change
            request = dataclasses.replace(request, preview_every=1)  # every step; PreviewThrottle bounds the rate
        stream = self.backend.stream(endpoint, GenerationInput(rec.request_id, rec.model, request))
        job.stream = stream
        job.pace = Pace()
        if job.terminal:
            stream.cancel()
        try:
            frames, keyframe = await self._frames(job, stream)
        except asyncio.CancelledError:  # the worker is stopping: stop the pipeline too
            stream.cancel()
            raise
        except StreamStalled as exc:
            stream.cancel()
            error = BackendError(FAILED_MESSAGE, str(exc), STALLED)
            self.gate.report(endpoint, rec.model, error)
            return Outcome(RETRY_RUN, str(exc))
        except BackendError as exc:
            if job.terminal:
                return Outcome(STOPPED_RUN)
            self.gate.report(endpoint, rec.model, exc)
            if exc.kind == OUT_OF_MEMORY:
                return failed(exc.details, INSUFFICIENT_GPU_MEMORY, OUT_OF_MEMORY_MESSAGE)
            return Outcome(RETRY_RUN, exc.details or exc.message) if exc.retryable else failed(exc.details)
        finally:
            job.stream = None
        if job.terminal:
            return Outcome(STOPPED_RUN)
        if frames is None:
            return failed("the pipeline finished without returning frames")
        params = rec.parameters
        expected = (params.num_frames, params.height, params.width, 3)
        if tuple(frames.shape) != expected or frames.dtype != np.uint8:
            got = f"{frames.dtype} {list(frames.shape)}"
            return failed(f"the pipeline returned frames {got}, expected uint8 {list(expected)}")
        return await self._encode(job, frames, keyframe)

    async def _frames(self, job: LiveJob, stream: GenerationStream) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The frames and (a keyframe stage's) keyframe of the final event, progress recorded on the way."""
        frames: np.ndarray | None = None
        keyframe: np.ndarray | None = None
        timer = PhaseTimer(partial(self._phase_done, job))
        previews = PreviewThrottle()
        async for event in within_stall_timeout(stream, self.stall_timeout_s):
            if job.terminal:
                stream.cancel()
                break
            timer.on_event(event.phase)
            job.pace.reached(job.workload, event.phase, event.step, event.total_steps, self._now())
            if event.frames is not None:
                frames, keyframe = event.frames, event.keyframe
            if event.preview is not None and previews.due(self._now()):
                self.journal.preview(job, event.step, event.total_steps, event.preview)
            await self.journal.progress(job, *progress_of(event.phase, event.step, event.total_steps))
        return frames, keyframe

    def _phase_done(self, job: LiveJob, phase: str, seconds: float) -> None:
        self.telemetry.phase(job.record.model, phase, seconds)
        job.measured(PHASE_PARTS[phase], seconds, self._now())

    async def _encode(self, job: LiveJob, frames: np.ndarray, keyframe: np.ndarray | None) -> Outcome:
        rec = job.record
        await self.journal.progress(job, DECODING_DONE, PHASE_ENCODING)
        started = time.monotonic()
        try:
            assets, metadata = await asyncio.to_thread(
                self.encoder, frames, rec.parameters.fps, self.files.encode_dir, video_id_of(rec.request_id), keyframe
            )
            self._phase_done(job, PHASE_ENCODING, time.monotonic() - started)
        except Exception as exc:
            if is_disk_full(exc):
                return Outcome(RETRY_RUN, f"the disk filled up while encoding the video: {exc}")
            logger.exception("encoding %s failed", rec.request_id)
            return failed(f"video encoding failed: {exc}")
        try:
            await self.files.publish(assets)
        except (ObjectStoreError, OSError) as exc:  # the store went away: the job runs again
            return Outcome(RETRY_RUN, f"the video could not be stored: {exc}")
        if job.terminal:  # cancelled or taken back while encoding: the lifecycle decides what becomes of the files
            return Outcome(STOPPED_RUN, assets=assets)
        return Outcome(COMPLETED_RUN, assets=assets, metadata=metadata)

    async def _source_images(self, rec: JobRecord) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The job's source image (image-to-video) and end image (keyframes), uint8 [H, W, 3] or None;
        ValueError when one cannot be read."""
        params, source = rec.parameters, rec.source_image
        if source is None:
            return None, None
        image = await self.files.load_input(source, params.width, params.height)
        if not params.end_image:
            return image, None
        return image, await self.files.load_input(end_input_path(source), params.width, params.height)
