"""Wire types of the character registry (msgspec Structs)."""

from __future__ import annotations

import msgspec


class Character(msgspec.Struct):
    character_id: str
    name: str
    description: str
    builtin: bool  # a built-in character (drawn by the export): it cannot be deleted
    reference_image_urls: list[str]  # served by the API: GET /api/v1/characters/{id}/images/{n}
    video_count: int  # completed videos that animate it (deleted videos are not counted)
    created_at: str


class CharacterList(msgspec.Struct):
    characters: list[Character]
    total_count: int
    has_more: bool


class DeleteCharacterResponse(msgspec.Struct):
    character_id: str
    status: str
    deleted_at: str
