"""One spec class per exported network (demoDiffusion style): tensor names and dtypes, dynamic axes,
TensorRT shape profiles, sample inputs and the torch wrapper whose forward takes the ONNX inputs in order.

Importing this module does not import torch; the torch parts are imported where they are used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from visualizr import names

# Dynamic axis names (shared by the spec classes and the TensorRT profiles); other dims are fixed integers.
BATCH = "batch"
FRAMES = "frames"
LATENT_HEIGHT = "latent_height"
LATENT_WIDTH = "latent_width"
# Pixel height and width: vae_scale_factor times the latent ones (the VAE's input or output).
PIXEL_HEIGHT = "height"
PIXEL_WIDTH = "width"


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str  # numpy dtype name: "float32", "int64"
    axes: tuple[str | int, ...]  # a dynamic axis name or a fixed size per dimension

    def shape(self, sizes: dict[str, int]) -> tuple[int, ...]:
        return tuple(sizes[a] if isinstance(a, str) else a for a in self.axes)

    def dynamic_axes(self) -> dict[int, str]:
        return {i: a for i, a in enumerate(self.axes) if isinstance(a, str)}


_LEVELS = ("min", "opt", "max")


@dataclass(frozen=True)
class AxisRange:
    min: int
    opt: int
    max: int

    def __post_init__(self) -> None:
        if not 0 < self.min <= self.opt <= self.max:
            raise ValueError(f"invalid axis range {self}")

    def scaled(self, factor: int) -> AxisRange:
        return AxisRange(self.min * factor, self.opt * factor, self.max * factor)


@dataclass(frozen=True)
class ShapeLimits:
    """What the exported engines must accept: from the model card's parameter ranges and pipeline config."""

    frames: AxisRange
    latent_height: AxisRange
    latent_width: AxisRange
    unet_batch: AxisRange  # 2 samples (classifier-free guidance) per job, up to unet_max_batch
    text_batch: AxisRange = AxisRange(1, 2, 2)  # prompt + negative prompt
    decode_batch: AxisRange = AxisRange(1, 8, 8)  # frames per vae_decoder call (decode_chunk_size)
    encode_batch: AxisRange = AxisRange(1, 1, 1)  # images per vae_encoder call: one source image per request


@dataclass(frozen=True)
class NetworkDims:
    """The fixed sizes of one model's networks."""

    text_max_length: int = 77
    text_hidden_size: int = 768
    latent_channels: int = 4
    vae_scale_factor: int = 8  # pixels per latent cell


@dataclass(frozen=True)
class NetworkSpec:
    """Base class: subclasses set ``component`` and define their tensors and wrapper."""

    dims: NetworkDims = field(default_factory=NetworkDims)
    component: ClassVar[str]
    # Batched in Triton (max_batch_size > 0, implicit batch dim) or not (explicit -1 batch dim).
    triton_batching: ClassVar[bool] = False

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        raise NotImplementedError

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        raise NotImplementedError

    def batch_range(self, limits: ShapeLimits) -> AxisRange:
        raise NotImplementedError

    def wrapper(self, network: Any) -> Any:
        """A torch module whose forward takes the ONNX inputs in order and returns the single output."""
        raise NotImplementedError

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]

    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        return {t.name: t.dynamic_axes() for t in (*self.inputs, *self.outputs) if t.dynamic_axes()}

    def axis_ranges(self, limits: ShapeLimits) -> dict[str, AxisRange]:
        scale = self.dims.vae_scale_factor
        return {
            BATCH: self.batch_range(limits),
            FRAMES: limits.frames,
            LATENT_HEIGHT: limits.latent_height,
            LATENT_WIDTH: limits.latent_width,
            PIXEL_HEIGHT: limits.latent_height.scaled(scale),
            PIXEL_WIDTH: limits.latent_width.scaled(scale),
        }

    def profiles(self, limits: ShapeLimits) -> dict[str, tuple[tuple[int, ...], ...]]:
        """TensorRT optimisation profile: input name -> (min shape, opt shape, max shape)."""
        ranges = self.axis_ranges(limits)
        return {
            t.name: tuple(t.shape({a: getattr(r, level) for a, r in ranges.items()}) for level in _LEVELS)
            for t in self.inputs
        }

    def sample_inputs(self, batch: int, frames: int, latent_height: int, latent_width: int, seed: int = 0):
        """Random inputs of the given sizes, as a tuple of torch tensors in input order."""
        import torch

        generator = torch.Generator().manual_seed(seed)
        scale = self.dims.vae_scale_factor
        sizes = {
            BATCH: batch,
            FRAMES: frames,
            LATENT_HEIGHT: latent_height,
            LATENT_WIDTH: latent_width,
            PIXEL_HEIGHT: scale * latent_height,
            PIXEL_WIDTH: scale * latent_width,
        }
        return tuple(self._sample_input(t, t.shape(sizes), generator) for t in self.inputs)

    def _sample_input(self, tensor: TensorSpec, shape: tuple[int, ...], generator):
        import torch

        return torch.randn(shape, generator=generator)

    def describe(self) -> dict[str, object]:
        """Everything about the spec that shapes the exported file (part of the ONNX cache key)."""
        return {
            "component": self.component,
            "dims": self.dims.__dict__,
            "inputs": [t.__dict__ for t in self.inputs],
            "outputs": [t.__dict__ for t in self.outputs],
        }


