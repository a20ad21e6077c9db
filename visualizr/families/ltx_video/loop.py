"""LTX-Video's denoising loop: the shared ``DiffusionPipeline`` over a diffusion transformer, as diffusers'
``LTXPipeline`` does it, and from an image as ``LTXImageToVideoPipeline`` does (same seed, same networks -> the
same frames):

* the prompt (and with guidance the negative prompt, "" by default) through T5, with its attention mask;
* seeded noise [1, C, f, h, w] packed into tokens [1, f*h*w, C] (patch size 1), each token's coordinates
  (frame x 8 / fps, y x 32, x x 32: RoPE's positions) sent to the transformer as ``video_coords``;
* from an image: the image as a one-frame clip through ``vae_encoder``, its latent distribution sampled with the
  request's generator (before the noise) and normalised by the VAE's statistics, is the first latent frame's
  tokens. Those tokens are held: their timestep is 0 (the transformer takes one per token) and the scheduler
  steps only the others;
* from two images (``end_image``: keyframes): ``LTXConditionPipeline``'s sampler (``keyframes``);
* flow matching: sigmas linspace(1, 1/steps), shifted by ``mu`` from the token count (dynamic shifting);
  classifier-free guidance as ONE transformer call at twice the batch;
* decoding the whole clip in one call: denormalised latents, blended with seeded noise by ``decode_noise_scale``,
  at ``decode_timestep`` (the 0.9.5 VAE is timestep-conditioned).

LTX makes 8k + 1 frames: a request for n frames is generated at the next such count and trimmed to n.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch
from diffusers import SchedulerMixin

from visualizr import names
from visualizr.families.ltx_video import MIN_STEPS, latent_num_frames
from visualizr.families.ltx_video.keyframes import (
    HELD,
    Keyframes,
    keep_held,
    keyframe_coords,
    linear_quadratic_schedule,
    renoise_held,
    token_timesteps,
)
from visualizr.families.ltx_video.vocabulary import (
    DECODE_TIMESTEP,
    ENCODER_ATTENTION_MASK,
    LATENT_DISTRIBUTION,
    TEXT_ATTENTION_MASK,
    TRANSFORMER,
    VIDEO_COORDS,
)
from visualizr.pipeline.assets import SchedulerFactory, check_assets_dir
from visualizr.pipeline.components import Components
from visualizr.pipeline.diffusion import Checkpoint, Denoising, DiffusionPipeline
from visualizr.pipeline.errors import InvalidRequest
from visualizr.pipeline.request import GenerationRequest, check_common_inputs, check_prompt
from visualizr.pipeline.tensors import TensorPlacement, to_uint8_frames
from visualizr.pipeline.tokenizer import ClipTokenizer
from visualizr.pipeline_config import PIPELINE_CONFIG_FILENAME, TOKENIZER_DIRNAME, PipelineConfig, read_pipeline_config

DEFAULT_FPS: Final = 25  # LTXPipeline's frame_rate


class LTXVideoConfig(PipelineConfig, frozen=True, kw_only=True):
    text_max_length: int  # the prompt's tokens (LTXPipeline's max_sequence_length, 128)
    vae_temporal_scale_factor: int  # frames per latent frame (8)
    latents_mean: list[float]  # the VAE's per-channel statistics: latents are (z - mean) * scaling / std
    latents_std: list[float]
    timestep_conditioning: bool  # the VAE decoder takes a timestep (0.9.5 and later)
    decode_timestep: float = 0.05  # LTX 0.9.5's recommended decoding (LTXPipeline's defaults are 0 and None)
    decode_noise_scale: float = 0.025


@dataclass
class LTXDenoising(Denoising):
    """A generation's state with what its geometry and decoding need."""

    latent_shape: tuple[int, int, int] = (1, 1, 1)  # latent frames, height, width
    num_frames: int = 1  # the frames asked for (the clip is trimmed to them)
    velocity: torch.Tensor | None = None  # the last step's guided prediction, kept for previews (no copy)
    conditioned_tokens: int = 0  # the leading tokens held as they are (from an image: its latent frame's)
    keyframes: Keyframes | None = None  # from two images: the keyframe sampler's state


