"""Text-to-image as diffusers' ``StableDiffusionPipeline`` makes it (same weights, same seed -> the same picture):
the prompt through CLIP ([negative, prompt] with guidance), seeded Gaussian latents [1, C, h, w] from a CPU
generator times the scheduler's ``init_noise_sigma``, one unet call per timestep at twice the batch with guidance,
then the latent, divided by the VAE's scaling factor, through the vae_decoder, rounded to uint8 like diffusers'
postprocess.

Stable Video Diffusion's keyframe stage uses it to make the first frame of a text request, which SVD then animates
(``visualizr.families.stable_video_diffusion.loop``); the stage's networks are named in the shared vocabulary
(``text_encoder``, ``unet``, ``vae_decoder``) and reach the model's own ``keyframe_*`` components through
``visualizr.pipeline.components.StageComponents``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import torch
from diffusers import SchedulerMixin

from visualizr import names
from visualizr.pipeline.assets import SchedulerFactory, check_assets_dir
from visualizr.pipeline.components import Components
from visualizr.pipeline.diffusion import Checkpoint, Denoising, DiffusionPipeline
from visualizr.pipeline.prompt import PromptEncoding
from visualizr.pipeline.request import GenerationRequest, check_common_inputs, check_prompt
from visualizr.pipeline.tensors import TensorPlacement, to_uint8_frames
from visualizr.pipeline.tokenizer import ClipTokenizer
from visualizr.pipeline_config import SCHEDULER_DIRNAME, TOKENIZER_DIRNAME

DEFAULT_GUIDANCE_SCALE = 7.5  # StableDiffusionPipeline's


class TextToImageConfig(msgspec.Struct, frozen=True, kw_only=True):
    """The static facts of a Stable Diffusion-class text-to-image model (a keyframe stage's, in its owner's
    pipeline.json)."""

    latent_channels: int  # 4
    vae_scale_factor: int  # 8: pixels per latent cell
    vae_scaling_factor: float  # 0.18215 for SD1.5's VAE
    text_max_length: int  # 77
    text_hidden_size: int  # D of the text encoder's output
    guidance_scale: float = DEFAULT_GUIDANCE_SCALE  # classifier-free guidance of the picture


class TextToImagePipeline(PromptEncoding, DiffusionPipeline):
    """One picture per request: ``frames`` of the final event is [1, height, width, 3]. ``request.guidance_scale``
    is not used (it is the video's): the picture's guidance is the config's."""

    conditioning_phase = names.PHASE_TEXT_ENCODING
    channels_axis = 1  # latents [B, C, h, w]

    def __init__(
        self,
        config: TextToImageConfig,
        tokenizer: Any,
        scheduler_factory: Callable[[], SchedulerMixin],
        placement: TensorPlacement | None = None,
    ) -> None:
        super().__init__(config, scheduler_factory, placement)  # type: ignore[arg-type]  # the facts it reads
        self.tokenizer = tokenizer

    @classmethod
    def from_assets(
        cls, directory: Path, config: TextToImageConfig, placement: TensorPlacement | None = None
    ) -> TextToImagePipeline:
        """Read ``<directory>/tokenizer/`` and ``scheduler/`` (a keyframe stage's: ``assets/keyframe/``)."""
        directory = check_assets_dir(directory)
        tokenizer = ClipTokenizer.from_pretrained(directory / TOKENIZER_DIRNAME)
        return cls(config, tokenizer, SchedulerFactory.from_dir(directory / SCHEDULER_DIRNAME), placement)

    def check_inputs(self, request: GenerationRequest) -> None:
        check_prompt(request)
        check_common_inputs(request, self.config)

    def total_steps(self, request: GenerationRequest) -> int:
        """The scheduler's timesteps (PNDM, as SD1.5 ships it, makes one more than asked for)."""
        return len(self.new_scheduler(request.num_inference_steps).timesteps)

    def latent_shape(self, request: GenerationRequest) -> tuple[int, int, int, int]:
        factor = self.config.vae_scale_factor
        return (1, self.config.latent_channels, request.height // factor, request.width // factor)

    async def prepare(
        self, request: GenerationRequest, components: Components, checkpoint: Checkpoint
    ) -> Denoising:
        guidance = self.config.guidance_scale
        do_cfg = guidance > 1.0
        hidden = await self.encode_prompt(components, request.prompt, request.negative_prompt, do_cfg)
        scheduler = self.new_scheduler(request.num_inference_steps)
        generator = self.seeded_generator(request.seed)
        latents = torch.randn(self.latent_shape(request), generator=generator, dtype=torch.float32)
        return Denoising(
            scheduler=scheduler,
            timesteps=scheduler.timesteps,
            latents=latents.to(self.placement.device) * scheduler.init_noise_sigma,
            generator=generator,
            conditioning={names.UNET_ENCODER_HIDDEN_STATES: hidden},
            guidance=guidance if do_cfg else None,
        )

    async def decode_latents(self, components: Components, latents: torch.Tensor | np.ndarray) -> np.ndarray:
        """Latents [B, C, h, w] -> uint8 pictures [B, H, W, 3] on the host, in one vae_decoder call."""
        place = self.placement
        inputs = self.decoder_inputs(place.from_network(latents) / self.config.vae_scaling_factor)
        return to_uint8_frames(place.from_network(await components.run(names.VAE_DECODER, inputs, names.VAE_IMAGE)))
