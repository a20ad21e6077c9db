"""The built-in characters' reference pictures, drawn offline (nothing downloaded): shapes and colours per character
with Pillow, the same bytes every build. ``python -m visualizr.export`` writes them into
``<repository>/.characters/<character_id>_<n>.png``; the API registers them at start (``frontend.characters``).

Each picture is a ``PICTURE_SIZE`` square: a background, a body, a head with eyes and one feature of the character
(antennas, beard, glasses, ears ...); the second picture of a character shows it turned and on another background.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Final

from PIL import Image, ImageDraw

from visualizr.export.files import write_if_changed

PICTURES_DIRNAME: Final = ".characters"
PICTURE_SIZE: Final = 256

Colour = tuple[int, int, int]

# character id -> (body colour, head colour, eye colour, feature)
_LOOKS: Final[dict[str, tuple[Colour, Colour, Colour, str]]] = {
    "assistant": ((240, 240, 245), (250, 250, 252), (60, 140, 255), "halo"),
    "robot": ((150, 155, 165), (175, 180, 190), (255, 200, 40), "antennas"),
    "narrator": ((110, 85, 60), (230, 190, 160), (50, 40, 30), "beard"),
    "teacher": ((60, 150, 80), (235, 200, 170), (40, 60, 90), "glasses"),
    "mascot": ((240, 120, 30), (245, 140, 50), (20, 20, 20), "ears"),
}
_BACKGROUNDS: Final[tuple[Colour, Colour]] = ((200, 225, 245), (235, 225, 200))


def picture_name(character_id: str, index: int) -> str:
    return f"{character_id}_{index + 1}.png"


def _feature(draw: ImageDraw.ImageDraw, feature: str, head: tuple[int, int, int, int], colour: Colour) -> None:
    left, top, right, bottom = head
    middle = (left + right) // 2
    if feature == "halo":
        draw.ellipse((left + 10, top - 22, right - 10, top - 8), outline=(120, 190, 255), width=4)
    elif feature == "antennas":
        for x in (left + 18, right - 18):
            draw.line((x, top, x - 6 if x < middle else x + 6, top - 28), fill=(90, 90, 100), width=4)
            draw.ellipse((x - 12 if x < middle else x, top - 36, x if x < middle else x + 12, top - 24), fill=colour)
    elif feature == "beard":
        draw.pieslice((left + 8, bottom - 40, right - 8, bottom + 24), 0, 180, fill=(160, 160, 160))
    elif feature == "glasses":
        for x in (middle - 20, middle + 20):
            draw.ellipse((x - 14, top + 30, x + 14, top + 52), outline=(30, 30, 30), width=3)
    elif feature == "ears":
        for x in (left + 4, right - 4):
            draw.polygon([(x - 16, top + 14), (x + 16, top + 14), (x, top - 30)], fill=colour)


def draw_picture(character_id: str, index: int) -> Image.Image:
    """Picture ``index`` (0 or 1) of a built-in character, as RGB."""
    body, head_colour, eyes, feature = _LOOKS[character_id]
    image = Image.new("RGB", (PICTURE_SIZE, PICTURE_SIZE), _BACKGROUNDS[index % len(_BACKGROUNDS)])
    draw = ImageDraw.Draw(image)
    shift = 0 if index == 0 else 28  # the second picture: turned to one side
    centre = PICTURE_SIZE // 2 + shift
    draw.rounded_rectangle((centre - 60, 150, centre + 60, PICTURE_SIZE + 20), radius=30, fill=body)
    head = (centre - 50, 50, centre + 50, 150)
    draw.ellipse(head, fill=head_colour, outline=tuple(c // 2 for c in head_colour), width=2)
    for x in (centre - 20 + shift // 4, centre + 20 + shift // 4):
        draw.ellipse((x - 8, 86, x + 8, 102), fill=eyes)
    draw.arc((centre - 22, 105, centre + 22, 132), 20, 160, fill=(80, 40, 40), width=3)
    _feature(draw, feature, head, body)
    if character_id == "mascot":
        draw.rectangle((centre - 60, 150, centre + 60, 166), fill=(200, 30, 40))  # the striped scarf
        draw.rectangle((centre - 60, 158, centre + 60, 162), fill=(250, 250, 250))
    return image


def picture_png(character_id: str, index: int) -> bytes:
    buffer = io.BytesIO()
    draw_picture(character_id, index).save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def builtin_ids() -> list[str]:
    return list(_LOOKS)


def write_builtin_pictures(repository: Path, pictures_each: int = 2) -> list[Path]:
    """Write every built-in character's pictures into the repository; returns the files it (re)wrote."""
    written = []
    for character_id in _LOOKS:
        for index in range(pictures_each):
            path = repository / PICTURES_DIRNAME / picture_name(character_id, index)
            if write_if_changed(path, picture_png(character_id, index)):
                written.append(path)
    return written