def calculate_shift(tokens: int, config: dict[str, Any]) -> float:
    """diffusers' calculate_shift: mu linear in the token count between the scheduler's two anchors."""
    base_len, max_len = config.get("base_image_seq_len", 256), config.get("max_image_seq_len", 4096)
    base_shift, max_shift = config.get("base_shift", 0.5), config.get("max_shift", 1.15)
    slope = (max_shift - base_shift) / (max_len - base_len)
    return tokens * slope + (base_shift - slope * base_len)


def pack_latents(latents: torch.Tensor) -> torch.Tensor:
    """[B, C, f, h, w] -> tokens [B, f*h*w, C] (patch size 1)."""
    return latents.flatten(2).transpose(1, 2)


def unpack_latents(tokens: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """Tokens [B, f*h*w, C] -> [B, C, f, h, w]."""
    return tokens.transpose(1, 2).unflatten(2, shape)


def video_coords(shape: tuple[int, int, int], fps: float, temporal_scale: int, spatial_scale: int) -> torch.Tensor:
    """Each token's (frame, y, x) as LTX's RoPE scales them: [1, 3, f*h*w] float32 (diffusers'
    ``_prepare_video_coords`` before its division by the base sizes, which the transformer does)."""
    axes = [torch.arange(n, dtype=torch.float32) for n in shape]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=0).unsqueeze(0)
    scales = (temporal_scale / fps, spatial_scale, spatial_scale)
    grid = torch.cat([grid[:, i : i + 1] * scale * 1 for i, scale in enumerate(scales)], dim=1)
    return grid.flatten(2)


