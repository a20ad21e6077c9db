"""Test images."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def gradient_image(height: int = 64, width: int = 64) -> np.ndarray:
    """uint8 [height, width, 3]: red grows to the right, green downwards."""
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[..., 0] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
    pixels[..., 1] = np.linspace(0, 255, height, dtype=np.uint8)[:, None]
    pixels[..., 2] = 96
    return pixels


def gradient_png(invert: bool = False) -> bytes:
    pixels = gradient_image()
    if invert:
        pixels = 255 - pixels
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()
