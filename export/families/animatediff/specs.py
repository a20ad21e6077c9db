"""AnimateDiff's network specs (the VAE encoder's is shared: ``visualizr.export.specs.VAEEncoderSpec``)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from visualizr import names
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
from visualizr.families.animatediff.context import ContextWindows
from visualizr.families.animatediff.vocabulary import (
    IMAGE_EMBEDS,
    TEXT_ENCODER,
    TEXT_HIDDEN_STATES,
    TEXT_INPUT_IDS,
    UNET_IP_ADAPTER_SCALE,
)


@dataclass(frozen=True)
class AnimateDiffDims(NetworkDims):
    text_max_length: int = 77
    text_hidden_size: int = 768
    windows: ContextWindows = ContextWindows()  # the motion modules' FreeNoise context windows
    # IP-Adapter (0: none): the image encoder's square input and embedding size; the UNet then takes the embeds.
    image_size: int = 0
    image_embed_dim: int = 0


class TextEncoderSpec(NetworkSpec):
    component = TEXT_ENCODER
    dims: AnimateDiffDims

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return (TensorSpec(TEXT_INPUT_IDS, "int64", (BATCH, self.dims.text_max_length)),)

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        d = self.dims
        return (TensorSpec(TEXT_HIDDEN_STATES, "float32", (BATCH, d.text_max_length, d.text_hidden_size)),)

    def batch_range(self, limits: ShapeLimits) -> AxisRange:
        return limits.text_batch

    def _sample_input(self, tensor: TensorSpec, shape: tuple[int, ...], generator: Any) -> Any:
        import torch

        return torch.randint(0, 256, shape, generator=generator, dtype=torch.int64)  # < any CLIP vocabulary

    def wrapper(self, network: Any) -> Any:
        from visualizr.export.families.animatediff.wrappers import TextEncoderWrapper

        return TextEncoderWrapper(network)


class UNetSpec(DiscreteTimestepUNetSpec):
    """UNetMotionModel: latents [B, C, F, h, w], its motion modules in context windows (any F)."""

    component = names.UNET
    dims: AnimateDiffDims

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        d = self.dims
        return (
            TensorSpec(names.UNET_SAMPLE, "float32", (BATCH, d.latent_channels, FRAMES, LATENT_HEIGHT, LATENT_WIDTH)),
            TensorSpec(names.UNET_TIMESTEP, "float32", (BATCH,)),
            TensorSpec(names.UNET_ENCODER_HIDDEN_STATES, "float32", (BATCH, d.text_max_length, d.text_hidden_size)),
            *self.ip_adapter_inputs,
        )

    @property
    def ip_adapter_inputs(self) -> tuple[TensorSpec, ...]:
        """With an IP-Adapter: the image embeds (the image projection is in the graph) and the per-sample scale."""
        if not self.dims.image_embed_dim:
            return ()
        return (
            TensorSpec(IMAGE_EMBEDS, "float32", (BATCH, self.dims.image_embed_dim)),
            TensorSpec(UNET_IP_ADAPTER_SCALE, "float32", (BATCH,)),
        )

    def _sample_input(self, tensor: TensorSpec, shape: tuple[int, ...], generator: Any) -> Any:
        import torch

        if tensor.name == UNET_IP_ADAPTER_SCALE:
            return torch.rand(shape, generator=generator)
        return super()._sample_input(tensor, shape, generator)

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        shape = (BATCH, self.dims.latent_channels, FRAMES, LATENT_HEIGHT, LATENT_WIDTH)
        return (TensorSpec(names.UNET_NOISE_PRED, "float32", shape),)

    def trace_case(self, downsample_factor: int) -> ShapeCase:
        """Traced over several windows and an incomplete last one (16, 4: windows at 0, 4, 8 and one ending at 25)."""
        windows = self.dims.windows
        return replace(super().trace_case(downsample_factor), frames=windows.length + 2 * windows.stride + 1)

    def verification_cases(self, downsample_factor: int) -> tuple[ShapeCase, ...]:
        """The shared cases (one window: the plain motion modules) and the same sizes at two frame counts past one
        window: whole windows to the last frame (16, 4: 28 frames) and an incomplete last one (35)."""
        first, second = super().verification_cases(downsample_factor)
        length, stride = self.dims.windows.length, self.dims.windows.stride
        return (first, second, replace(first, frames=length + 3 * stride), replace(second, frames=2 * length + 3))

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "window_weights": self.dims.windows.weights()}

    def wrapper(self, network: Any) -> Any:
        from visualizr.export.families.animatediff.wrappers import IPAdapterUNetWrapper, UNetWrapper

        wrapper = IPAdapterUNetWrapper if self.dims.image_embed_dim else UNetWrapper
        return wrapper(network, self.dims.windows)


class VAEDecoderSpec(NetworkSpec):
    component = names.VAE_DECODER

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return (
            TensorSpec(names.VAE_LATENT, "float32", (BATCH, self.dims.latent_channels, LATENT_HEIGHT, LATENT_WIDTH)),
        )

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        # Pixel height/width (8x the latent ones) are dynamic output axes of their own; no profile needs them.
        return (TensorSpec(names.VAE_IMAGE, "float32", (BATCH, 3, PIXEL_HEIGHT, PIXEL_WIDTH)),)

    def batch_range(self, limits: ShapeLimits) -> AxisRange:
        return limits.decode_batch

    def wrapper(self, network: Any) -> Any:
        from visualizr.export.families.animatediff.wrappers import VAEDecoderWrapper

        return VAEDecoderWrapper(network)


# In the order of the family's networks (visualizr.families.animatediff.FAMILY); the image encoder only with an
# IP-Adapter.
NETWORK_SPECS: tuple[type[NetworkSpec], ...] = (
    TextEncoderSpec,
    UNetSpec,
    VAEDecoderSpec,
    VAEEncoderSpec,
    ImageEncoderSpec,
)