class LTXVideoPipeline(DiffusionPipeline):
    family_name = "ltx-video"
    conditioning_phase = names.PHASE_TEXT_ENCODING
    frames_axis, channels_axis = 2, 1  # unpacked latents [B, C, f, h, w]
    denoiser = TRANSFORMER

    def __init__(
        self,
        config: LTXVideoConfig,
        tokenizer: Any,
        scheduler_factory: Callable[[], SchedulerMixin],
        placement: TensorPlacement | None = None,
    ) -> None:
        super().__init__(config, scheduler_factory, placement)
        self.config: LTXVideoConfig = config
        self.tokenizer = tokenizer  # a ClipTokenizer over T5's tokenizer.json (or transformers' T5TokenizerFast)

    @classmethod
    def from_assets(cls, directory: Path, placement: TensorPlacement | None = None) -> LTXVideoPipeline:
        """Read ``<directory>/pipeline.json``, ``tokenizer/`` and ``scheduler/`` (see assets_dir)."""
        directory = check_assets_dir(directory)
        return cls(
            read_pipeline_config(directory / PIPELINE_CONFIG_FILENAME, LTXVideoConfig),
            ClipTokenizer.from_pretrained(directory / TOKENIZER_DIRNAME),
            SchedulerFactory.from_assets(directory),
            placement,
        )

    # -- what the family says --------------------------------------------------------------------------------

    def check_inputs(self, request: GenerationRequest) -> None:
        check_prompt(request)
        check_common_inputs(request, self.config)
        if request.fps is not None and request.fps < 1:
            raise InvalidRequest(f"fps must be >= 1, got {request.fps}")
        if request.num_inference_steps < MIN_STEPS:
            raise InvalidRequest(f"num_inference_steps must be >= {MIN_STEPS}, got {request.num_inference_steps}")

    async def encode_prompt(
        self, request: GenerationRequest, components: Components, checkpoint: Checkpoint
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """T5's hidden states and attention mask, [negative, prompt] with guidance. T5 itself sees the mask only
        for keyframes (LTXConditionPipeline); LTXPipeline and LTXImageToVideoPipeline run it unmasked (all ones)."""
        texts = [request.negative_prompt, request.prompt] if request.do_classifier_free_guidance else [request.prompt]
        tokens = self.tokenizer(texts, padding="max_length", max_length=self.config.text_max_length, truncation=True)
        place = self.placement
        checkpoint(0)
        mask = torch.from_numpy(np.asarray(tokens.attention_mask)).to(torch.int64)
        t5_mask = mask if request.end_image is not None else torch.ones_like(mask)
        inputs = {
            names.TEXT_INPUT_IDS: place.to_network(torch.from_numpy(np.asarray(tokens.input_ids)), torch.int64),
            TEXT_ATTENTION_MASK: place.to_network(t5_mask, torch.int64),
        }
        hidden = await components.run(names.TEXT_ENCODER, inputs, names.TEXT_HIDDEN_STATES)
        return place.from_network(hidden), mask.to(device=place.device, dtype=torch.float32)

    def new_flow_scheduler(self, num_inference_steps: int, tokens: int) -> SchedulerMixin:
        """The scheduler at LTXPipeline's sigmas, shifted for ``tokens`` tokens."""
        scheduler = self.scheduler_factory()
        sigmas = np.linspace(1.0, 1 / num_inference_steps, num_inference_steps)
        mu = calculate_shift(tokens, scheduler.config)
        scheduler.set_timesteps(num_inference_steps, device=self.placement.device, sigmas=sigmas, mu=mu)
        return scheduler

    async def encode_image(self, image: np.ndarray, components: Components, generator: torch.Generator) -> torch.Tensor:
        """uint8 [H, W, 3] -> its latent [1, C, 1, h, w]: sampled from ``vae_encoder``'s distribution with
        ``generator`` (diffusers' ``retrieve_latents``), normalised by the VAE's statistics."""
        config, place = self.config, self.placement
        pixels = torch.from_numpy(image.astype(np.float32) / 255.0).permute(2, 0, 1)[None] * 2.0 - 1.0
        inputs = {names.VAE_ENCODER_PIXELS: place.to_network(pixels)}
        distribution = place.from_network(await components.run(names.VAE_ENCODER, inputs, LATENT_DISTRIBUTION))
        sample_mean, sample_std = distribution.unsqueeze(2).chunk(2, dim=1)
        noise = torch.randn(sample_mean.shape, generator=generator, dtype=torch.float32).to(place.device)
        latent = sample_mean + sample_std * noise
        # the inverse of decode's denormalisation (diffusers' pipelines leave the scaling at 1, as LTX's VAEs have it)
        mean, std = self.latents_statistic(config.latents_mean), self.latents_statistic(config.latents_std)
        return (latent - mean) * config.vae_scaling_factor / std

    def new_keyframe_scheduler(self, num_inference_steps: int) -> SchedulerMixin:
        """The scheduler at LTXConditionPipeline's timesteps (``linear_quadratic_schedule`` x 1000), which it
        takes as they are: without dynamic shifting (which would need a ``mu``)."""
        base = self.scheduler_factory()
        scheduler = type(base).from_config(base.config, use_dynamic_shifting=False)
        timesteps = linear_quadratic_schedule(num_inference_steps) * 1000
        scheduler.set_timesteps(timesteps=timesteps, device=self.placement.device)
        return scheduler

    async def keyframe_latents(
        self,
        request: GenerationRequest,
        components: Components,
        checkpoint: Checkpoint,
        shape: tuple[int, int, int],
        generator: torch.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor, Keyframes]:
        """Tokens [1, h*w + f*h*w, C] (the last picture's, then the video's with the first picture's as its first
        frame), their coordinates [1, 3, same] and the keyframe state: LTXConditionPipeline's prepare_latents
        with the two pictures at strength 1, at frames 0 and num_frames - 1."""
        config, place = self.config, self.placement
        fps, temporal, spatial = request.fps or DEFAULT_FPS, config.vae_temporal_scale_factor, config.vae_scale_factor
        video = torch.randn((1, config.latent_channels, *shape), generator=generator, dtype=torch.float32)
        video = video.to(place.device)
        checkpoint(0)
        first = await self.encode_image(request.image, components, generator)
        video[:, :, :1] = torch.lerp(video[:, :, :1], first, HELD)
        checkpoint(0)
        last = await self.encode_image(request.end_image, components, generator)
        blend = torch.randn(last.shape, generator=generator, dtype=torch.float32).to(place.device)
        last = torch.lerp(blend, last, HELD)
        frame_tokens = shape[1] * shape[2]
        mask = torch.zeros((1, shape[0] * frame_tokens), device=place.device)
        mask[:, :frame_tokens] = HELD
        mask = torch.cat([torch.full((1, frame_tokens), HELD, device=place.device), mask], dim=1)
        end_coords = keyframe_coords((1, *shape[1:]), fps, temporal, spatial, frame_index=request.num_frames - 1)
        coords = torch.cat([end_coords, keyframe_coords(shape, fps, temporal, spatial)], dim=2).to(place.device)
        latents = torch.cat([pack_latents(last), pack_latents(video)], dim=1)
        return latents, coords, Keyframes(mask=mask, clean=latents.clone(), extra_tokens=frame_tokens)

    def latents_statistic(self, values: list[float]) -> torch.Tensor:
        """A per-channel statistic of the VAE's latents, [1, C, 1, 1, 1] on the device."""
        return torch.tensor(values, dtype=torch.float32, device=self.placement.device).view(1, -1, 1, 1, 1)

    async def prepare(self, request: GenerationRequest, components: Components, checkpoint: Checkpoint) -> LTXDenoising:
        config = self.config
        embeddings, mask = await self.encode_prompt(request, components, checkpoint)
        shape = (
            latent_num_frames(request.num_frames, config.vae_temporal_scale_factor),
            request.height // config.vae_scale_factor,
            request.width // config.vae_scale_factor,
        )
        generator = self.seeded_generator(request.seed)
        image_latent, keyframes, conditioned_tokens = None, None, 0
        if request.end_image is not None:
            latents, coords, keyframes = await self.keyframe_latents(request, components, checkpoint, shape, generator)
            scheduler = self.new_keyframe_scheduler(request.num_inference_steps)
        else:
            if request.image is not None:
                checkpoint(0)
                image_latent = await self.encode_image(request.image, components, generator)
            noise = torch.randn((1, config.latent_channels, *shape), generator=generator, dtype=torch.float32)
            latents = pack_latents(noise).to(self.placement.device)
            if image_latent is not None:  # the first latent frame's tokens are the image's
                conditioned_tokens = shape[1] * shape[2]
                latents[:, :conditioned_tokens] = pack_latents(image_latent)
            fps = request.fps or DEFAULT_FPS
            coords = video_coords(shape, fps, config.vae_temporal_scale_factor, config.vae_scale_factor)
            scheduler = self.new_flow_scheduler(request.num_inference_steps, latents.shape[1])
        batch = embeddings.shape[0]
        return LTXDenoising(
            scheduler=scheduler,
            timesteps=scheduler.timesteps,
            latents=latents,
            generator=generator,
            conditioning={
                names.UNET_ENCODER_HIDDEN_STATES: embeddings,
                ENCODER_ATTENTION_MASK: mask,
                VIDEO_COORDS: coords.to(self.placement.device).repeat(batch, 1, 1),
            },
            guidance=request.guidance_scale if request.do_classifier_free_guidance else None,
            latent_shape=shape,
            num_frames=request.num_frames,
            conditioned_tokens=conditioned_tokens,
            keyframes=keyframes,
        )

    async def guided_prediction(
        self, components: Components, state: Denoising, latents: torch.Tensor, t: torch.Tensor, timestep: torch.Tensor
    ) -> torch.Tensor:
        """The transformer's prediction for ``latents`` [1, S, C] at per-token ``timestep`` [B, S] (B: 2 with
        guidance, ONE call at twice the batch), guided."""
        do_cfg = state.guidance is not None
        model_input = torch.cat([latents, latents]) if do_cfg else latents
        # the per-token timestep replaces predict_noise's one per sample
        conditioning = {**state.conditioning, names.UNET_TIMESTEP: timestep}
        noise_pred = await self.predict_noise(components, model_input, t, conditioning)
        if do_cfg:
            noise_uncond, noise_cond = noise_pred.chunk(2)
            noise_pred = noise_uncond + state.guidance * (noise_cond - noise_uncond)
        return noise_pred

    async def denoise_step(self, components: Components, state: Denoising, t: torch.Tensor) -> torch.Tensor:
        """One flow-matching step (no input scaling). The conditioned tokens get timestep 0 and are kept as they
        are; the scheduler steps the others. Keyframes: ``keyframe_step``."""
        assert isinstance(state, LTXDenoising)
        if state.keyframes is not None:
            return await self.keyframe_step(components, state, state.keyframes, t)
        latents, held = state.latents, state.conditioned_tokens
        batch = 2 if state.guidance is not None else 1
        timestep = t.to(torch.float32).expand(batch, latents.shape[1]).clone()
        timestep[:, :held] = 0.0
        noise_pred = await self.guided_prediction(components, state, latents, t, timestep)
        state.velocity = noise_pred
        stepped = state.scheduler.step(noise_pred[:, held:], t, latents[:, held:]).prev_sample
        return torch.cat([latents[:, :held], stepped], dim=1)

    async def keyframe_step(
        self, components: Components, state: LTXDenoising, keyframes: Keyframes, t: torch.Tensor
    ) -> torch.Tensor:
        """LTXConditionPipeline's step: the held tokens renoised, every token at its own timestep, the scheduler
        stepping the (negated) prediction per token, the held tokens kept."""
        state.velocity = None  # per-token timesteps: previews show the latents as they are, not a clean estimate
        latents = renoise_held(keyframes, state.latents, t, state.generator)
        timestep = token_timesteps(keyframes, t, 2 if state.guidance is not None else 1)
        noise_pred = await self.guided_prediction(components, state, latents, t, timestep)
        stepped = state.scheduler.step(-noise_pred, t, latents, per_token_timesteps=timestep[:1]).prev_sample
        return keep_held(keyframes, stepped, latents, t)

    def preview_latents(self, state: Denoising) -> torch.Tensor:
        """Flow matching's clean-latent prediction, computed only when a preview is made: after a step to sigma
        s the latents are x0 + s * velocity, so x0 = latents - s * velocity; unpacked to [B, C, f, h, w]."""
        assert isinstance(state, LTXDenoising)
        latents = state.latents
        if state.velocity is not None:
            sigma = state.scheduler.sigmas[state.scheduler.step_index]  # the sigma the last step reached
            clean = latents - sigma.to(latents.device) * state.velocity
            held = state.conditioned_tokens  # the image's tokens do not move: their estimate is themselves
            latents = torch.cat([latents[:, :held], clean[:, held:]], dim=1) if held else clean
        return self.video_tokens(state, latents)

    @staticmethod
    def video_tokens(state: LTXDenoising, latents: torch.Tensor) -> torch.Tensor:
        """The video's own tokens of ``latents`` unpacked to [B, C, f, h, w] (a keyframe job's appended tokens of
        its last picture dropped)."""
        extra_tokens = state.keyframes.extra_tokens if state.keyframes is not None else 0
        return unpack_latents(latents[:, extra_tokens:], state.latent_shape)

    async def decode(self, components: Components, state: Denoising) -> np.ndarray:
        """The whole clip in one vae_decoder call, trimmed to the frames asked for: uint8 [F, H, W, 3]."""
        assert isinstance(state, LTXDenoising)
        config, place = self.config, self.placement
        latents = self.video_tokens(state, state.latents)
        std, mean = self.latents_statistic(config.latents_std), self.latents_statistic(config.latents_mean)
        latents = latents * std / config.vae_scaling_factor + mean
        timestep = 0.0
        if config.timestep_conditioning:
            noise = torch.randn(latents.shape, generator=state.generator, dtype=torch.float32).to(place.device)
            scale = config.decode_noise_scale
            latents = (1 - scale) * latents + scale * noise
            timestep = config.decode_timestep
        inputs = {names.VAE_LATENT: place.to_network(latents), DECODE_TIMESTEP: place.full(1, timestep)}
        video = place.from_network(await components.run(names.VAE_DECODER, inputs, names.VAE_IMAGE))
        return to_uint8_frames(video[0].movedim(1, 0)[: state.num_frames])
