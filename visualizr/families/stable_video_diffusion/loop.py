"""Stable Video Diffusion's denoising loop: the shared ``DiffusionPipeline`` conditioned on the source image, as
diffusers' ``StableVideoDiffusionPipeline`` does it (same seed, same networks -> the same frames):

* the image's CLIP embedding (image_encoder; zeros for the unconditional half with guidance);
* the image, plus ``noise_aug_strength`` x seeded noise, through the vae_encoder: its latent (the mode, not
  scaled) is concatenated to the noisy latents of every frame on the channels (zeros for the unconditional half);
* ``added_time_ids`` = (fps - 1, motion_bucket_id, noise_aug_strength);
* guidance that ramps linearly over the frames from ``min_guidance_scale`` to ``guidance_scale``, applied to
  the ONE unet call per step at twice the batch;
* the temporal vae_decoder, one clip of ``decode_chunk_size`` frames per call (it mixes the frames of a clip).

Latents are [B, F, C, h, w] (frames before channels, unlike AnimateDiff).

A request without an image, on a model exported with a keyframe stage, first makes the image from its prompt
(``visualizr.pipeline.text_to_image``: diffusers' StableDiffusionPipeline, with the same seed), then animates it;
progress counts the steps of both stages. A clip longer than the native window is made of segments
(``segments``): each one is the generation above at the window's length, conditioned on the frame of the previous
one where it begins, with the next seed.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import torch
from diffusers import SchedulerMixin

from visualizr import names
from visualizr.families.stable_video_diffusion import MAX_MOTION_BUCKET_ID
from visualizr.families.stable_video_diffusion.clip_image import ClipNormalization, resize_with_antialiasing
from visualizr.families.stable_video_diffusion.segments import DEFAULT_OVERLAP, ClipStitcher, SegmentPlan, segment_seed
from visualizr.families.stable_video_diffusion.vocabulary import (
    IMAGE_EMBEDS,
    IMAGE_ENCODER,
    IMAGE_ENCODER_PIXELS,
    KEYFRAME_PREFIX,
    UNET_ADDED_TIME_IDS,
)
from visualizr.pipeline.assets import SchedulerFactory, check_assets_dir
from visualizr.pipeline.components import Components, StageComponents
from visualizr.pipeline.diffusion import CancelCheck, Checkpoint, Denoising, DiffusionPipeline
from visualizr.pipeline.errors import Cancelled, InvalidRequest
from visualizr.pipeline.progress import ProgressEvent
from visualizr.pipeline.request import GenerationRequest, check_common_inputs, check_prompt
from visualizr.pipeline.tensors import TensorPlacement
from visualizr.pipeline.text_to_image import TextToImageConfig, TextToImagePipeline
from visualizr.pipeline_config import (
    FEATURE_EXTRACTOR_DIRNAME,
    KEYFRAME_DIRNAME,
    PIPELINE_CONFIG_FILENAME,
    PipelineConfig,
    read_pipeline_config,
)

# diffusers' StableVideoDiffusionPipeline defaults, used for an input a request leaves out
DEFAULT_FPS: Final = 7
DEFAULT_MOTION_BUCKET_ID: Final = 127
DEFAULT_NOISE_AUG_STRENGTH: Final = 0.02
DEFAULT_MIN_GUIDANCE_SCALE: Final = 1.0


class StableVideoDiffusionConfig(PipelineConfig, frozen=True, kw_only=True):
    image_size: int  # side of the image encoder's square input (224 for SVD's CLIP ViT-H/14)
    native_num_frames: int = 0  # frames one pass makes (the UNet's num_frames); longer clips are segments; 0: any
    segment_overlap: int = DEFAULT_OVERLAP  # frames consecutive segments share (cross-faded)
    keyframe: TextToImageConfig | None = None  # the keyframe stage (text-to-video); None: image-to-video only


@dataclass
class _Run:
    """One request's progress across its stages: steps done of ``total``, the cancellation checkpoint, and what
    the stages made so far."""

    total: int
    is_cancelled: CancelCheck
    done: int = 0
    keyframe: np.ndarray | None = None

    def checkpoint(self, step: int = 0) -> None:
        if self.is_cancelled():
            raise Cancelled(max(step, self.done), self.total)

    def event(self, phase: str) -> ProgressEvent:
        return ProgressEvent(phase, self.done, self.total)


class StableVideoDiffusionPipeline(DiffusionPipeline):
    family_name = "stable-video-diffusion"
    conditioning_phase = names.PHASE_IMAGE_ENCODING
    frames_axis, channels_axis = 1, 2  # latents [B, F, C, h, w]

    def __init__(
        self,
        config: StableVideoDiffusionConfig,
        normalization: Callable[[torch.Tensor], torch.Tensor],
        scheduler_factory: Callable[[], SchedulerMixin],
        placement: TensorPlacement | None = None,
        keyframe: TextToImagePipeline | None = None,
    ) -> None:
        super().__init__(config, scheduler_factory, placement)
        self.normalization = normalization  # CLIP's (a ClipNormalization: the exported feature_extractor's)
        self.keyframe = keyframe  # the keyframe stage, or None (image-to-video only)

    @classmethod
    def from_assets(cls, directory: Path, placement: TensorPlacement | None = None) -> StableVideoDiffusionPipeline:
        """Read ``<directory>/pipeline.json``, ``feature_extractor/``, ``scheduler/`` and, with a keyframe stage,
        ``keyframe/`` (its tokenizer and scheduler; see assets_dir)."""
        directory = check_assets_dir(directory)
        config = read_pipeline_config(directory / PIPELINE_CONFIG_FILENAME, StableVideoDiffusionConfig)
        keyframe = None
        if config.keyframe is not None:
            keyframe = TextToImagePipeline.from_assets(directory / KEYFRAME_DIRNAME, config.keyframe, placement)
        return cls(
            config,
            ClipNormalization.from_pretrained(directory / FEATURE_EXTRACTOR_DIRNAME),
            SchedulerFactory.from_assets(directory),
            placement,
            keyframe,
        )

    # -- the steps of one generation ------------------------------------------------------------------------

    def check_inputs(self, request: GenerationRequest) -> None:
        if request.image is None:
            if self.keyframe is None:
                raise InvalidRequest(
                    "image is required: this Stable Video Diffusion model animates a source image (it was exported "
                    "without a keyframe stage to make one from a prompt)"
                )
            check_prompt(request)
        check_common_inputs(request, self.config)
        if request.fps is not None and request.fps < 1:
            raise InvalidRequest(f"fps must be >= 1, got {request.fps}")
        bucket = request.motion_bucket_id
        if bucket is not None and not 0 <= bucket <= MAX_MOTION_BUCKET_ID:
            raise InvalidRequest(f"motion_bucket_id must be in [0, {MAX_MOTION_BUCKET_ID}], got {bucket}")
        for name in (names.IN_NOISE_AUG_STRENGTH, names.IN_MIN_GUIDANCE_SCALE):
            value = getattr(request, name)
            if value is not None and (not math.isfinite(value) or value < 0):
                raise InvalidRequest(f"{name} must be a finite number >= 0, got {value}")

    def segment_plan(self, request: GenerationRequest) -> SegmentPlan:
        return SegmentPlan.of(request.num_frames, self.config.native_num_frames, self.config.segment_overlap)

    def keyframe_steps(self, request: GenerationRequest) -> int:
        return 0 if request.image is not None or self.keyframe is None else self.keyframe.total_steps(request)

    def total_steps(self, request: GenerationRequest) -> int:
        """The keyframe's steps (text requests), then every segment's."""
        return self.keyframe_steps(request) + self.segment_plan(request).count * request.num_inference_steps

    @staticmethod
    def conditioning_values(request: GenerationRequest) -> tuple[int, int, float, float]:
        """(fps, motion_bucket_id, noise_aug_strength, min_guidance_scale), defaults filled in."""
        return (
            DEFAULT_FPS if request.fps is None else request.fps,
            DEFAULT_MOTION_BUCKET_ID if request.motion_bucket_id is None else request.motion_bucket_id,
            DEFAULT_NOISE_AUG_STRENGTH if request.noise_aug_strength is None else request.noise_aug_strength,
            DEFAULT_MIN_GUIDANCE_SCALE if request.min_guidance_scale is None else request.min_guidance_scale,
        )

    def clip_pixels(self, image: torch.Tensor) -> torch.Tensor:
        """[1, 3, H, W] in [0, 1] (on the CPU) -> the image encoder's input: resized with antialiasing to the
        encoder's size and CLIP-normalised (exactly as diffusers' _encode_image does it)."""
        size = self.config.image_size
        resized = (resize_with_antialiasing(image * 2.0 - 1.0, (size, size)) + 1.0) / 2.0
        return self.normalization(resized)

    async def encode_image(self, components: Components, image: torch.Tensor, do_cfg: bool) -> torch.Tensor:
        """[1, 3, H, W] in [0, 1] -> image embeddings [B, 1, D] on the device ([zeros, embedding] with
        guidance)."""
        place = self.placement
        inputs = {IMAGE_ENCODER_PIXELS: place.to_network(self.clip_pixels(image))}
        embeds = place.from_network(await components.run(IMAGE_ENCODER, inputs, IMAGE_EMBEDS))[:, None]
        return torch.cat([torch.zeros_like(embeds), embeds]) if do_cfg else embeds

    async def encode_vae_image(self, components: Components, pixels: torch.Tensor, do_cfg: bool) -> torch.Tensor:
        """[1, 3, H, W] in [-1, 1] (noise-augmented) -> latent [B, C, h, w] on the device, not scaled ([zeros,
        latent] with guidance)."""
        place = self.placement
        inputs = {names.VAE_ENCODER_PIXELS: place.to_network(pixels)}
        latent = place.from_network(await components.run(names.VAE_ENCODER, inputs, names.VAE_ENCODER_LATENT))
        return torch.cat([torch.zeros_like(latent), latent]) if do_cfg else latent

    def latent_shape(self, request: GenerationRequest) -> tuple[int, int, int, int, int]:
        factor = self.config.vae_scale_factor
        return (1, request.num_frames, self.config.latent_channels, request.height // factor, request.width // factor)

    def guidance_ramp(self, request: GenerationRequest, min_guidance_scale: float) -> torch.Tensor:
        """Per-frame guidance [1, F, 1, 1, 1]: min_guidance_scale at the first frame to guidance_scale at the last."""
        ramp = torch.linspace(min_guidance_scale, request.guidance_scale, request.num_frames)
        return ramp.reshape(1, -1, 1, 1, 1).to(self.placement.device, torch.float32)

    async def prepare(self, request: GenerationRequest, components: Components, checkpoint: Checkpoint) -> Denoising:
        fps, motion_bucket_id, noise_aug_strength, min_guidance = self.conditioning_values(request)
        do_cfg = max(min_guidance, request.guidance_scale) > 1.0
        image = torch.from_numpy(np.ascontiguousarray(request.image.transpose(2, 0, 1))[None].astype(np.float32))
        image = image / 255.0
        embeddings = await self.encode_image(components, image, do_cfg)

        generator = self.seeded_generator(request.seed)
        pixels = image * 2.0 - 1.0
        pixels = pixels + noise_aug_strength * torch.randn(pixels.shape, generator=generator, dtype=torch.float32)
        checkpoint(0)
        image_latent = await self.encode_vae_image(components, pixels, do_cfg)
        image_latents = image_latent[:, None].repeat(1, request.num_frames, 1, 1, 1)  # [B, F, C, h, w]
        time_ids = torch.tensor([[fps - 1, motion_bucket_id, noise_aug_strength]], dtype=torch.float32)

        scheduler = self.new_scheduler(request.num_inference_steps)
        noise = torch.randn(self.latent_shape(request), generator=generator, dtype=torch.float32)
        return Denoising(
            scheduler=scheduler,
            timesteps=scheduler.timesteps,
            latents=noise.to(self.placement.device) * scheduler.init_noise_sigma,
            generator=generator,
            conditioning={
                names.UNET_ENCODER_HIDDEN_STATES: embeddings,
                UNET_ADDED_TIME_IDS: time_ids.to(self.placement.device).repeat(embeddings.shape[0], 1),
            },
            guidance=self.guidance_ramp(request, min_guidance) if do_cfg else None,
            concat_latents=image_latents,
        )

    # -- the whole generation: keyframe, segments ----------------------------------------------------------------

    async def generate(
        self, request: GenerationRequest, components: Components, is_cancelled: CancelCheck | None = None
    ) -> AsyncIterator[ProgressEvent]:
        """Progress after the prompt's encoding and every keyframe step (text requests), after the image's encoding,
        every denoising step and the decoding of every segment, then ``done`` with the frames (and the keyframe).
        ``is_cancelled`` is checked before every component call (Cancelled is raised)."""
        self.check_inputs(request)
        plan = self.segment_plan(request)
        run = _Run(self.total_steps(request), is_cancelled or (lambda: False))
        run.checkpoint()
        image = request.image
        if image is None:
            async for event in self._make_keyframe(request, components, run):
                yield event
            image = run.keyframe
        stitcher = ClipStitcher(plan)
        for index in range(plan.count):
            segment = dataclasses.replace(
                request, image=image, num_frames=plan.window, seed=segment_seed(request.seed, index)
            )
            run.checkpoint()
            state = await self.prepare(segment, components, run.checkpoint)
            if index == 0:
                yield run.event(names.PHASE_IMAGE_ENCODING)
            async for event in self.denoise(
                components, state, run.checkpoint, run.done, run.total, preview_every=request.preview_every or 0
            ):
                yield event
            run.done += len(state.timesteps)
            frames = await self.decode_latents(components, state.latents, run.checkpoint)
            stitcher.add(frames)
            image = frames[plan.stride] if index + 1 < plan.count else None
            yield run.event(names.PHASE_DECODING)  # each segment's: what a long clip's decoding takes is told apart
        yield ProgressEvent(names.PHASE_DONE, run.done, run.total, stitcher.video, run.keyframe)

    async def _make_keyframe(
        self, request: GenerationRequest, components: Components, run: _Run
    ) -> AsyncIterator[ProgressEvent]:
        """The keyframe stage on the model's ``keyframe_*`` networks; leaves the picture in ``run.keyframe``."""
        stage, stage_components = self.keyframe, StageComponents(components, KEYFRAME_PREFIX)
        assert stage is not None
        state = await stage.prepare(request, stage_components, run.checkpoint)
        yield run.event(names.PHASE_TEXT_ENCODING)
        async for event in stage.denoise(stage_components, state, run.checkpoint, 0, run.total, names.PHASE_KEYFRAME):
            yield event
        run.done = len(state.timesteps)
        run.checkpoint()
        run.keyframe = (await stage.decode_latents(stage_components, state.latents))[0]
