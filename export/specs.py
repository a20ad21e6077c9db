"""Network specs, demoDiffusion style: one spec class per exported network (tensor names and dtypes, dynamic
axes, TensorRT shape profiles, sample inputs and the torch wrapper whose forward takes the ONNX inputs in order).

This module holds what every family shares: the base classes and the specs of networks that are the same in
every family (the VAE encoder). A family's own specs live in ``export/families/<family>/specs.py``.
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
    encode_batch: AxisRange = AxisRange(1, 1, 1)  # images per image/vae encoder call: one per request


@dataclass(frozen=True)
class NetworkDims:
    """The fixed sizes of one model's networks; families extend it with their own."""

    latent_channels: int = 4
    vae_scale_factor: int = 8  # pixels per latent cell


@dataclass(frozen=True)
class ShapeCase:
    """Sizes of one export or verification call, in latent cells for height and width."""

    batch: int
    frames: int
    latent_height: int
    latent_width: int


@dataclass(frozen=True)
class NetworkSpec:
    """Base class: subclasses set ``component`` and define their tensors and wrapper."""

    dims: NetworkDims = field(default_factory=NetworkDims)
    component: ClassVar[str]

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

    def sizes(self, case: ShapeCase) -> dict[str, int]:
        scale = self.dims.vae_scale_factor
        return {
            BATCH: case.batch,
            FRAMES: case.frames,
            LATENT_HEIGHT: case.latent_height,
            LATENT_WIDTH: case.latent_width,
            PIXEL_HEIGHT: scale * case.latent_height,
            PIXEL_WIDTH: scale * case.latent_width,
        }

    def case_factor(self, unet_downsample_factor: int) -> int:
        """The downsampling factor its trace and verification shapes are made for (``onnx_export.trace_case``): the
        UNet's for a denoiser, whose graph must take latent sizes aligned to it and not; the smallest that still
        varies every axis for any other network, which takes any size (at the UNet's, a deep UNet's cases made the
        temporal VAE decoder's verification take a minute)."""
        return unet_downsample_factor if names.UNET_SAMPLE in self.input_names else 2

    def sample_inputs(self, case: ShapeCase, seed: int = 0) -> tuple[Any, ...]:
        """Random inputs of the sizes of ``case``, as a tuple of torch tensors in input order."""
        import torch

        generator = torch.Generator().manual_seed(seed)
        sizes = self.sizes(case)
        return tuple(self._sample_input(t, t.shape(sizes), generator) for t in self.inputs)

    def _sample_input(self, tensor: TensorSpec, shape: tuple[int, ...], generator: Any) -> Any:
        import torch

        return torch.randn(shape, generator=generator)

    def trace_case(self, downsample_factor: int) -> ShapeCase:
        """The sizes the export traces at (``onnx_export.trace_case``, unless a spec needs its own)."""
        from visualizr.export.onnx_export import trace_case

        return trace_case(downsample_factor)

    def verification_cases(self, downsample_factor: int) -> tuple[ShapeCase, ...]:
        """The sizes onnxruntime is checked against torch at (``onnx_export.verification_cases``, unless a spec
        needs more)."""
        from visualizr.export.onnx_export import verification_cases

        return verification_cases(downsample_factor)

    def describe(self) -> dict[str, object]:
        """Everything about the spec that shapes the exported file (part of the ONNX cache key)."""
        return {
            "component": self.component,
            "dims": self.dims.__dict__,
            "inputs": [t.__dict__ for t in self.inputs],
            "outputs": [t.__dict__ for t in self.outputs],
        }


def pixels_sample(shape: tuple[int, ...], generator: Any) -> Any:
    """Random pixels in [-1, 1]."""
    import torch

    return torch.rand(shape, generator=generator) * 2 - 1


class DiscreteTimestepUNetSpec(NetworkSpec):
    """A Stable Diffusion-class UNet (timesteps 1..999 of a discrete schedule), batched by classifier-free
    guidance; its tensors are the subclass's."""

    def batch_range(self, limits: ShapeLimits) -> AxisRange:
        return limits.unet_batch

    def _sample_input(self, tensor: TensorSpec, shape: tuple[int, ...], generator: Any) -> Any:
        import torch

        if tensor.name == names.UNET_TIMESTEP:
            return torch.randint(1, 1000, shape, generator=generator).float()
        return torch.randn(shape, generator=generator)


class VAEEncoderSpec(NetworkSpec):
    """The image's latent (the latent distribution's mean, not yet scaled); the same in every family."""

    component = names.VAE_ENCODER

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return (TensorSpec(names.VAE_ENCODER_PIXELS, "float32", (BATCH, 3, PIXEL_HEIGHT, PIXEL_WIDTH)),)

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        shape = (BATCH, self.dims.latent_channels, LATENT_HEIGHT, LATENT_WIDTH)
        return (TensorSpec(names.VAE_ENCODER_LATENT, "float32", shape),)

    def batch_range(self, limits: ShapeLimits) -> AxisRange:
        return limits.encode_batch

    def _sample_input(self, tensor: TensorSpec, shape: tuple[int, ...], generator: Any) -> Any:
        return pixels_sample(shape, generator)

    def wrapper(self, network: Any) -> Any:
        from visualizr.export.wrappers import VAEEncoderWrapper

        return VAEEncoderWrapper(network)


class ImageEncoderSpec(NetworkSpec):
    """A CLIP image encoder (CLIPVisionModelWithProjection): Stable Video Diffusion's, an IP-Adapter's. Its dims
    have ``image_size`` (the square input) and ``image_embed_dim``."""

    component = names.IMAGE_ENCODER

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        size = self.dims.image_size
        return (TensorSpec(names.IMAGE_ENCODER_PIXELS, "float32", (BATCH, 3, size, size)),)

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return (TensorSpec(names.IMAGE_EMBEDS, "float32", (BATCH, self.dims.image_embed_dim)),)

    def batch_range(self, limits: ShapeLimits) -> AxisRange:
        return limits.encode_batch

    def _sample_input(self, tensor: TensorSpec, shape: tuple[int, ...], generator: Any) -> Any:
        return pixels_sample(shape, generator) * 2  # about the range of CLIP-normalised pixels

    def wrapper(self, network: Any) -> Any:
        from visualizr.export.wrappers import ImageEncoderWrapper

        return ImageEncoderWrapper(network)
