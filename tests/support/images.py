"""Test images."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def gradient_png(invert: bool = False) -> bytes:
    pixels = np.zeros((64, 64, 3), dtype=np.uint8)
    pixels[..., 0] = np.linspace(0, 255, 64, dtype=np.uint8)[None, :]
    pixels[..., 1] = np.linspace(0, 255, 64, dtype=np.uint8)[:, None]
    pixels[..., 2] = 96
    if invert:
        pixels = 255 - pixels
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()
