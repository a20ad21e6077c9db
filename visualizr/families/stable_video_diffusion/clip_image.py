"""The image encoder's input, made as diffusers' ``StableVideoDiffusionPipeline`` makes it: the image resized to the
encoder's square with antialiasing (diffusers' ``_resize_with_antialiasing``: a Gaussian blur, then bicubic
interpolation), then CLIP-normalised with the mean and std of the exported ``feature_extractor/`` (what its
CLIPImageProcessor does with resizing, cropping and rescaling turned off).

Written with torch alone, so that the pipeline model's stub imports neither diffusers' pipelines and models nor
transformers; a test holds both steps to the originals, bit for bit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F  # noqa: N812

PREPROCESSOR_CONFIG_FILENAME = "preprocessor_config.json"


def resize_with_antialiasing(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """[B, C, H, W] -> [B, C, *size]: a Gaussian blur per axis, of sigma (old size / new size - 1) / 2 (at least
    0.001), then bicubic interpolation with aligned corners."""
    height, width = images.shape[-2:]
    sigma_y, sigma_x = (max((old / new - 1.0) / 2.0, 0.001) for old, new in zip((height, width), size, strict=True))
    blurred = _gaussian_blur(_gaussian_blur(images, sigma_x, horizontal=True), sigma_y, horizontal=False)
    return F.interpolate(blurred, size=size, mode="bicubic", align_corners=True)


def _gaussian_blur(images: torch.Tensor, sigma: float, horizontal: bool) -> torch.Tensor:
    """One axis of the blur: an odd kernel of 4 sigma (at least 3) taps over the reflect-padded images."""
    taps = int(max(4.0 * sigma, 3)) | 1
    offsets = torch.arange(taps, dtype=images.dtype) - taps // 2
    kernel = torch.exp(-offsets.pow(2.0) / (2 * torch.tensor(sigma, dtype=images.dtype).pow(2.0)))
    kernel = kernel / kernel.sum()
    channels, radius = images.shape[1], taps // 2
    shape, padding = ((1, taps), [radius, radius, 0, 0]) if horizontal else ((taps, 1), [0, 0, radius, radius])
    weight = kernel.reshape(1, 1, *shape).repeat(channels, 1, 1, 1)
    return F.conv2d(F.pad(images, padding, mode="reflect"), weight, groups=channels)


@dataclass(frozen=True)
class ClipNormalization:
    """(pixels - mean) / std per channel, for pixels in [0, 1]."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> ClipNormalization:
        """The exported image processor's ``image_mean`` and ``image_std``."""
        config = json.loads((Path(directory) / PREPROCESSOR_CONFIG_FILENAME).read_text())
        return cls(tuple(config["image_mean"]), tuple(config["image_std"]))

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """float32 [B, C, H, W] -> float32, normalised."""
        mean, std = (torch.tensor(v, dtype=torch.float32, device=images.device).reshape(1, -1, 1, 1)
                     for v in (self.mean, self.std))
        return (images.to(torch.float32) - mean) / std
