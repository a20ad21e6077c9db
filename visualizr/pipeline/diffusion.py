"""The denoising loop every model family shares, shaped like a diffusers pipeline; a family's loop
(``visualizr.families.<family>.loop``) subclasses ``DiffusionPipeline`` and says only what differs:

    check_inputs(request)             what its networks need of a request
    prepare(request, components, ...) encode the conditioning (prompt or image) and the initial latents
    total_steps(request)              denoising steps a request runs (default: num_inference_steps)
    encode_reference(request, ...)    the unet's conditioning from a reference picture (default: none)
    decoder_inputs(chunk)             the vae_decoder's inputs for a chunk of frame latents
    decode(components, state)         the denoised state -> frames (default: chunked ``decode_latents``)
    preview_latents(state)            what a live preview shows (default: the clean prediction, else the latents)

and, as class attributes, the axes of its latents (``frames_axis``, ``channels_axis``) and the phase its
conditioning reports. Shared here: cancellation checkpoints before every component call, progress after the
conditioning, after every step and after decoding, classifier-free guidance as ONE unet call per step at
twice the batch (a scalar scale or a per-frame ramp), scheduler stepping, chunked decoding, uint8 frames.

Tensors live where ``placement`` says (``visualizr.pipeline.tensors``): latents, conditioning, scheduler state
and network outputs are torch tensors on its device, and every component call crosses ``to_network`` /
``from_network``, so with tensor I/O on a GPU only the final uint8 frames reach the host.

    pipeline = load_pipeline(assets_dir(model_dir))
    async for event in pipeline.generate(request, components, is_cancelled=...):
        ...  # ProgressEvent(phase, step, total_steps); the last (phase "done") carries uint8 frames [F,H,W,3]
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from diffusers import SchedulerMixin

from visualizr import names
from visualizr.families import Family, get_family
from visualizr.pipeline.components import Components
from visualizr.pipeline.errors import Cancelled
from visualizr.pipeline.previews import preview_frames, projection_for
from visualizr.pipeline.progress import ProgressEvent
from visualizr.pipeline.request import GenerationRequest
from visualizr.pipeline.tensors import NetworkArray, TensorPlacement, to_uint8_frames
from visualizr.pipeline_config import PipelineConfig

CancelCheck = Callable[[], bool]
Checkpoint = Callable[[int], None]
ProgressCallback = Callable[[ProgressEvent], Awaitable[None] | None]


@dataclass
class Denoising:
    """A generation between its conditioning and its decoding (what ``prepare`` returns)."""

    scheduler: SchedulerMixin  # with set_timesteps done
    timesteps: torch.Tensor  # the timesteps to run, one denoising step each
    latents: torch.Tensor  # batch 1, the family's layout, on the placement's device
    generator: torch.Generator  # on the CPU, like diffusers' pipelines given a CPU generator
    # The unet's inputs besides sample and timestep, at the unet's batch ([uncond, cond] with guidance), as
    # float32 tensors on the device.
    conditioning: dict[str, torch.Tensor]
    # None: no classifier-free guidance. Else the scale: a float, or a tensor (on the device) broadcast over the
    # latents.
    guidance: float | torch.Tensor | None = None
    # Latents concatenated to the scaled sample along the channels (image conditioning), at the unet's batch.
    concat_latents: torch.Tensor | None = None
    # The last step's prediction of the clean latents (the scheduler's pred_original_sample), for previews.
    denoised: torch.Tensor | None = None


class DiffusionPipeline(ABC):
    family_name: ClassVar[str]
    conditioning_phase: ClassVar[str]  # the phase of the first progress event (visualizr.names.PHASES)
    frames_axis: ClassVar[int]  # axis of the frames in the latents: [B, C, F, h, w] -> 2; [B, F, C, h, w] -> 1
    channels_axis: ClassVar[int]
    denoiser: ClassVar[str] = names.UNET  # the component called each step (LTX-Video: its transformer)

    def __init__(
        self,
        config: PipelineConfig,
        scheduler_factory: Callable[[], SchedulerMixin],
        placement: TensorPlacement | None = None,
    ) -> None:
        self.config = config
        self.scheduler_factory = scheduler_factory
        self.placement = placement or TensorPlacement()  # where the tensors live (visualizr.pipeline.tensors)

    @property
    def family(self) -> Family:
        return get_family(self.family_name)

    # -- what a family says --------------------------------------------------------------------------------

    @abstractmethod
    def check_inputs(self, request: GenerationRequest) -> None:
        """Raise InvalidRequest for a request this family's networks cannot run."""

    @abstractmethod
    async def prepare(self, request: GenerationRequest, components: Components, checkpoint: Checkpoint) -> Denoising:
        """Encode the conditioning and prepare scheduler and latents; call ``checkpoint(0)`` before every
        component call but the first (``generate`` checks before calling ``prepare``)."""

    def total_steps(self, request: GenerationRequest) -> int:
        return request.num_inference_steps

    async def encode_reference(self, request: GenerationRequest, components: Components) -> dict[str, torch.Tensor]:
        """The unet's conditioning from a reference picture (an IP-Adapter's), at the unet's batch, replacing what
        ``prepare`` put under the same names; empty (the default): the request has none. ``generate`` runs it
        first and reports it as its own phase (image_encoding)."""
        return {}

    async def decode(self, components: Components, state: Denoising) -> np.ndarray:
        """The denoised latents of ``state`` -> uint8 frames (default: ``decode_latents``)."""
        return await self.decode_latents(components, state.latents)

    def decoder_inputs(self, latents: torch.Tensor) -> dict[str, NetworkArray]:
        """The vae_decoder's inputs (``placement.to_network``) for frame latents [N, C, h, w] on the device,
        already divided by the scaling factor."""
        return {names.VAE_LATENT: self.placement.to_network(latents)}

    # -- shared steps ------------------------------------------------------------------------------------------

    def new_scheduler(self, num_inference_steps: int) -> SchedulerMixin:
        scheduler = self.scheduler_factory()
        scheduler.set_timesteps(num_inference_steps, device=self.placement.device)
        return scheduler

    @staticmethod
    def seeded_generator(seed: int) -> torch.Generator:
        return torch.Generator(device="cpu").manual_seed(seed)

    async def predict_noise(
        self, components: Components, sample: torch.Tensor, t: torch.Tensor, conditioning: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """One call of the denoiser (``denoiser``): the sample at its batch, the timestep repeated over that batch."""
        place = self.placement
        inputs = {
            names.UNET_SAMPLE: place.to_network(sample),
            names.UNET_TIMESTEP: place.full(sample.shape[0], float(t)),
            **{name: place.to_network(value) for name, value in conditioning.items()},
        }
        return place.from_network(await components.run(self.denoiser, inputs, names.UNET_NOISE_PRED))

    async def denoise_step(self, components: Components, state: Denoising, t: torch.Tensor) -> torch.Tensor:
        """One scheduler step; with guidance ONE unet call at twice the batch ([uncond, cond]). Everything but the
        unet call runs on the device the tensors live on."""
        latents, scheduler = state.latents, state.scheduler
        do_cfg = state.guidance is not None
        model_input = torch.cat([latents, latents]) if do_cfg else latents
        model_input = scheduler.scale_model_input(model_input, t)
        if state.concat_latents is not None:
            model_input = torch.cat([model_input, state.concat_latents], dim=self.channels_axis)
        noise_pred = await self.predict_noise(components, model_input, t, state.conditioning)
        if do_cfg:
            noise_uncond, noise_cond = noise_pred.chunk(2)
            noise_pred = noise_uncond + state.guidance * (noise_cond - noise_uncond)
        kwargs = {"generator": state.generator} if _accepts_generator(scheduler) else {}
        output = scheduler.step(noise_pred, t, latents, **kwargs)
        state.denoised = getattr(output, "pred_original_sample", None)
        return output.prev_sample

    async def denoise(
        self,
        components: Components,
        state: Denoising,
        checkpoint: Checkpoint,
        first_step: int,
        total: int,
        phase: str = names.PHASE_FRAME_GENERATION,
        preview_every: int = 0,
    ) -> AsyncIterator[ProgressEvent]:
        """The denoising loop over ``state.timesteps``: a checkpoint before each step, a ``phase`` event after it
        (with a preview every ``preview_every`` steps, and after the last); steps are counted from ``first_step``
        of ``total`` (a request of several stages counts across them)."""
        for index, t in enumerate(state.timesteps):
            checkpoint(first_step + index)
            state.latents = await self.denoise_step(components, state, t)
            last = index + 1 == len(state.timesteps)
            wanted = preview_every > 0 and ((index + 1) % preview_every == 0 or last)
            yield ProgressEvent(phase, first_step + index + 1, total, preview=self.preview(state) if wanted else None)

    def preview(self, state: Denoising) -> np.ndarray | None:
        """A few frames of the clean-latent prediction (else the latents) as uint8 RGB [F', h, w, 3], by the
        model's linear latent-to-RGB map; None when the model has none."""
        projection = projection_for(self.config.latent_rgb, self.config.latent_channels)
        if projection is None:
            return None
        latents = self.preview_latents(state)
        return preview_frames(latents.movedim(self.frames_axis, 1)[0], projection)  # [F, C, h, w] of batch 0

    def preview_latents(self, state: Denoising) -> torch.Tensor:
        """What a preview shows, in the family's latent layout: the clean-latent prediction, else the latents."""
        return state.denoised if state.denoised is not None else state.latents

    def frames_per_decode(self, latent_height: int, latent_width: int) -> int:
        """Frames one vae_decoder call takes: decode_chunk_size, fewer where ``decode_max_cells`` (latent cells
        per call) says so at large sizes, at least one."""
        chunk, cells = self.config.decode_chunk_size, self.config.decode_max_cells
        if cells:
            chunk = min(chunk, cells // (latent_height * latent_width))
        return max(1, chunk)

    async def decode_latents(
        self, components: Components, latents: torch.Tensor | np.ndarray, checkpoint: Checkpoint | None = None
    ) -> np.ndarray:
        """Latents (the family's layout) -> uint8 frames [B*F, H, W, 3] on the host; ``frames_per_decode`` frames
        per call (``checkpoint`` before each), each chunk's images made uint8 on the device before the next (a
        long clip never holds all its frames as float images)."""
        place = self.placement
        latents = place.from_network(latents) / self.config.vae_scaling_factor
        flat = latents.movedim(self.frames_axis, 1).flatten(0, 1)  # [B*F, C, h, w], frames in order
        chunk = self.frames_per_decode(*flat.shape[-2:])
        frames = []
        for start in range(0, flat.shape[0], chunk):
            if checkpoint is not None:
                checkpoint(0)
            inputs = self.decoder_inputs(flat[start : start + chunk])
            images = place.from_network(await components.run(names.VAE_DECODER, inputs, names.VAE_IMAGE))
            frames.append(to_uint8_frames(images))
        return np.concatenate(frames)

    # -- the whole generation -------------------------------------------------------------------------------

    async def generate(
        self, request: GenerationRequest, components: Components, is_cancelled: CancelCheck | None = None
    ) -> AsyncIterator[ProgressEvent]:
        """Yield progress after the conditioning, every denoising step and decoding, then ``done`` with frames.

        ``is_cancelled`` is checked before every component call; when it answers True the generator raises
        Cancelled, so at most the step already in flight finishes.
        """
        is_cancelled = is_cancelled or _never_cancelled
        self.check_inputs(request)
        total = self.total_steps(request)

        def checkpoint(step: int) -> None:
            if is_cancelled():
                raise Cancelled(step, total)

        checkpoint(0)
        reference = await self.encode_reference(request, components)
        if reference:
            yield ProgressEvent(names.PHASE_IMAGE_ENCODING, 0, total)
            checkpoint(0)
        state = await self.prepare(request, components, checkpoint)
        state.conditioning.update(reference)
        yield ProgressEvent(self.conditioning_phase, 0, total)
        previews = request.preview_every or 0
        async for event in self.denoise(components, state, checkpoint, 0, total, preview_every=previews):
            yield event

        checkpoint(total)
        frames = await self.decode(components, state)
        yield ProgressEvent(names.PHASE_DECODING, total, total)
        yield ProgressEvent(names.PHASE_DONE, total, total, frames)

    async def __call__(
        self,
        request: GenerationRequest,
        components: Components,
        on_progress: ProgressCallback | None = None,
        is_cancelled: CancelCheck | None = None,
    ) -> np.ndarray:
        """Run ``generate`` to the end and return the frames; ``on_progress`` (sync or async) sees events."""
        frames: np.ndarray | None = None
        async for event in self.generate(request, components, is_cancelled):
            if on_progress is not None:
                result = on_progress(event)
                if inspect.isawaitable(result):
                    await result
            frames = event.frames if event.frames is not None else frames
        assert frames is not None
        return frames


def _never_cancelled() -> bool:
    return False


def _accepts_generator(scheduler: SchedulerMixin) -> bool:
    return "generator" in inspect.signature(scheduler.step).parameters
