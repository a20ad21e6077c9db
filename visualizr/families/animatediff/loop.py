"""AnimateDiff's denoising loop: the shared ``DiffusionPipeline`` with a CLIP text prompt as conditioning.

IP-Adapter (a model exported with one, ``request.ip_adapter_image`` set), as diffusers' ``AnimateDiffPipeline`` with
``load_ip_adapter``: the picture, preprocessed as its ``CLIPImageProcessor`` does, through the image encoder; with
guidance the negative embeds are zeros (diffusers' ``encode_image``); the UNet adds its image attention times
``ip_adapter_scale``. Without a picture such a model's UNet gets zero embeds at scale 0: the plain UNet.

Image-to-video (``request.image`` set), like diffusers' img2img / AnimateDiffVideoToVideo: the image's latent,
repeated over the frames, is noised to the first of the last ``denoising_steps(steps, strength)`` timesteps and
only those steps run; ``total_steps`` in the progress events is that number of steps actually run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import torch
from diffusers import SchedulerMixin

from visualizr import names
from visualizr.families.animatediff.context import ContextWindows, shuffle_context
from visualizr.families.animatediff.vocabulary import (
    IMAGE_EMBEDS,
    IMAGE_ENCODER,
    IMAGE_ENCODER_PIXELS,
    UNET_IP_ADAPTER_SCALE,
)
from visualizr.pipeline.assets import SchedulerFactory, check_assets_dir
from visualizr.pipeline.clip_image_processor import ClipImageProcessor
from visualizr.pipeline.components import Components
from visualizr.pipeline.diffusion import Checkpoint, Denoising, DiffusionPipeline
from visualizr.pipeline.errors import InvalidRequest
from visualizr.pipeline.prompt import PromptEncoding
from visualizr.pipeline.request import GenerationRequest, check_common_inputs, check_prompt
from visualizr.pipeline.tensors import TensorPlacement
from visualizr.pipeline.tokenizer import ClipTokenizer
from visualizr.pipeline_config import (
    FEATURE_EXTRACTOR_DIRNAME,
    PIPELINE_CONFIG_FILENAME,
    TOKENIZER_DIRNAME,
    PipelineConfig,
    read_pipeline_config,
)


class AnimateDiffConfig(PipelineConfig, frozen=True, kw_only=True):
    text_max_length: int  # tokenizer padding length (77 for CLIP)
    text_hidden_size: int  # D of the text encoder output
    # FreeNoise: the exported UNet's context windows; the loop draws the initial noise by them (context.py).
    context: ContextWindows = msgspec.field(default_factory=ContextWindows)
    # IP-Adapter: the image encoder's embedding size (0: the model has no adapter; its UNet takes no image embeds).
    # The image processor is the assets' feature_extractor/.
    ip_adapter_embed_dim: int = 0


class AnimateDiffPipeline(PromptEncoding, DiffusionPipeline):
    family_name = "animatediff"
    conditioning_phase = names.PHASE_TEXT_ENCODING
    channels_axis, frames_axis = 1, 2  # latents [B, C, F, h, w]

    def __init__(
        self,
        config: AnimateDiffConfig,
        tokenizer: Any,
        scheduler_factory: Callable[[], SchedulerMixin],
        placement: TensorPlacement | None = None,
        image_processor: ClipImageProcessor | None = None,
    ) -> None:
        super().__init__(config, scheduler_factory, placement)
        self.tokenizer = tokenizer  # a ClipTokenizer, or anything called like it (transformers' CLIPTokenizer)
        # The IP-Adapter's (None: no reference pictures; the UNet of a model with an adapter then runs at scale 0).
        self.image_processor = image_processor if config.ip_adapter_embed_dim else None

    @classmethod
    def from_assets(cls, directory: Path, placement: TensorPlacement | None = None) -> AnimateDiffPipeline:
        """Read ``<directory>/pipeline.json``, ``tokenizer/``, ``scheduler/`` and, with an IP-Adapter,
        ``feature_extractor/`` (see assets_dir)."""
        directory = check_assets_dir(directory)
        config = read_pipeline_config(directory / PIPELINE_CONFIG_FILENAME, AnimateDiffConfig)
        processor = directory / FEATURE_EXTRACTOR_DIRNAME
        return cls(
            config,
            ClipTokenizer.from_pretrained(directory / TOKENIZER_DIRNAME),
            SchedulerFactory.from_assets(directory),
            placement,
            ClipImageProcessor.from_pretrained(processor) if config.ip_adapter_embed_dim else None,
        )

    # -- the steps of one generation ------------------------------------------------------------------------

    def check_inputs(self, request: GenerationRequest) -> None:
        check_prompt(request)
        check_common_inputs(request, self.config)
        if not math.isfinite(request.strength) or not 0 < request.strength <= 1:
            raise InvalidRequest(f"strength must be in (0, 1], got {request.strength}")
        if request.ip_adapter_image is not None and self.image_processor is None:
            raise InvalidRequest(f"{names.IN_IP_ADAPTER_IMAGE}: this model has no IP-Adapter (export it with one)")
        if not math.isfinite(request.ip_adapter_scale) or not 0 <= request.ip_adapter_scale <= 1:
            raise InvalidRequest(f"{names.IN_IP_ADAPTER_SCALE} must be in [0, 1], got {request.ip_adapter_scale}")

    def total_steps(self, request: GenerationRequest) -> int:
        steps = request.num_inference_steps
        return steps if request.image is None else denoising_steps(steps, request.strength)

    def latent_shape(self, request: GenerationRequest) -> tuple[int, int, int, int, int]:
        factor = self.config.vae_scale_factor
        return (1, self.config.latent_channels, request.num_frames, request.height // factor, request.width // factor)

    def prepare_latents(
        self, request: GenerationRequest, scheduler: SchedulerMixin, generator: torch.Generator
    ) -> torch.Tensor:
        """Seeded Gaussian noise [1, C, F, h, w] (drawn on the CPU, like diffusers' randn_tensor with a CPU
        generator; past one context window shuffled as FreeNoise's ``shuffle_context`` does) on the device,
        scaled by the scheduler's init_noise_sigma."""
        latents = torch.randn(self.latent_shape(request), generator=generator, dtype=torch.float32)
        if self.config.context.noise == "shuffle_context":
            latents = shuffle_context(latents, self.config.context, generator)
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
        pixels = self.placement.to_network(image.astype(np.float32).transpose(2, 0, 1)[None] / 127.5 - 1.0)
        latent = await components.run(names.VAE_ENCODER, {names.VAE_ENCODER_PIXELS: pixels}, names.VAE_ENCODER_LATENT)
        return self.placement.from_network(latent) * self.config.vae_scaling_factor

    async def encode_reference(self, request: GenerationRequest, components: Components) -> dict[str, torch.Tensor]:
        """The IP-Adapter picture's embeds (one image_encoder call) and scale, as the UNet's conditioning."""
        if request.ip_adapter_image is None:
            return {}
        assert self.image_processor is not None  # check_inputs
        pixels = self.placement.to_network(self.image_processor(request.ip_adapter_image))
        embeds = await components.run(IMAGE_ENCODER, {IMAGE_ENCODER_PIXELS: pixels}, IMAGE_EMBEDS)
        return self.ip_adapter_conditioning(request, self.placement.from_network(embeds), request.ip_adapter_scale)

    def ip_adapter_conditioning(
        self, request: GenerationRequest, embeds: torch.Tensor | None, scale: float
    ) -> dict[str, torch.Tensor]:
        """The UNet's IP-Adapter inputs at its batch: with guidance [zeros (diffusers' negative embeds), embeds];
        ``embeds`` None: zeros at scale 0 (the plain UNet). Empty for a model without an adapter."""
        if not self.config.ip_adapter_embed_dim:
            return {}
        device = self.placement.device
        if embeds is None:
            embeds, scale = torch.zeros((1, self.config.ip_adapter_embed_dim), device=device), 0.0
        if request.do_classifier_free_guidance:
            embeds = torch.cat([torch.zeros_like(embeds), embeds])
        return {
            IMAGE_EMBEDS: embeds,
            UNET_IP_ADAPTER_SCALE: torch.full((embeds.shape[0],), scale, dtype=torch.float32, device=device),
        }

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

    async def prepare(
        self, request: GenerationRequest, components: Components, checkpoint: Checkpoint
    ) -> Denoising:
        do_cfg = request.do_classifier_free_guidance
        hidden = await self.encode_prompt(components, request.prompt, request.negative_prompt, do_cfg)
        steps = request.num_inference_steps
        scheduler = self.new_scheduler(steps)
        generator = self.seeded_generator(request.seed)
        if request.image is None:
            timesteps = scheduler.timesteps
            latents = self.prepare_latents(request, scheduler, generator)
        else:
            timesteps = self.strength_timesteps(scheduler, steps, request.strength)
            checkpoint(0)
            image_latent = await self.encode_image(components, request.image)
            latents = self.prepare_image_latents(request, image_latent, scheduler, timesteps[0], generator)
        return Denoising(
            scheduler=scheduler,
            timesteps=timesteps,
            latents=latents,
            generator=generator,
            conditioning={
                names.UNET_ENCODER_HIDDEN_STATES: hidden,
                **self.ip_adapter_conditioning(request, None, 0.0),  # encode_reference's replace these
            },
            guidance=request.guidance_scale if do_cfg else None,
        )


def denoising_steps(num_inference_steps: int, strength: float) -> int:
    """Steps an image-to-video request runs: int(num_inference_steps * strength) (diffusers' init_timestep),
    at least 1 and at most num_inference_steps. The product is nudged by 1e-6 before flooring so that a strength
    that went through float32 (Triton's FP32 input: 0.7 arrives as 0.69999999) counts as the decimal it was."""
    return min(num_inference_steps, max(1, math.floor(num_inference_steps * strength + 1e-6)))
