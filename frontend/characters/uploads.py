"""``POST /api/v1/characters`` (multipart/form-data) read into a ``CharacterDraft``, every picture decoded and checked
before anything is stored.

Fields: ``name`` (required, 1-100 characters), ``description`` (optional, at most 500), ``character_id`` (optional:
lower-case letters, digits, ``_`` and ``-``, 1-64 characters, not taken; absent: ``char_<hex>``) and ``images``:
one to ``MAX_REFERENCE_IMAGES`` files, each under the from-image route's limits and decoding
(``infra.images``: format, bytes, pixels, EXIF, transparency), stored as PNG no larger than
``REFERENCE_MAX_SIDE`` a side (aspect kept). Empty text fields count as absent (HTML forms send them); unknown and
repeated text fields are INVALID_PARAMETERS naming the field; a bad picture names ``images`` and its ``index``.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from typing import Any, Final

import msgspec
from litestar.datastructures import UploadFile

from visualizr.frontend.errors import InvalidParametersError
from visualizr.frontend.infra import images

MAX_REFERENCE_IMAGES: Final = 4
REFERENCE_MAX_SIDE: Final = 512
MAX_NAME_CHARS: Final = 100
MAX_DESCRIPTION_CHARS: Final = 500
IMAGES_FIELD: Final = "images"
TEXT_FIELDS: Final = ("name", "description", "character_id")
CHARACTER_ID_RE: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


class CharacterDraft(msgspec.Struct, frozen=True):
    character_id: str
    name: str
    description: str
    pictures: tuple[bytes, ...]  # PNG, decoded and re-encoded here


def _invalid(field: str, message: str, **details: object) -> InvalidParametersError:
    return InvalidParametersError(message, {"field": field, **details})


def _text(form: Any, field: str, limit: int) -> str | None:
    values = form.getall(field) if field in form else []
    if len(values) > 1:
        raise _invalid(field, f"{field} is given {len(values)} times", reason="repeated field")
    if not values:
        return None
    if not isinstance(values[0], str):
        raise _invalid(field, f"{field} must be a text field, not a file")
    text = values[0].strip()
    if len(text) > limit:
        raise _invalid(field, f"{field} must be at most {limit} characters", max_length=limit)
    return text or None


def _reference_png(data: bytes) -> bytes:
    source = images.open_image(data)
    width, height = source.size
    scale = min(1.0, REFERENCE_MAX_SIDE / max(width, height))
    size = tuple(max(images.MIN_IMAGE_SIDE, round(side * scale)) for side in (width, height))  # readable again
    return images.png_bytes(source.fitted(size[0], size[1]))


async def _picture(part: UploadFile, index: int) -> bytes:
    try:
        data = await part.read(images.MAX_IMAGE_BYTES + 1)
        images.check_size(len(data))
        return await asyncio.to_thread(_reference_png, data)
    except InvalidParametersError as exc:
        details = exc.details if isinstance(exc.details, dict) else {}
        raise InvalidParametersError(f"images[{index}]: {exc.message}", {**details, "field": IMAGES_FIELD,
                                                                          "index": index}) from None  # fmt: skip
    finally:
        await part.close()


async def read_character_form(form: Any) -> CharacterDraft:
    """The draft of a new character from the parsed form (a Litestar FormMultiDict)."""
    unknown = sorted(set(form) - {*TEXT_FIELDS, IMAGES_FIELD})
    if unknown:
        raise _invalid(unknown[0], f"Unknown field {unknown[0][:40]!r}", known=[*TEXT_FIELDS, IMAGES_FIELD])
    name = _text(form, "name", MAX_NAME_CHARS)
    if name is None:
        raise _invalid("name", "name is required", reason="required")
    description = _text(form, "description", MAX_DESCRIPTION_CHARS) or ""
    character_id = _text(form, "character_id", 64)
    if character_id is not None and not CHARACTER_ID_RE.fullmatch(character_id):
        raise _invalid("character_id", "character_id: use 1-64 lower-case letters, digits, '_' and '-'",
                       value=character_id[:40])  # fmt: skip
    parts = form.getall(IMAGES_FIELD) if IMAGES_FIELD in form else []
    if not 1 <= len(parts) <= MAX_REFERENCE_IMAGES:
        raise _invalid(IMAGES_FIELD, f"give 1 to {MAX_REFERENCE_IMAGES} reference images, got {len(parts)}",
                       count=len(parts), max=MAX_REFERENCE_IMAGES)  # fmt: skip
    if not all(isinstance(p, UploadFile) for p in parts):
        raise _invalid(IMAGES_FIELD, "images must be files")
    pictures = tuple([await _picture(part, index) for index, part in enumerate(parts)])
    return CharacterDraft(character_id or f"char_{secrets.token_hex(6)}", name, description, pictures)
