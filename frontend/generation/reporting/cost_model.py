"""The cost model behind every estimate: per model, the seconds of each part of a run as a fit of what drives it,
learned online from the runs' measured phases, slowed down by the jobs running beside it.

A part's seconds are ``fixed x a + work x b`` (``a``, ``b`` >= 0), its two features from the job's parameters
(``cells``: latent cells of a frame, ``(width / 8) x (height / 8)``; ``cfg``: 2 with classifier-free guidance):

* ``conditioning`` (text and/or image encoding), ``load`` (a cold model's load, only when it is not loaded),
  ``overhead`` (the rest of the run: BLS calls, writes, scheduling): ``(1, 0)``;
* ``keyframe`` (a keyframe stage's steps): ``(steps, steps x cfg x cells)``;
* ``denoise``: ``(steps, steps x cfg x frames x cells)``: a step's fixed cost and the UNet's batch;
* ``decode`` (the VAE) and ``encode`` (MP4/JPEG/GIF in the API): ``(1, frames x cells)``.

A model that makes long clips as segments (``Passes``: SVD) runs ``segments x steps`` steps of a segment's frames
and decodes each segment (the decoding phase times the last one's).

Each part's fit is exponentially weighted least squares (``DECAY`` per sample: recent runs count most, a changed
server is learnt in a few jobs), plus ``PRIOR_WEIGHT`` pseudo-samples of the prior (``PRIORS``; the load's from the
card's ``estimated_load_time_seconds``) whose weight halves with each real sample: the first job has a sane estimate,
and history takes over within a few.

Concurrent jobs share one CPU/GPU: a part of a model's run beside others (by model, weighted by time over the
part) takes ``slowdown(model, beside)`` times its solo seconds (``contention``: per model and model beside, pulled
towards the server-wide ``contention``, the weighted least squares of ``measured / expected - 1`` on the jobs
beside), learnt from parts already learnt (``LEARNT_AFTER`` samples). The machine's ``speed`` (what else loads
it, unseen by the service) is a recent-weighted geometric mean of every run's measured over predicted seconds
(``SPEED_DECAY`` per run, of any model). Samples are divided by both before they are fitted, a part beside others
weighing ``slowdown ** -COMPANY_WEIGHT_POWER`` (its solo seconds are only as sure as its slowdown).

A cold run (one that loaded its model) teaches the load only: its first inferences warm up and take several
times their usual seconds, which count as the load's once the model's parts are learnt. The load is what was
measured (the card's ``estimated_load_time_seconds`` before any), a model never loaded here the card's times the
ratio of the measured loads of the others to their cards' (how fast this machine loads).

Samples are stored (``jobs.store`` ``eta_samples``) and replayed at start-up: the same fit survives a restart.
Per model, not per inference endpoint: replicas of one model on like hardware share its fit.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import astuple, dataclass, field

from visualizr import names
from visualizr.families.stable_video_diffusion.segments import SegmentPlan
from visualizr.frontend.generation.reporting.contention import CONTENTION_DECAY, MAX_CONTENTION, Contention
from visualizr.frontend.generation.reporting.least_squares import Fit
from visualizr.frontend.jobs.record import CostSample, GenerationParameters

CONDITIONING, KEYFRAME, DENOISE, DECODE, ENCODE, LOAD, OVERHEAD = (
    "conditioning", "keyframe", "denoise", "decode", "encode", "load", "overhead",
)  # fmt: skip
PARTS = (CONDITIONING, KEYFRAME, DENOISE, DECODE, ENCODE, LOAD, OVERHEAD)
PHASE_PARTS = {  # the part of the cost each measured phase (``jobs.telemetry.PhaseTimer``) belongs to
    names.PHASE_TEXT_ENCODING: CONDITIONING,
    names.PHASE_IMAGE_ENCODING: CONDITIONING,
    names.PHASE_KEYFRAME: KEYFRAME,
    names.PHASE_FRAME_GENERATION: DENOISE,
    names.PHASE_DECODING: DECODE,
    names.PHASE_ENCODING: ENCODE,
}
LATENT_SCALE = 8  # pixels per latent cell along each side
DECAY = 0.9  # weight of the fit's past per new sample
PRIOR_WEIGHT = 1.0  # pseudo-samples of the prior a fit starts from (halved by each real sample)
# (seconds per fixed unit, seconds per work unit): CPU demo orders of magnitude (onnxruntime, 2 threads), the load's
# taken from the card. The work's reference sizes place the prior's two pseudo-samples.
PRIORS = {
    CONDITIONING: (0.05, 0.0),
    KEYFRAME: (0.01, 1e-5),
    DENOISE: (0.01, 1e-5),
    DECODE: (0.01, 2e-5),
    ENCODE: (0.01, 2e-6),
    LOAD: (5.0, 0.0),
    OVERHEAD: (0.2, 0.0),
}
REFERENCE_WORK = {KEYFRAME: 1e3, DENOISE: 1e5, DECODE: 1e3, ENCODE: 1e3}  # a 64x64 clip: 64 cells, ~16 frames
PRIOR_CONTENTION = 0.5
CONTENTION_PRIOR_WEIGHT = 3.0  # the prior's weight, in runs wholly beside one other
SPEED_DECAY = 0.7  # weight of the machine speed's past per run
SPEED_RANGE = (0.2, 5.0)
LEARNT_AFTER = 5  # samples of a part before its runs measure the slowdown and the speed
MIN_SOLO_SECONDS = 0.1  # a run's learnt parts must predict this much for its slowdown to count
COMPANY_WEIGHT_POWER = 2.0  # a run's weight in its parts' fits: its slowdown to the minus this


def cells(parameters: GenerationParameters) -> float:
    return (parameters.width / LATENT_SCALE) * (parameters.height / LATENT_SCALE)


@dataclass(frozen=True)
class Passes:
    """How a model makes a clip: in one pass, or (``segments`` > 1) as segments of ``frames`` each, generated and
    decoded one after the other (the model card's ``native_num_frames`` and ``segment_overlap``)."""

    segments: int = 1
    frames: int = 0  # frames per segment (0: one pass of the clip's frames)

    @classmethod
    def of(cls, native_num_frames: int, segment_overlap: int, num_frames: int) -> Passes:
        if segment_overlap <= 0:
            return cls()
        plan = SegmentPlan.of(num_frames, native_num_frames, segment_overlap)
        return cls(plan.count, plan.window) if plan.count > 1 else cls()


ONE_PASS = Passes()


def features(part: str, parameters: GenerationParameters, passes: Passes = ONE_PASS) -> tuple[float, float]:
    """(fixed, work) of a part of a job with these parameters. A clip made of segments runs every segment's steps
    and decodes (the phase timed as decoding is the last segment's; the others' fall within the denoising)."""
    cfg = 2 if parameters.guidance_scale > 1 else 1
    steps, frames, size = parameters.num_inference_steps, parameters.num_frames, cells(parameters)
    if part == KEYFRAME:
        return float(steps), float(steps * cfg * size)
    if part == DENOISE:
        runs = steps * passes.segments
        return float(runs), float(runs * cfg * (passes.frames or frames) * size)
    if part == DECODE:
        return 1.0, float((passes.frames or frames) * size)
    if part == ENCODE:
        return 1.0, float(frames * size)
    return 1.0, 0.0


def prior_fit(part: str, load_seconds: float) -> Fit:
    """The prior as two pseudo-samples of weight 1: one fixed unit, one of typical work (so that both terms are
    determined until real samples move them)."""
    a, b = (load_seconds, 0.0) if part == LOAD else PRIORS[part]
    fit = Fit()
    fit.add(1.0, 0.0, a)
    if b > 0:
        fit.add(0.0, REFERENCE_WORK[part], b * REFERENCE_WORK[part])
    return fit


@dataclass
class PartFit:
    """A part's fit: its samples' and the prior's, whose weight (``PRIOR_WEIGHT``) halves with each sample."""

    prior: Fit
    data: Fit = field(default_factory=Fit)
    samples: int = 0
    prior_kept: float = 0.5  # the prior's weight kept per sample (a load's: none, a measured load is the truth)

    def add(self, fixed: float, work: float, seconds: float, weight: float = 1.0) -> None:
        """A sample worth ``weight`` samples (the past decays by as much)."""
        self.data.decay(DECAY**weight)
        self.data.add(fixed, work, seconds, weight)
        self.samples += 1

    def coefficients(self) -> tuple[float, float]:
        weight = PRIOR_WEIGHT * self.prior_kept**self.samples
        both = Fit(*(d + weight * p for d, p in zip(astuple(self.data), astuple(self.prior), strict=True)))
        return both.coefficients()


@dataclass
class CostModel:
    load_seconds: dict[str, float] = field(default_factory=dict)  # the cards' estimated load times
    # the cards' (native_num_frames, segment_overlap), of the models that make long clips as segments
    segmenting: dict[str, tuple[int, int]] = field(default_factory=dict)
    contention: float = PRIOR_CONTENTION
    speed: float = 1.0
    _shared: float = CONTENTION_PRIOR_WEIGHT  # the contention's weight: decayed sum of (n - 1)^2 and the prior's
    _fits: dict[tuple[str, str], PartFit] = field(default_factory=dict)
    _contention: dict[str, Contention] = field(default_factory=dict)  # by model: its slowdown by company

    def slowdown(self, model: str, beside: Mapping[str, float]) -> float:
        """How many times its solo seconds a run of ``model`` takes beside these jobs (counts by model)."""
        return self._contention.get(model, Contention()).slowdown(beside, self.contention)  # none: the common

    def _card_load(self, model: str) -> float:
        return self.load_seconds.get(model, PRIORS[LOAD][0])

    def _fit(self, model: str, part: str) -> PartFit:
        key = (model, part)
        if key not in self._fits:
            prior = prior_fit(part, self._card_load(model))
            self._fits[key] = PartFit(prior, prior_kept=0.0) if part == LOAD else PartFit(prior)
        return self._fits[key]

    def load_scale(self) -> float:
        """Measured over the cards' load times, a geometric mean over the models loaded here (1 before any)."""
        ratios = [
            fit.coefficients()[0] / self._card_load(model)
            for (model, part), fit in self._fits.items()
            if part == LOAD and fit.samples and fit.coefficients()[0] > 0 and self._card_load(model) > 0
        ]
        return math.exp(sum(map(math.log, ratios)) / len(ratios)) if ratios else 1.0

    def part_seconds(self, model: str, part: str, parameters: GenerationParameters) -> float:
        """Solo seconds of one part of a job, at the machine's speed now (a load at the machine's load speed)."""
        fit = self._fit(model, part)
        a, b = fit.coefficients()
        fixed, work = features(part, parameters, self.passes(model, parameters.num_frames))
        if part == LOAD:
            return fixed * a * (1.0 if fit.samples else self.load_scale())
        return (fixed * a + work * b) * self.speed

    def passes(self, model: str, num_frames: int) -> Passes:
        """How ``model`` makes a clip of ``num_frames``."""
        native, overlap = self.segmenting.get(model, (0, 0))
        return Passes.of(native, overlap, num_frames)

    def _solo(self, sample: CostSample) -> float:
        a, b = self._fit(sample.model, sample.part).coefficients()
        return sample.fixed * a + sample.work * b

    def predicted(self, sample: CostSample) -> float:
        """Seconds the model gives a measured part at the concurrency it ran at (a load's as they are)."""
        if sample.part == LOAD:
            return self._solo(sample)
        return self._solo(sample) * self.speed * self.slowdown(sample.model, sample.company)

    def observe(self, run: list[CostSample]) -> None:
        """One run's samples: the slowdown and the speed they show against the parts learnt already, then each
        part's seconds divided by both. A cold run teaches its load only."""
        loads = [sample for sample in run if sample.part == LOAD]
        for sample in loads:
            self._fit(sample.model, LOAD).add(sample.fixed, sample.work, sample.seconds + self._warm_up(run))
        if loads or not run:
            return
        learnt = [s for s in run if self._fit(s.model, s.part).samples >= LEARNT_AFTER]
        solo = sum(self._solo(sample) for sample in learnt)
        if solo >= MIN_SOLO_SECONDS:
            for sample in learnt:  # each part beside its own company, weighing its share of the run
                share, excess = self._solo(sample) / solo, self._excess(sample)
                self._learn_contention(sum(sample.company.values()), excess, share)
                self._contention.setdefault(sample.model, Contention()).add(sample.company, excess, share)
            measured = sum(sample.seconds for sample in learnt)
            expected = sum(self.predicted(sample) for sample in learnt)
            low, high = SPEED_RANGE
            self.speed = min(high, max(low, self.speed * (measured / expected) ** (1 - SPEED_DECAY)))
        for sample in run:
            slowdown = self.slowdown(sample.model, sample.company)
            weight = slowdown**-COMPANY_WEIGHT_POWER  # a part beside others tells its solo seconds less surely
            fit = self._fit(sample.model, sample.part)
            fit.add(sample.fixed, sample.work, sample.seconds / (slowdown * self.speed), weight)

    def _warm_up(self, run: list[CostSample]) -> float:
        """The seconds a cold run's parts took beyond their prediction (its first inferences' warm-up, a cost of
        the load), once all its parts are learnt; 0 before."""
        parts = [sample for sample in run if sample.part != LOAD]
        if not parts or any(self._fit(s.model, s.part).samples < LEARNT_AFTER for s in parts):
            return 0.0
        return max(0.0, sum(s.seconds for s in parts) - sum(self.predicted(s) for s in parts))

    def _excess(self, sample: CostSample) -> float:
        """A measured part's slowdown less 1, against its solo seconds at the machine's speed."""
        return sample.seconds / max(1e-9, self._solo(sample) * self.speed) - 1.0

    def _learn_contention(self, extra: float, excess: float, weight: float = 1.0) -> None:
        """A point of the server-wide contention's least squares: ``excess`` (a slowdown less 1) at ``extra`` jobs
        beside on average, worth ``weight`` runs; alone (``extra`` 0) it tells nothing."""
        if extra <= 0:
            return
        past = CONTENTION_DECAY**weight * self._shared
        self._shared = past + weight * extra * extra
        shown = (past * self.contention + weight * extra * excess) / self._shared
        self.contention = min(MAX_CONTENTION, max(0.0, shown))

    def replay(self, runs: Iterable[list[CostSample]]) -> None:
        for run in runs:
            self.observe(run)

    def solo_seconds(self, model: str, parameters: GenerationParameters, *, keyframe: bool, cold: bool) -> float:
        """Seconds of a whole run of a job alone on the server."""
        parts = [CONDITIONING, DENOISE, DECODE, ENCODE, OVERHEAD] + [KEYFRAME] * keyframe + [LOAD] * cold
        return sum(self.part_seconds(model, part, parameters) for part in parts)


def samples_of_run(
    model: str,
    parameters: GenerationParameters,
    phases: dict[str, float],
    processing_seconds: float,
    beside: Mapping[str, float],
    part_beside: Mapping[str, Mapping[str, float]] | None = None,
    passes: Passes = ONE_PASS,
) -> list[CostSample]:
    """A completed run's samples: its measured parts (``phases``, seconds by part) and the overhead, the run's
    seconds the parts leave; each with the jobs that ran beside it meanwhile, by model (time-weighted): the
    part's own (``part_beside``) where measured, else the run's (``beside``)."""

    def company(part: str) -> dict[str, float]:
        counts = (part_beside or {}).get(part, beside)
        return {other: float(n) for other, n in counts.items() if n > 0}

    measured = [
        CostSample(model, part, *features(part, parameters, passes), seconds, company(part))
        for part, seconds in phases.items()
    ]
    rest = max(0.0, processing_seconds - sum(phases.values()))
    return [*measured, CostSample(model, OVERHEAD, 1.0, 0.0, rest, company(OVERHEAD))]
