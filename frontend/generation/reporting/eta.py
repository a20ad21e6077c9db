"""Generation-time estimates: what each part of a job takes (its workload, in the cost model's predicted solo
seconds: ``cost_model``) and how much of it a running job has left (its own pace); ``schedule`` turns these into
waits and times beside the other jobs.

A clip longer than the model's window in context windows (AnimateDiff) is counted once per frame: the overlaps cost a
little more than that, which the job's own pace (below) takes up; one made of segments (SVD) by whole segments, each
segment's steps then its decoding.

A running job's progress events say how much of its workload is done (``Workload.position``). Its remaining work
is the work left at the estimate's rate, its steps' moving over to its own pace (measured seconds per predicted
second since its first event, or since its video's conditioning after a keyframe stage, whose steps run another
network and tell nothing of the video's; less the slowdown of the jobs it ran beside: solo seconds) as the work
measured reaches ``PACE_TRUSTED_AFTER`` of the whole (decoding and encoding keep the estimate's: measured runs
show their errors unrelated to the UNet's); between events the work is taken to go on at that rate up to the next
event's share. Estimates are never below ``MIN_ESTIMATE_SECONDS``.
"""

from __future__ import annotations

from dataclasses import dataclass

from visualizr import names
from visualizr.frontend.generation.reporting.cost_model import (
    CONDITIONING,
    DECODE,
    DENOISE,
    ENCODE,
    KEYFRAME,
    CostModel,
)
from visualizr.frontend.jobs.record import GenerationParameters

MIN_ESTIMATE_SECONDS = 0.5
PACE_TRUSTED_AFTER = 0.1  # fraction of the workload measured before the job's own pace is all that counts


