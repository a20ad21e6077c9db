"""The AnimateDiff text-to-video denoising loop, shaped like a diffusers pipeline but calling its networks
through an async ``Components`` object (in-process onnxruntime or Triton BLS), reporting progress.

    pipeline = TextToVideoPipeline.from_assets(assets_dir(model_dir))
    async for event in pipeline.generate(request, components, is_cancelled=...):
        ...  # ProgressEvent(phase, step, total_steps); the last (phase "done") carries uint8 frames [F,H,W,3]

Image-to-video (``request.image`` set), like diffusers' img2img / AnimateDiffVideoToVideo: the image's latent,
repeated over the frames, is noised to the first of the last ``denoising_steps(steps, strength)`` timesteps and
only those steps run; ``total_steps`` in the progress events is that number of steps actually run.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import SchedulerMixin

from visualizr.names import PHASE_DECODING, PHASE_DONE, PHASE_FRAME_GENERATION, PHASE_TEXT_ENCODING
from visualizr.pipeline.assets import PipelineAssets
from visualizr.pipeline.components import Components
from visualizr.pipeline.errors import Cancelled
from visualizr.pipeline.progress import ProgressEvent
from visualizr.pipeline.request import GenerationRequest, check_inputs
from visualizr.pipeline.tensors import TensorPlacement, to_uint8_frames
from visualizr.pipeline_config import PipelineConfig

CancelCheck = Callable[[], bool]
ProgressCallback = Callable[[ProgressEvent], Awaitable[None] | None]


def _never_cancelled() -> bool:
    return False


class TextToVideoPipeline:
    def __init__(
        self,
        config: PipelineConfig,
        tokenizer: Any,
        scheduler_factory: Callable[[], SchedulerMixin],
        placement: TensorPlacement | None = None,
    ) -> None:
        self.config = config
        self.tokenizer = tokenizer  # a transformers CLIPTokenizer (anything with its __call__ signature)
        self.scheduler_factory = scheduler_factory
        self.placement = placement or TensorPlacement()  # where the tensors live (visualizr.pipeline.tensors)

    @classmethod
    def from_assets(cls, directory: Path, placement: TensorPlacement | None = None) -> TextToVideoPipeline:
        assets = PipelineAssets.load(directory)
        return cls(assets.config, assets.tokenizer, assets.scheduler_factory, placement)

    # -- the steps of one generation ------------------------------------------------------------------------

    def check_inputs(self, request: GenerationRequest) -> None:
        check_inputs(request, self.config)

    def tokenize(self, prompt: str, negative_prompt: str, do_classifier_free_guidance: bool) -> np.ndarray:
        """int64 [B, text_max_length]: [negative, prompt] with guidance, else [prompt]."""
        texts = [negative_prompt, prompt] if do_classifier_free_guidance else [prompt]
        encoded = self.tokenizer(
            texts,
            padding="max_length",
            max_length=self.config.text_max_length,
            truncation=True,
            return_tensors="np",
        )
        return np.ascontiguousarray(encoded.input_ids, dtype=np.int64)

    async def encode_prompt(
        self, components: Components, prompt: str, negative_prompt: str, do_classifier_free_guidance: bool
    ) -> torch.Tensor:
        """One text-encoder call (batch 2 with guidance: [uncond, cond]) -> float32 [B, L, D] on the device."""
        input_ids = self.tokenize(prompt, negative_prompt, do_classifier_free_guidance)
        hidden = await components.encode_text(self.placement.to_network(input_ids, torch.int64))
        return self.placement.from_network(hidden)

    def latent_shape(self, request: GenerationRequest) -> tuple[int, int, int, int, int]:
        factor = self.config.vae_scale_factor
        return (
            1,
            self.config.latent_channels,
            request.num_frames,
            request.height // factor,
            request.width // factor,
        )

    def prepare_latents(
        self, request: GenerationRequest, scheduler: SchedulerMixin, generator: torch.Generator
    ) -> torch.Tensor:
        """Seeded Gaussian noise [1, C, F, h, w] (drawn on the CPU, like diffusers' randn_tensor with a CPU
        generator) on the device, scaled by the scheduler's init_noise_sigma."""
        latents = torch.randn(self.latent_shape(request), generator=generator, dtype=torch.float32)
        return latents.to(self.placement.device) * scheduler.init_noise_sigma

    def strength_timesteps(self, scheduler: SchedulerMixin, steps: int, strength: float) -> torch.Tensor:
        """The last ``denoising_steps(steps, strength)`` of the timesteps ``set_timesteps(steps)`` made, and
        the scheduler told to begin there (diffusers img2img ``get_timesteps``)."""
        start = (steps - denoising_steps(steps, strength)) * scheduler.order
        if hasattr(scheduler, "set_begin_index"):
            scheduler.set_begin_index(start)
        return scheduler.timesteps[start:]

    async def encode_image(self, components: Components, image: np.ndarray) -> torch.Tensor:
        """uint8 [H, W, 3] -> latent [1, C, h, w], multiplied by the VAE scaling factor (one vae_encoder call)."""
        pixels = image.astype(np.float32).transpose(2, 0, 1)[None] / 127.5 - 1.0
        latent = await components.encode_image(self.placement.to_network(pixels))
        return self.placement.from_network(latent) * self.config.vae_scaling_factor

    def prepare_image_latents(
        self,
        request: GenerationRequest,
        image_latent: torch.Tensor,
        scheduler: SchedulerMixin,
        first_timestep: torch.Tensor,
        generator: torch.Generator,
    ) -> torch.Tensor:
        """The image latent repeated over the frames [1, C, F, h, w], noised to ``first_timestep`` with seeded
        Gaussian noise."""
        init_latents = image_latent[:, :, None].repeat(1, 1, request.num_frames, 1, 1)
        noise = torch.randn(self.latent_shape(request), generator=generator, dtype=torch.float32)
        return scheduler.add_noise(init_latents, noise.to(init_latents.device), first_timestep.reshape(1))

    async def denoise_step(
        self,
        components: Components,
        scheduler: SchedulerMixin,
        latents: torch.Tensor,
        t: torch.Tensor,
        hidden: torch.Tensor,
        guidance_scale: float,
        generator: torch.Generator,
    ) -> torch.Tensor:
        """One scheduler step; with guidance ONE unet call at batch 2 ([uncond, cond]). Everything but the
        unet call runs on the device the tensors live on."""
        do_cfg = hidden.shape[0] == 2
        model_input = torch.cat([latents, latents]) if do_cfg else latents
        model_input = scheduler.scale_model_input(model_input, t)
        place = self.placement
        timestep = place.full(model_input.shape[0], float(t))
        noise_pred = place.from_network(
            await components.unet(place.to_network(model_input), timestep, place.to_network(hidden))
        )
        if do_cfg:
            noise_uncond, noise_text = noise_pred.chunk(2)
            noise_pred = noise_uncond + guidance_scale * (noise_text - noise_uncond)
        kwargs = {"generator": generator} if _accepts_generator(scheduler) else {}
        return scheduler.step(noise_pred, t, latents, **kwargs).prev_sample

    async def decode_latents(self, components: Components, latents: torch.Tensor | np.ndarray) -> np.ndarray:
        """[B, C, F, h, w] latents -> uint8 frames [B*F, H, W, 3] on the host; decode_chunk_size frames per vae
        call, the images stay on the device until they are uint8."""
        place = self.placement
        latents = place.from_network(latents) / self.config.vae_scaling_factor
        batch, channels, frames, height, width = latents.shape
        flat = latents.permute(0, 2, 1, 3, 4).reshape(batch * frames, channels, height, width)
        chunk = max(1, self.config.decode_chunk_size)
        images = [
            place.from_network(await components.decode(place.to_network(flat[i : i + chunk])))
            for i in range(0, flat.shape[0], chunk)
        ]
        return to_uint8_frames(torch.cat(images))

    # -- the whole generation -------------------------------------------------------------------------------

    async def generate(
        self, request: GenerationRequest, components: Components, is_cancelled: CancelCheck | None = None
    ) -> AsyncIterator[ProgressEvent]:
        """Yield progress after text encoding, every denoising step and decoding, then ``done`` with frames.

        ``is_cancelled`` is checked before every component call; when it answers True the generator raises
        Cancelled, so at most the step already in flight finishes.
        """
        is_cancelled = is_cancelled or _never_cancelled
        self.check_inputs(request)
        steps = request.num_inference_steps
        image = request.image
        total = steps if image is None else denoising_steps(steps, request.strength)

        def checkpoint(step: int) -> None:
            if is_cancelled():
                raise Cancelled(step, total)

        do_cfg = request.do_classifier_free_guidance
        checkpoint(0)
        hidden = await self.encode_prompt(components, request.prompt, request.negative_prompt, do_cfg)
        yield ProgressEvent(PHASE_TEXT_ENCODING, 0, total)

        scheduler = self.scheduler_factory()
        scheduler.set_timesteps(steps, device=self.placement.device)
        generator = torch.Generator(device="cpu").manual_seed(request.seed)
        if image is None:
            timesteps = scheduler.timesteps
            latents = self.prepare_latents(request, scheduler, generator)
        else:
            timesteps = self.strength_timesteps(scheduler, steps, request.strength)
            checkpoint(0)
            image_latent = await self.encode_image(components, image)
            latents = self.prepare_image_latents(request, image_latent, scheduler, timesteps[0], generator)
        for index, t in enumerate(timesteps):
            checkpoint(index)
            latents = await self.denoise_step(
                components, scheduler, latents, t, hidden, request.guidance_scale, generator
            )
            yield ProgressEvent(PHASE_FRAME_GENERATION, index + 1, total)

        checkpoint(total)
        frames = await self.decode_latents(components, latents)
        yield ProgressEvent(PHASE_DECODING, total, total)
        yield ProgressEvent(PHASE_DONE, total, total, frames)

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


def denoising_steps(num_inference_steps: int, strength: float) -> int:
    """Steps an image-to-video request runs: int(num_inference_steps * strength) (diffusers' init_timestep),
    at least 1 and at most num_inference_steps. The product is nudged by 1e-6 before flooring so that a strength
    that went through float32 (Triton's FP32 input: 0.7 arrives as 0.69999999) counts as the decimal it was."""
    return min(num_inference_steps, max(1, math.floor(num_inference_steps * strength + 1e-6)))


def _accepts_generator(scheduler: SchedulerMixin) -> bool:
    return "generator" in inspect.signature(scheduler.step).parameters
