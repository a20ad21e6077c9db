"""Stable Video Diffusion's network specs (the VAE encoder's is shared: ``visualizr.export.specs.VAEEncoderSpec``),
and its keyframe stage's: a Stable Diffusion model, whose text encoder and VAE decoder are AnimateDiff's (AnimateDiff
is Stable Diffusion with motion modules), so those specs are AnimateDiff's under the keyframe's component names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from visualizr import names
from visualizr.export.families.animatediff.specs import TextEncoderSpec, VAEDecoderSpec
from visualizr.export.specs import (
    BATCH,
    FRAMES,
    LATENT_HEIGHT,
    LATENT_WIDTH,
    PIXEL_HEIGHT,
    PIXEL_WIDTH,
    AxisRange,
    DiscreteTimestepUNetSpec,
    ImageEncoderSpec,
    NetworkDims,
    NetworkSpec,
    ShapeCase,
    ShapeLimits,
    TensorSpec,
    VAEEncoderSpec,
)
from visualizr.families.stable_video_diffusion.vocabulary import (
    KEYFRAME_TEXT_ENCODER,
    KEYFRAME_UNET,
    KEYFRAME_VAE_DECODER,
    UNET_ADDED_TIME_IDS,
)

# The decoder's latents: videos x frames of them, in one dynamic axis.
LATENT_FRAMES = "latent_frames"


@dataclass(frozen=True)
class StableVideoDiffusionDims(NetworkDims):
    image_size: int = 224  # the image encoder's square input
    image_embed_dim: int = 1024  # image_embeds (the unet's cross-attention dim)
    time_ids: int = 3  # fps - 1, motion_bucket_id, noise_aug_strength


class UNetSpec(NetworkSpec):
    """UNetSpatioTemporalConditionModel: latents [B, F, C, h, w]; the sample carries the image latents too."""

    component = names.UNET
    dims: StableVideoDiffusionDims

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        d = self.dims
        sample = (BATCH, FRAMES, 2 * d.latent_channels, LATENT_HEIGHT, LATENT_WIDTH)  # noisy ++ image latents
        return (
            TensorSpec(names.UNET_SAMPLE, "float32", sample),
            TensorSpec(names.UNET_TIMESTEP, "float32", (BATCH,)),
            TensorSpec(names.UNET_ENCODER_HIDDEN_STATES, "float32", (BATCH, 1, d.image_embed_dim)),
            TensorSpec(UNET_ADDED_TIME_IDS, "float32", (BATCH, d.time_ids)),
        )

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        shape = (BATCH, FRAMES, self.dims.latent_channels, LATENT_HEIGHT, LATENT_WIDTH)
        return (TensorSpec(names.UNET_NOISE_PRED, "float32", shape),)

    def batch_range(self, limits: ShapeLimits) -> AxisRange:
        return limits.unet_batch

    def _sample_input(self, tensor: TensorSpec, shape: tuple[int, ...], generator: Any) -> Any:
        import torch

        if tensor.name == names.UNET_TIMESTEP:  # continuous timesteps: 0.25 log(sigma), sigma in [0.002, 700]
            return torch.rand(shape, generator=generator) * 3.2 - 1.6
        if tensor.name == UNET_ADDED_TIME_IDS:  # fps - 1, motion bucket, noise augmentation
            scale = torch.tensor([30.0, 255.0, 0.1])
            return (torch.rand(shape, generator=generator) * scale).round(decimals=2)
        return torch.randn(shape, generator=generator)

    def wrapper(self, network: Any) -> Any:
        from visualizr.export.families.stable_video_diffusion.wrappers import UNetWrapper

        return UNetWrapper(network)


class TemporalVAEDecoderSpec(NetworkSpec):
    """The temporal decoder: ``latent_sample`` [F, C, h, w] is ONE clip of F frames (a decode chunk), which its
    temporal layers mix. F is read off the latents' first axis inside the graph, so the network has no
    ``num_frames`` input: no shape tensor for TensorRT, no int64 scalar for Triton."""

    component = names.VAE_DECODER

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        shape = (LATENT_FRAMES, self.dims.latent_channels, LATENT_HEIGHT, LATENT_WIDTH)
        return (TensorSpec(names.VAE_LATENT, "float32", shape),)

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return (TensorSpec(names.VAE_IMAGE, "float32", (LATENT_FRAMES, 3, PIXEL_HEIGHT, PIXEL_WIDTH)),)

    def batch_range(self, limits: ShapeLimits) -> AxisRange:
        return limits.decode_batch

    def axis_ranges(self, limits: ShapeLimits) -> dict[str, AxisRange]:
        return {**super().axis_ranges(limits), LATENT_FRAMES: limits.decode_batch}

    def sizes(self, case: ShapeCase) -> dict[str, int]:
        """A clip of ``case.batch x case.frames`` frames: the verification covers several clip lengths."""
        return {**super().sizes(case), LATENT_FRAMES: case.batch * case.frames}

    def wrapper(self, network: Any) -> Any:
        from visualizr.export.families.stable_video_diffusion.wrappers import TemporalVAEDecoderWrapper

        return TemporalVAEDecoderWrapper(network)


@dataclass(frozen=True)
class KeyframeDims(NetworkDims):
    """The keyframe stage's Stable Diffusion networks."""

    text_max_length: int = 77
    text_hidden_size: int = 768


class KeyframeTextEncoderSpec(TextEncoderSpec):
    component = KEYFRAME_TEXT_ENCODER
    dims: KeyframeDims


class KeyframeUNetSpec(DiscreteTimestepUNetSpec):
    """UNet2DConditionModel: one picture's latents [B, C, h, w]."""

    component = KEYFRAME_UNET
    dims: KeyframeDims

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        d = self.dims
        return (
            TensorSpec(names.UNET_SAMPLE, "float32", (BATCH, d.latent_channels, LATENT_HEIGHT, LATENT_WIDTH)),
            TensorSpec(names.UNET_TIMESTEP, "float32", (BATCH,)),
            TensorSpec(names.UNET_ENCODER_HIDDEN_STATES, "float32", (BATCH, d.text_max_length, d.text_hidden_size)),
        )

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        shape = (BATCH, self.dims.latent_channels, LATENT_HEIGHT, LATENT_WIDTH)
        return (TensorSpec(names.UNET_NOISE_PRED, "float32", shape),)

    def wrapper(self, network: Any) -> Any:
        from visualizr.export.families.stable_video_diffusion.wrappers import KeyframeUNetWrapper

        return KeyframeUNetWrapper(network)


class KeyframeVAEDecoderSpec(VAEDecoderSpec):
    component = KEYFRAME_VAE_DECODER


# In the order of the family's networks (visualizr.families.stable_video_diffusion.FAMILY): SVD's own, then the
# keyframe stage's (for a model exported with one; they take KeyframeDims).
NETWORK_SPECS: tuple[type[NetworkSpec], ...] = (ImageEncoderSpec, VAEEncoderSpec, UNetSpec, TemporalVAEDecoderSpec)
KEYFRAME_SPECS: tuple[type[NetworkSpec], ...] = (KeyframeTextEncoderSpec, KeyframeUNetSpec, KeyframeVAEDecoderSpec)
