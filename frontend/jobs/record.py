"""A generation job as stored: its states, kinds, resolved parameters, video metadata and the record itself."""

from __future__ import annotations

import msgspec

# Job states. `queued` and `cancelled` extend the reference's processing/completed/failed.
QUEUED = "queued"
PROCESSING = "processing"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"
TERMINAL_STATES = frozenset({COMPLETED, FAILED, CANCELLED})

# current_step values of our own (the others are the pipeline's phases, visualizr.names.PHASE_*).
STEP_QUEUED = "queued"  # waiting for a worker
STEP_LOADING_MODEL = "loading_model"  # a worker is loading the model through Triton (load on demand)
STEP_RETRYING = "retrying"  # waiting to run again after an infrastructure failure (attempts, last_error)
STEP_WAITING_FOR_INFERENCE = "waiting_for_inference_server"  # no Triton endpoint can take it now
STEP_WAITING_FOR_DISK = "waiting_for_disk_space"  # the data folder's disk is below the free-space floor
STEP_WAITING_FOR_OBJECT_STORE = "waiting_for_object_store"  # the S3 bucket of the files failed; until it answers

# Job kinds: all three run the same pipeline; image-to-video adds a source image.
KIND_TEXT = "text-to-video"
KIND_IMAGE = "image-to-video"
KIND_CHARACTER = "character-animation"


class GenerationParameters(msgspec.Struct, frozen=True, omit_defaults=True):
    """The resolved parameters of a job (defaults filled in, seed chosen); stored as JSON with the job.

    Image-to-video only, the request's ``motion_strength`` as the model's family takes it (absent for the other
    kinds): ``strength`` (AnimateDiff: how far the video may depart from the source image, in (0, 1]) or
    ``motion_bucket_id`` and ``noise_aug_strength`` (Stable Video Diffusion).
    """

    width: int
    height: int
    num_frames: int
    fps: int
    num_inference_steps: int
    guidance_scale: float
    seed: int
    strength: float | None = None
    motion_bucket_id: int | None = None
    noise_aug_strength: float | None = None
    character_strength: float | None = None  # character-animation on an IP-Adapter model: the adapter scale
    end_image: bool | None = None  # keyframes: the video ends at a second picture (stored beside the source image)


class VideoMetadata(msgspec.Struct):
    duration_seconds: float
    fps: int | float
    resolution: str
    file_size_bytes: int
    format: str
    codec: str
    num_frames: int = 0  # read back from the file too; not part of the reference's metadata but handy


class JobRecord(msgspec.Struct):
    request_id: str
    model: str
    prompt: str
    negative_prompt: str
    style: str | None
    parameters: GenerationParameters
    status: str
    progress: int
    current_step: str
    created_at: float
    error_code: str | None = None
    error_message: str | None = None
    error_details: str | None = None
    started_at: float | None = None
    completed_at: float | None = None
    failed_at: float | None = None
    cancelled_at: float | None = None
    video_path: str | None = None
    thumbnail_path: str | None = None
    preview_path: str | None = None
    keyframe_path: str | None = None  # the keyframe (PNG) of a job whose model made one from the prompt
    metadata: VideoMetadata | None = None
    processing_time_seconds: float | None = None
    kind: str = KIND_TEXT
    source_image: str | None = None  # image-to-video: path of the source image, relative to the data folder
    attempts: int = 0  # runs started so far (a run that failed on the infrastructure is run again)
    last_error: str | None = None  # why the last run failed, while the job waits to run again
    owner: str | None = None  # the replica (settings.replica_id) running the job, or that ran it last
    lease_expires_at: float | None = None  # while processing: its owner renews it; past it, any replica requeues it
    cancel_requested: bool = False  # cancelled while running: its runner, wherever it is, still has to stop
    not_before: float = 0.0  # a retry waits until then
    character_id: str | None = None  # character-animation: the registry's character it animated

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATES


class CostSample(msgspec.Struct, frozen=True):
    """One measured part of a completed run (``generation.reporting.cost_model``): its features, its seconds and
    the jobs that ran beside it meanwhile, by model (time-weighted counts)."""

    model: str
    part: str
    fixed: float
    work: float
    seconds: float
    company: dict[str, float] = msgspec.field(default_factory=dict)

    @property
    def concurrency(self) -> float:
        """How many jobs ran at once, itself included (time-weighted)."""
        return 1.0 + sum(self.company.values())
