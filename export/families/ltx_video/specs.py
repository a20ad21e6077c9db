"""LTX-Video's network specs: the T5 text encoder (the Stable Diffusion text encoder's spec at T5's sizes, kept in
fp32 by TensorRT), the transformer over packed latent tokens (one timestep per token), the VAE decoder of a whole
clip and the VAE encoder of image-to-video's first frame.

The transformer's token axis is frames x height x width latent cells (patch size 1): its TensorRT profile is the
product of the card's ranges, its ONNX cases those of the shared trace and verification cases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from visualizr import names
from visualizr.export.families.animatediff.specs import TextEncoderSpec
from visualizr.export.specs import (
    BATCH,
    FRAMES,
    LATENT_HEIGHT,
    LATENT_WIDTH,
    PIXEL_HEIGHT,
    PIXEL_WIDTH,
    AxisRange,
    NetworkDims,
    NetworkSpec,
    ShapeCase,
    ShapeLimits,
    TensorSpec,
    VAEEncoderSpec,
)
from visualizr.families.ltx_video import latent_num_frames
from visualizr.families.ltx_video.vocabulary import (
    DECODE_TIMESTEP,
    ENCODER_ATTENTION_MASK,
    LATENT_DISTRIBUTION,
    TEXT_ATTENTION_MASK,
    TRANSFORMER,
    VIDEO_COORDS,
)

TOKENS = "tokens"  # the transformer's sequence: latent frames x latent height x latent width
LATENT_FRAMES = "latent_frames"  # the VAE's latent frames; FRAMES is then the video's, 8 (f - 1) + 1


@dataclass(frozen=True)
class LTXVideoDims(NetworkDims):
    latent_channels: int = 128
    vae_scale_factor: int = 32
    vae_temporal_scale_factor: int = 8
    text_max_length: int = 128
    text_hidden_size: int = 4096

    def latent_frames(self, frames: int) -> int:
        return latent_num_frames(frames, self.vae_temporal_scale_factor)


def _latent_frames_range(dims: LTXVideoDims, frames: AxisRange) -> AxisRange:
    return AxisRange(*(dims.latent_frames(getattr(frames, level)) for level in ("min", "opt", "max")))


class LTXTextEncoderSpec(TextEncoderSpec):
    """T5 with its attention mask (LTXConditionPipeline masks the padding, LTXPipeline does not: all ones). Its
    activations overflow fp16, so its engine is built in fp32 (or bf16 when asked for)."""

    dims: LTXVideoDims
    engine_precisions = ("fp32", "bf16")

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return (*super().inputs, TensorSpec(TEXT_ATTENTION_MASK, "int64", (BATCH, self.dims.text_max_length)))

    def _sample_input(self, tensor: TensorSpec, shape: tuple[int, ...], generator: Any) -> Any:
        import torch

        if tensor.name == TEXT_ATTENTION_MASK:  # the first tokens of each prompt
            lengths = torch.randint(1, shape[1] + 1, (shape[0], 1), generator=generator)
            return (torch.arange(shape[1])[None] < lengths).to(torch.int64)
        return super()._sample_input(tensor, shape, generator)

    def wrapper(self, network: Any) -> Any:
        from visualizr.export.families.ltx_video.wrappers import T5Wrapper

        return T5Wrapper(network)


class TransformerSpec(NetworkSpec):
    component = TRANSFORMER
    dims: LTXVideoDims

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        d = self.dims
        return (
            TensorSpec(names.UNET_SAMPLE, "float32", (BATCH, TOKENS, d.latent_channels)),
            TensorSpec(names.UNET_TIMESTEP, "float32", (BATCH, TOKENS)),  # per token: conditions at 0
            TensorSpec(names.UNET_ENCODER_HIDDEN_STATES, "float32", (BATCH, d.text_max_length, d.text_hidden_size)),
            TensorSpec(ENCODER_ATTENTION_MASK, "float32", (BATCH, d.text_max_length)),
            TensorSpec(VIDEO_COORDS, "float32", (BATCH, 3, TOKENS)),
        )

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return (TensorSpec(names.UNET_NOISE_PRED, "float32", (BATCH, TOKENS, self.dims.latent_channels)),)

    def batch_range(self, limits: ShapeLimits) -> AxisRange:
        return limits.unet_batch

    def axis_ranges(self, limits: ShapeLimits) -> dict[str, AxisRange]:
        frames = _latent_frames_range(self.dims, limits.frames)
        h, w = limits.latent_height, limits.latent_width
        # keyframes append the last picture's tokens: one latent frame more at most
        tokens = AxisRange(frames.min * h.min * w.min, frames.opt * h.opt * w.opt, (frames.max + 1) * h.max * w.max)
        return {**super().axis_ranges(limits), TOKENS: tokens}

    def sizes(self, case: ShapeCase) -> dict[str, int]:
        return {**super().sizes(case), TOKENS: case.frames * case.latent_height * case.latent_width}

    def _sample_input(self, tensor: TensorSpec, shape: tuple[int, ...], generator: Any) -> Any:
        import torch

        if tensor.name == names.UNET_TIMESTEP:  # flow-matching timesteps in (0, 1000], some tokens' at 0
            return torch.rand(shape, generator=generator) * 1000 * (torch.rand(shape, generator=generator) > 0.2)
        if tensor.name == ENCODER_ATTENTION_MASK:  # the first tokens of each prompt
            lengths = torch.randint(1, shape[1] + 1, (shape[0], 1), generator=generator)
            return (torch.arange(shape[1])[None] < lengths).float()
        if tensor.name == VIDEO_COORDS:  # frames at 1/25 s x 8, pixels 32 apart
            coords = torch.randint(0, 64, shape, generator=generator).float()
            return coords * torch.tensor([8 / 25, 32.0, 32.0])[None, :, None]
        return torch.randn(shape, generator=generator)

    def wrapper(self, network: Any) -> Any:
        from visualizr.export.families.ltx_video.wrappers import TransformerWrapper

        return TransformerWrapper(network)


class SmallVAECases:
    """The VAE's trace and verification cases: small (a VAE call touches every pixel), every axis varied (the
    encoder takes one frame: the frames do not matter to it)."""

    def trace_case(self, downsample_factor: int) -> ShapeCase:
        return ShapeCase(batch=2, frames=2, latent_height=3, latent_width=2)

    def verification_cases(self, downsample_factor: int) -> tuple[ShapeCase, ...]:
        return (
            ShapeCase(batch=2, frames=3, latent_height=2, latent_width=3),
            ShapeCase(batch=3, frames=1, latent_height=1, latent_width=4),
        )


class VAEDecoderSpec(SmallVAECases, NetworkSpec):
    """The whole clip in one call: latents [B, C, f, h, w] -> frames [B, 3, 8 (f - 1) + 1, 32 h, 32 w]."""

    component = names.VAE_DECODER
    dims: LTXVideoDims

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        shape = (BATCH, self.dims.latent_channels, LATENT_FRAMES, LATENT_HEIGHT, LATENT_WIDTH)
        return (TensorSpec(names.VAE_LATENT, "float32", shape), TensorSpec(DECODE_TIMESTEP, "float32", (BATCH,)))

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return (TensorSpec(names.VAE_IMAGE, "float32", (BATCH, 3, FRAMES, PIXEL_HEIGHT, PIXEL_WIDTH)),)

    def batch_range(self, limits: ShapeLimits) -> AxisRange:
        return limits.encode_batch  # one video per call

    def axis_ranges(self, limits: ShapeLimits) -> dict[str, AxisRange]:
        return {**super().axis_ranges(limits), LATENT_FRAMES: _latent_frames_range(self.dims, limits.frames)}

    def sizes(self, case: ShapeCase) -> dict[str, int]:
        frames = self.dims.vae_temporal_scale_factor * (case.frames - 1) + 1
        return {**super().sizes(case), LATENT_FRAMES: case.frames, FRAMES: frames}

    def _sample_input(self, tensor: TensorSpec, shape: tuple[int, ...], generator: Any) -> Any:
        import torch

        if tensor.name == DECODE_TIMESTEP:  # LTX 0.9.5 decodes at 0.05
            return torch.rand(shape, generator=generator) * 0.1
        return torch.randn(shape, generator=generator)

    def wrapper(self, network: Any) -> Any:
        from visualizr.export.families.ltx_video.wrappers import VAEDecoderWrapper

        return VAEDecoderWrapper(network)


class LTXVAEEncoderSpec(SmallVAECases, VAEEncoderSpec):
    """Image-to-video's first frame, as a one-frame clip: pixels [B, 3, H, W] -> its latent distribution's mean
    and standard deviation [B, 2C, h, w] (the loop samples it with the request's generator, as diffusers does)."""

    dims: LTXVideoDims

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        shape = (BATCH, 2 * self.dims.latent_channels, LATENT_HEIGHT, LATENT_WIDTH)
        return (TensorSpec(LATENT_DISTRIBUTION, "float32", shape),)

    def wrapper(self, network: Any) -> Any:
        from visualizr.export.families.ltx_video.wrappers import VAEEncoderWrapper

        return VAEEncoderWrapper(network)


# In the order of the family's networks (visualizr.families.ltx_video.FAMILY).
NETWORK_SPECS: tuple[type[NetworkSpec], ...] = (LTXTextEncoderSpec, TransformerSpec, VAEDecoderSpec, LTXVAEEncoderSpec)