@dataclass(frozen=True)
class Workload:
    """A job's work in predicted solo seconds, by part, in the order the parts run (the conditioning: the text and
    image encoding, counted as done with the video's conditioning event)."""

    keyframe: float
    denoise: float
    decode: float
    encode: float
    keyframe_steps: int = 0  # the keyframe stage's denoising steps
    conditioning: float = 0.0
    segments: int = 1  # >= 1; a clip made of segments: each one's steps, then its decoding (``cost_model.Passes``)

    @property
    def total(self) -> float:
        return self.keyframe + self.conditioning + self.denoise + self.decode + self.encode

    def position(self, phase: str, step: int, total_steps: int, video_from: int = 0) -> tuple[float, float]:
        """(units done, units done at the next event) once the pipeline reported ``phase`` at ``step`` of
        ``total_steps``. Events come when a phase is done: the prompt's encoding and the keyframe's steps (a
        keyframe stage), the conditioning of the video (its ``step``: ``video_from``, the steps before the video's),
        each denoising step, decoding (each segment's, for a clip made of segments), then the frames; the API's
        video encoding ends the job. Steps count across the stages."""
        start = self.keyframe + self.conditioning  # the video's denoising starts here
        if phase == names.PHASE_KEYFRAME or (phase == names.PHASE_TEXT_ENCODING and self.keyframe and step == 0):
            share = self.keyframe / max(1, self.keyframe_steps)
            done = min(self.keyframe, share * step)
            return done, start if step >= max(1, self.keyframe_steps) else done + share
        video_steps = max(1, total_steps - video_from)
        steps_done = min(video_steps, max(0, step - video_from))
        per_segment = max(1, video_steps // self.segments)  # steps of one segment
        step_share, decode_share = self.denoise / video_steps, self.decode / self.segments
        if phase == names.PHASE_FRAME_GENERATION:
            decoded = (steps_done - 1) // per_segment if steps_done else 0  # the segments before this step's
            done = start + step_share * steps_done + decode_share * decoded
            return done, done + (decode_share if steps_done % per_segment == 0 else step_share)
        if phase == names.PHASE_DECODING:
            decoded = min(self.segments, -(-steps_done // per_segment))
            done = start + step_share * steps_done + decode_share * decoded
            return done, (self.total if decoded >= self.segments else done + step_share)
        if phase == names.PHASE_DONE:
            return start + self.denoise + self.decode, self.total
        # the video's conditioning (or nothing yet): its first step is next
        return start, start + step_share

    def split(self, done: float) -> tuple[float, float]:
        """``done`` units as (stepped work done, decoding and encoding done), in the order the parts run."""
        each_segment = [(self.denoise / self.segments, True), (self.decode / self.segments, False)]
        parts = [(self.keyframe + self.conditioning, True), *each_segment * self.segments, (self.encode, False)]
        stepped = other = 0.0
        for amount, is_step in parts:
            taken = min(max(0.0, done), amount)
            done -= taken
            stepped, other = (stepped + taken, other) if is_step else (stepped, other + taken)
        return stepped, other


def workload(costs: CostModel, model: str, parameters: GenerationParameters, *, keyframe: bool = False) -> Workload:
    """The workload of a job of ``model`` with these parameters (``keyframe``: it makes its first frame from its
    prompt), in predicted solo seconds per part."""

    def part(name: str) -> float:
        return costs.part_seconds(model, name, parameters)

    return Workload(
        keyframe=part(KEYFRAME) if keyframe else 0.0,
        conditioning=part(CONDITIONING),
        denoise=part(DENOISE),
        decode=part(DECODE),
        encode=part(ENCODE),
        keyframe_steps=parameters.num_inference_steps if keyframe else 0,
        segments=costs.passes(model, parameters.num_frames).segments,
    )


@dataclass
class Pace:
    """A running job's progress against the clock: the work done at its first progress event, at its last one,
    and when the next event is due."""

    first_at: float | None = None
    first_done: float = 0.0
    done: float = 0.0
    next_done: float = 0.0
    last_at: float = 0.0
    video_from: int = 0  # the step of the video's conditioning event (after a keyframe stage's steps)

    def reached(self, work: Workload, phase: str, step: int, total_steps: int, now: float) -> None:
        """A progress event of the run (``Workload.position``)."""
        if phase in names.CONDITIONING_PHASES:
            self.video_from = step
            if step > 0:  # after a keyframe stage, whose steps ran the image model: the video's pace starts here
                self.first_at = None
        done, next_done = work.position(phase, step, total_steps, self.video_from)
        if self.first_at is None:
            self.first_at, self.first_done = now, done
        self.done, self.next_done, self.last_at = max(self.done, done), max(self.next_done, next_done), now


def remaining_seconds(work: Workload, pace: Pace, estimate: float, now: float, pace_slowdown: float = 1.0) -> float:
    """Solo seconds of work a running job has left. At a rate (solo seconds per unit), the work goes on from the
    last event until the next event's share is done (a late phase then waits there), and what is left of the
    stepped work (conditioning, keyframe, denoising) takes that rate; decoding and encoding take the estimate's
    (their time does not follow the UNet's). The rate is the estimate's (``estimate``: solo seconds of the whole)
    at first, the job's own step rate as more of its work is measured: its seconds per unit over
    ``pace_slowdown``, the slowdown of the jobs it ran beside."""
    total = work.total
    if total <= 0:
        return 0.0
    stepped, estimate_rate = total - work.decode - work.encode, estimate / total

    def left_at(rate: float) -> float:
        since = max(0.0, now - pace.last_at) if pace.first_at is not None else 0.0
        wall_rate = rate * pace_slowdown
        done_now = min(pace.done + since / wall_rate, max(pace.done, pace.next_done)) if rate > 0 else pace.done
        stepped_done, other_done = work.split(done_now)
        return rate * max(0.0, stepped - stepped_done) + estimate_rate * max(0.0, total - stepped - other_done)

    by_estimate = left_at(estimate_rate)
    measured = pace.done - pace.first_done
    if pace.first_at is None or measured <= 0 or pace.last_at <= pace.first_at:
        return by_estimate
    trust = min(1.0, measured / (PACE_TRUSTED_AFTER * total))
    own_rate = (pace.last_at - pace.first_at) / measured / pace_slowdown
    return trust * left_at(own_rate) + (1 - trust) * by_estimate
