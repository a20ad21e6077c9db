"""Source images of image-to-video jobs: decode an upload, fit the output size, crop and resize.

Blocking (Pillow): call these through ``asyncio.to_thread``.

* Accepted: PNG, JPEG, WebP, GIF (its first frame), at most ``MAX_IMAGE_BYTES`` and ``MAX_IMAGE_SIDE`` pixels a
  side (``MAX_IMAGE_PIXELS`` in all), checked from the header before any pixel is decoded. EXIF orientation is
  applied; transparency is flattened onto white.
* The default output size keeps the image's aspect ratio inside the card's default size, in multiples of the
  pixel step, within the card's limits. The image is then centre-cropped to the output aspect and resized
  with Lanczos, so the stored file is exactly width x height.
* The fitted image is stored with the job as PNG (``visualizr.frontend.jobs.files``) until the job ends.
"""

from __future__ import annotations

import io
from typing import Final

from PIL import Image, ImageOps, UnidentifiedImageError

from visualizr.frontend.errors import InvalidParametersError
from visualizr.frontend.generation.validation import default_of, size_limits
from visualizr.model_card import ModelCard

MAX_IMAGE_BYTES: Final = 20 * 1024 * 1024
MAX_IMAGE_SIDE: Final = 8192
MAX_IMAGE_PIXELS: Final = 4096 * 4096  # ~50 MB decoded: what two concurrent decodes may hold
MIN_IMAGE_SIDE: Final = 8
FORMATS: Final = ("PNG", "JPEG", "WEBP", "GIF")
FIELD: Final = "image"


def _bad_image(message: str, **details: object) -> InvalidParametersError:
    return InvalidParametersError(message, {"field": FIELD, **details})


def check_size(size: int) -> None:
    if size == 0:
        raise _bad_image("image is empty", reason="empty file")
    if size > MAX_IMAGE_BYTES:
        raise _bad_image(
            f"image is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB", max_bytes=MAX_IMAGE_BYTES, size=size
        )


def _check_dimensions(width: int, height: int) -> None:
    sides_ok = min(width, height) >= MIN_IMAGE_SIDE and max(width, height) <= MAX_IMAGE_SIDE
    if not sides_ok or width * height > MAX_IMAGE_PIXELS:
        raise _bad_image(
            f"image is {width}x{height}; each side must be {MIN_IMAGE_SIDE} to {MAX_IMAGE_SIDE} pixels "
            f"and the whole at most {MAX_IMAGE_PIXELS} pixels",
            width=width,
            height=height,
            min_side=MIN_IMAGE_SIDE,
            max_side=MAX_IMAGE_SIDE,
            max_pixels=MAX_IMAGE_PIXELS,
        )


def decode_image(data: bytes) -> Image.Image:
    """The upload as an RGB image (first frame); INVALID_PARAMETERS naming ``image`` for anything else."""
    check_size(len(data))
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)  # reads the header only
        _check_dimensions(*image.size)  # before any pixel is decoded
        image.seek(0)
        image.load()
        image = ImageOps.exif_transpose(image)
    except UnidentifiedImageError:
        raise _bad_image(
            f"image is not a readable {', '.join(FORMATS)} file", reason="unrecognised format", formats=FORMATS
        ) from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise _bad_image(f"image could not be decoded: {exc}", reason="corrupt image") from None
    return _to_rgb(image)


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(flat, rgba).convert("RGB")
    return image.convert("RGB")


def _fit(value: float, limits: tuple[int, int, int]) -> int:
    low, high, step = limits
    return min(high, max(low, round(value / step) * step))


def output_size(card: ModelCard, image_size: tuple[int, int], width: int | None, height: int | None) -> tuple[int, int]:
    """(width, height) of the video: given sizes as they are (validated later against the card); a missing
    one follows the image's aspect ratio; both missing fit the image inside the card's default size."""
    image_w, image_h = image_size
    aspect = image_w / image_h
    w_limits, h_limits = size_limits(card, "width"), size_limits(card, "height")
    if width is not None and height is not None:
        return width, height
    if width is not None:
        return width, _fit(width / aspect, h_limits)
    if height is not None:
        return _fit(height * aspect, w_limits), height
    box_w, box_h = float(default_of(card, "width")), float(default_of(card, "height"))
    scale = min(box_w / image_w, box_h / image_h)
    return _fit(image_w * scale, w_limits), _fit(image_h * scale, h_limits)


def fit_image(image: Image.Image, width: int, height: int) -> Image.Image:
    """Centre-crop to the aspect of width x height, then resize (Lanczos) to exactly that size."""
    return ImageOps.fit(image, (width, height), method=Image.Resampling.LANCZOS, centering=(0.5, 0.5))


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
