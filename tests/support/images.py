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


def reference_picture(seed: int, height: int = 48, width: int = 80) -> np.ndarray:
    """A drawn reference picture (gradients and a disc), not noise; its size is not the encoder's."""
    y, x = np.mgrid[0:height, 0:width]
    rng = np.random.default_rng(seed)
    cy, cx, radius = rng.integers(8, 40), rng.integers(8, 70), rng.integers(6, 20)
    disc = ((y - cy) ** 2 + (x - cx) ** 2 < radius**2) * rng.integers(60, 200)
    channels = [(x * (3 + seed) + disc) % 256, (y * 5 + disc // 2) % 256, (x + y + 40 * seed + disc) % 256]
    return np.stack(channels, axis=-1).astype(np.uint8)
