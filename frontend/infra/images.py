"""Uploaded pictures (image-to-video source images, characters' reference pictures): decode, crop and resize.

Blocking (Pillow): call these through ``asyncio.to_thread``.

* Accepted: PNG, JPEG, WebP, GIF (its first frame), at most ``MAX_IMAGE_BYTES`` and ``MAX_IMAGE_SIDE`` pixels a
  side (``MAX_IMAGE_PIXELS`` in all), checked from the header before any pixel is decoded. EXIF orientation is
  applied; transparency is flattened onto white.
* The output size is the caller's (image-to-video: ``generation.intake.from_image.output_size``). The image is
  centre-cropped to the output aspect and resized with Lanczos, so the stored file is exactly width x height.
* Memory: the output size is decided from the header (``open_image``), then ``SourceImage.fitted`` decodes only
  what it needs: a JPEG at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling) when that still leaves ``REDUCING_GAP``
  times the output size, other formats in full, then shrunk by a whole factor in stripes, so one full-size copy
  exists at most (the route bounds how many decodes run at once).
* The fitted image is stored with the job as PNG (``visualizr.frontend.jobs.files``) until the job ends.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Iterator
from typing import Final

from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from visualizr.frontend.errors import InvalidParametersError

MAX_IMAGE_BYTES: Final = 20 * 1024 * 1024
MAX_IMAGE_SIDE: Final = 8192
MAX_IMAGE_PIXELS: Final = 4096 * 4096  # ~50 MB decoded: what two concurrent decodes may hold
MIN_IMAGE_SIDE: Final = 8
FORMATS: Final = ("PNG", "JPEG", "WEBP", "GIF")
FIELD: Final = "image"
# Shrink by whole factors (and JPEG's scaled decoding) only down to this many times the output size, so the
# final Lanczos resize still sees enough pixels to be as good as one from the full image.
REDUCING_GAP: Final = 3
_STRIPE_PIXELS: Final = 1 << 20
_TRANSPOSE: Final = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_SIDES: Final = (
    Image.Transpose.TRANSPOSE,
    Image.Transpose.ROTATE_270,
    Image.Transpose.TRANSVERSE,
    Image.Transpose.ROTATE_90,
)


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


class SourceImage:
    """An upload opened from its header only: format, size and EXIF orientation known, no pixel decoded yet."""

    def __init__(self, image: Image.Image) -> None:
        self.image = image
        self.transpose = _TRANSPOSE.get(image.getexif().get(ExifTags.Base.Orientation, 1))

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) as shown, EXIF orientation applied."""
        width, height = self.image.size
        return (height, width) if self.transpose in _SWAPS_SIDES else (width, height)

    def fitted(self, width: int, height: int) -> Image.Image:
        """The image as RGB of exactly width x height (see the module's docstring); reads the pixels."""
        with _decoding():
            shown_w, shown_h = self.size
            scale = max(width / shown_w, height / shown_h)  # the crop that covers the output, at output scale
            needed = tuple(max(1, math.ceil(scale * side * REDUCING_GAP)) for side in self.size)
            if self.transpose in _SWAPS_SIDES:
                needed = needed[::-1]  # in the file's own orientation
            image = self.image
            image.draft(None, needed)  # JPEG: decoded at 1/2, 1/4 or 1/8 scale when that still covers ``needed``
            image.seek(0)
            image.load()
            factor = max(1, min(image.size[0] // needed[0], image.size[1] // needed[1]))
            image = _reduced_rgb(image, factor)
        if self.transpose is not None:
            image = image.transpose(self.transpose)
        return ImageOps.fit(image, (width, height), method=Image.Resampling.LANCZOS, centering=(0.5, 0.5))


@contextlib.contextmanager
def _decoding() -> Iterator[None]:
    """Pillow's errors on a bad file as INVALID_PARAMETERS naming ``image``."""
    try:
        yield
    except UnidentifiedImageError:
        raise _bad_image(
            f"image is not a readable {', '.join(FORMATS)} file", reason="unrecognised format", formats=FORMATS
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        raise _bad_image(f"image could not be decoded: {exc}", reason="corrupt image") from None


def open_image(data: bytes) -> SourceImage:
    """The upload, opened from its header and checked in bytes and pixels before any pixel is decoded."""
    check_size(len(data))
    with _decoding():
        image = Image.open(io.BytesIO(data), formats=FORMATS)
        _check_dimensions(*image.size)
        return SourceImage(image)


def _reduced_rgb(image: Image.Image, factor: int) -> Image.Image:
    """RGB (transparency flattened on white), shrunk ``factor`` times by box averaging. Done in stripes, so the
    decoded image is the only full-size copy: converting it whole would take two or three more."""
    if factor == 1:
        return _to_rgb(image)
    width, height = image.size
    reduced = Image.new("RGB", (-(-width // factor), -(-height // factor)))
    rows = factor * max(1, _STRIPE_PIXELS // (width * factor))
    for top in range(0, height, rows):
        stripe = _to_rgb(image.crop((0, top, width, min(height, top + rows))))
        reduced.paste(stripe.reduce(factor), (0, top // factor))
    return reduced


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(flat, rgba).convert("RGB")
    return image.convert("RGB")


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
