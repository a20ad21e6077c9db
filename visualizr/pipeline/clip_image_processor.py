"""transformers' ``CLIPImageProcessor`` (its PIL backend, what diffusers' pipelines make for an IP-Adapter's image
encoder) written with torch alone, bit for bit: the shortest edge resized with Pillow's bicubic filter (Pillow's
8-bit fixed-point arithmetic: ``pillow_resize``), a center crop, the rescale to [0, 1] and the CLIP normalisation
(``ClipNormalization``). A test holds it to transformers' on many sizes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from visualizr.families.stable_video_diffusion.clip_image import PREPROCESSOR_CONFIG_FILENAME, ClipNormalization

_PRECISION_BITS = 32 - 8 - 2  # Pillow's Resample.c, for 8-bit images
_BICUBIC = 3  # PIL.Image.Resampling.BICUBIC


def _bicubic(x: float) -> float:
    a, x = -0.5, abs(x)
    if x < 1.0:
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1
    if x < 2.0:
        return (((x - 5) * x + 8) * x - 4) * a
    return 0.0


def _coefficients(in_size: int, out_size: int) -> torch.Tensor:
    """Pillow's ``precompute_coeffs`` + ``normalize_coeffs_8bpc`` as a dense int64 matrix [out_size, in_size]."""
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support, reciprocal = 2.0 * filterscale, 1.0 / filterscale
    matrix = torch.zeros((out_size, in_size), dtype=torch.int64)
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size)
        weights = [_bicubic((x - center + 0.5) * reciprocal) for x in range(xmin, xmax)]
        total = sum(weights)
        for x, w in zip(range(xmin, xmax), weights, strict=True):
            k = w / total if total != 0.0 else w
            k *= 1 << _PRECISION_BITS
            matrix[xx, x] = int(k - 0.5 if k < 0 else k + 0.5)  # C's (int) truncates toward zero
    return matrix


def _resample(pixels: torch.Tensor, coefficients: torch.Tensor) -> torch.Tensor:
    """One pass along the last axis of float64 ``pixels`` (integers 0..255): Pillow's rounding and clipping to 8
    bits. Its integer sums stay below 2**31 and the shift is a division by a power of two, so float64 (a BLAS
    matmul) computes them exactly."""
    total = pixels.contiguous() @ coefficients.T.to(torch.float64)
    return torch.floor((total + (1 << (_PRECISION_BITS - 1))) / (1 << _PRECISION_BITS)).clamp(0, 255)


def pillow_resize(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """uint8 [C, H, W] -> uint8 [C, height, width]: ``PIL.Image.resize((width, height), BICUBIC)``, horizontal
    pass first, each pass only where its size changes, as Pillow does."""
    pixels = image.to(torch.float64)
    if width != pixels.shape[-1]:
        pixels = _resample(pixels, _coefficients(pixels.shape[-1], width))
    if height != pixels.shape[-2]:
        pixels = _resample(pixels.transpose(-1, -2), _coefficients(pixels.shape[-2], height)).transpose(-1, -2)
    return pixels.to(torch.uint8)


@dataclass(frozen=True)
class ClipImageProcessor:
    shortest_edge: int
    crop_height: int
    crop_width: int
    rescale_factor: float
    normalization: ClipNormalization

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> ClipImageProcessor:
        """A saved ``CLIPImageProcessor`` (``preprocessor_config.json``) of the settings diffusers gives one."""
        config = json.loads((Path(directory) / PREPROCESSOR_CONFIG_FILENAME).read_text())
        steps = ("do_resize", "do_center_crop", "do_rescale", "do_normalize")
        if not all(config.get(step, True) for step in steps) or config.get("resample", _BICUBIC) != _BICUBIC:
            raise ValueError(f"{directory}: only bicubic resize, center crop, rescale and normalisation supported")
        crop = config["crop_size"]
        return cls(
            shortest_edge=int(config["size"]["shortest_edge"]),
            crop_height=int(crop["height"]),
            crop_width=int(crop["width"]),
            rescale_factor=float(config["rescale_factor"]),
            normalization=ClipNormalization.from_pretrained(directory),
        )

    def resized_size(self, height: int, width: int) -> tuple[int, int]:
        """transformers' ``get_resize_output_image_size`` for a shortest edge (no maximum)."""
        short, long = (width, height) if width <= height else (height, width)
        new_long = int(self.shortest_edge * long / short)
        return (new_long, self.shortest_edge) if width <= height else (self.shortest_edge, new_long)

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        """uint8 [H, W, 3] -> float32 [1, 3, crop height, crop width] (the image encoder's pixel_values)."""
        pixels = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
        height, width = self.resized_size(*pixels.shape[1:])
        pixels = pillow_resize(pixels, height, width)
        top, left = (height - self.crop_height) // 2, (width - self.crop_width) // 2
        if top < 0 or left < 0:
            raise ValueError(f"the image resized to {height}x{width} is smaller than the crop")
        pixels = pixels[:, top : top + self.crop_height, left : left + self.crop_width]
        rescaled = (pixels.to(torch.float64) * self.rescale_factor).to(torch.float32)
        return self.normalization(rescaled[None])