class TextEncoderSpec(NetworkSpec):
    component = names.COMPONENTS[0]

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return (TensorSpec(names.TEXT_INPUT_IDS, "int64", (BATCH, self.dims.text_max_length)),)

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        d = self.dims
        return (TensorSpec(names.TEXT_HIDDEN_STATES, "float32", (BATCH, d.text_max_length, d.text_hidden_size)),)

    def batch_range(self, limits: ShapeLimits) -> AxisRange:
        return limits.text_batch

    def _sample_input(self, tensor: TensorSpec, shape: tuple[int, ...], generator):
        import torch

        return torch.randint(0, 256, shape, generator=generator, dtype=torch.int64)  # < any CLIP vocabulary

    def wrapper(self, network: Any) -> Any:
        from visualizr.export.wrappers import TextEncoderWrapper

        return TextEncoderWrapper(network)


class UNetSpec(NetworkSpec):
    component = names.COMPONENTS[1]
    triton_batching = True

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        d = self.dims
        return (
            TensorSpec(names.UNET_SAMPLE, "float32", (BATCH, d.latent_channels, FRAMES, LATENT_HEIGHT, LATENT_WIDTH)),
            TensorSpec(names.UNET_TIMESTEP, "float32", (BATCH,)),
            TensorSpec(names.UNET_ENCODER_HIDDEN_STATES, "float32", (BATCH, d.text_max_length, d.text_hidden_size)),
        )

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        d = self.dims
        shape = (BATCH, d.latent_channels, FRAMES, LATENT_HEIGHT, LATENT_WIDTH)
        return (TensorSpec(names.UNET_NOISE_PRED, "float32", shape),)

    def batch_range(self, limits: ShapeLimits) -> AxisRange:
        return limits.unet_batch

    def _sample_input(self, tensor: TensorSpec, shape: tuple[int, ...], generator):
        import torch

        if tensor.name == names.UNET_TIMESTEP:
            return torch.randint(1, 1000, shape, generator=generator).float()
        return torch.randn(shape, generator=generator)

    def wrapper(self, network: Any) -> Any:
        from visualizr.export.wrappers import UNetWrapper

        return UNetWrapper(network)


class VAEDecoderSpec(NetworkSpec):
    component = names.COMPONENTS[2]

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
        from visualizr.export.wrappers import VAEDecoderWrapper

        return VAEDecoderWrapper(network)


class VAEEncoderSpec(NetworkSpec):
    """Image-to-video: the source image's latent (the latent distribution's mean, not yet scaled)."""

    component = names.COMPONENTS[3]

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return (TensorSpec(names.VAE_ENCODER_PIXELS, "float32", (BATCH, 3, PIXEL_HEIGHT, PIXEL_WIDTH)),)

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        shape = (BATCH, self.dims.latent_channels, LATENT_HEIGHT, LATENT_WIDTH)
        return (TensorSpec(names.VAE_ENCODER_LATENT, "float32", shape),)

    def batch_range(self, limits: ShapeLimits) -> AxisRange:
        return limits.encode_batch

    def _sample_input(self, tensor: TensorSpec, shape: tuple[int, ...], generator):
        import torch

        return torch.rand(shape, generator=generator) * 2 - 1  # pixels in [-1, 1]

    def wrapper(self, network: Any) -> Any:
        from visualizr.export.wrappers import VAEEncoderWrapper

        return VAEEncoderWrapper(network)


# In the order of visualizr.names.COMPONENTS.
NETWORK_SPECS: tuple[type[NetworkSpec], ...] = (TextEncoderSpec, UNetSpec, VAEDecoderSpec, VAEEncoderSpec)
