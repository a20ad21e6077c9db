"""Source-image decoding (visualizr.frontend.infra.images): the cheap path (header first, JPEG's scaled
decoding, whole-factor shrinking in stripes) gives what decoding the whole image and resizing it would."""

from __future__ import annotations

import io
import platform

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageOps

from visualizr.frontend.errors import InvalidParametersError
from visualizr.frontend.infra import images as image_input
from visualizr.frontend.infra.memory import return_large_frees_to_the_os


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def pattern(width: int, height: int, mode: str = "RGB", seed: int = 0) -> Image.Image:
    """Smooth ramps plus mild noise: not symmetric, so a wrong rotation or flip shows."""
    channels = len(mode)
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    noise = np.random.default_rng(seed).normal(0, 8, (height, width, channels)).astype(np.float32)
    planes = [x + 0 * y, y + 0 * x, (x + y) / 2, 255 - y + 0 * x][:channels]
    pixels = np.clip(np.stack(planes, axis=-1) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, mode)


def reference(data: bytes, width: int, height: int) -> np.ndarray:
    """The plain way: decode everything, orient, flatten on white, Lanczos-fit."""
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    if image.mode != "RGB":
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")
    return np.asarray(ImageOps.fit(image, (width, height), method=Image.Resampling.LANCZOS), dtype=np.int16)


def fitted(data: bytes, width: int, height: int) -> np.ndarray:
    return np.asarray(image_input.open_image(data).fitted(width, height), dtype=np.int16)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(orientation: int) -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    data = encoded(pattern(60, 40), "PNG", exif=exif.tobytes())
    source = image_input.open_image(data)
    assert source.size == ((40, 60) if orientation >= 5 else (60, 40))
    width, height = source.size
    assert np.array_equal(fitted(data, width, height), reference(data, width, height))  # small: no shortcut taken


def test_large_jpeg_is_decoded_at_reduced_scale() -> None:
    data = encoded(pattern(2048, 1536), "JPEG", quality=95)
    source = image_input.open_image(data)
    out = np.asarray(source.fitted(128, 96), dtype=np.int16)
    assert source.image.size == (512, 384)  # 1/4 scale: still >= REDUCING_GAP x the output
    assert out.shape == (96, 128, 3)
    assert np.abs(out - reference(data, 128, 96)).mean() < 2.0


@pytest.mark.parametrize("rotate", [False, True])
def test_large_transparent_png_is_shrunk_in_stripes(rotate: bool) -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6 if rotate else 1
    data = encoded(pattern(1500, 1001, "RGBA"), "PNG", exif=exif.tobytes())
    shown = (88, 128) if rotate else (128, 88)
    out = fitted(data, *shown)
    assert out.shape == (shown[1], shown[0], 3)
    assert np.abs(out - reference(data, *shown)).mean() < 2.0


def test_stripes_match_shrinking_the_whole_image() -> None:
    image = pattern(700, 333, "RGBA", seed=3)  # neither side a multiple of the factor or the stripe height
    whole = image_input._to_rgb(image).reduce(3)
    assert np.array_equal(np.asarray(image_input._reduced_rgb(image, 3)), np.asarray(whole))


def test_palette_gif_with_transparency_is_flattened_on_white() -> None:
    clear = Image.new("P", (1200, 900), 0)
    clear.putpalette([0, 0, 0] * 256)
    data = encoded(clear, "GIF", transparency=0)
    assert int(fitted(data, 64, 48).min()) == 255


def test_corrupt_pixels_after_a_good_header_name_the_field() -> None:
    data = encoded(pattern(800, 600), "JPEG")
    source = image_input.open_image(data[: len(data) // 3] + bytes(64))  # the header is intact
    with pytest.raises(InvalidParametersError) as caught:
        source.fitted(64, 48)
    assert caught.value.details["field"] == "image"


def test_large_frees_go_back_to_the_os_on_glibc() -> None:
    assert return_large_frees_to_the_os() is (platform.libc_ver()[0] == "glibc")
