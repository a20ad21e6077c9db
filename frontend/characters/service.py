"""The character registry: rows in the job store (``jobs.characters``), reference pictures in the asset store under
``characters/<character_id>/<token>_<n>.png``, served back by the API (``reference_url``).

* Built-ins: at start every id of ``builtins`` (``generation.intake.characters.CHARACTERS``) is registered (name =
  id, description = its appearance) with the pictures the export drew into ``<repository>/.characters``; an existing
  row is kept. They cannot be deleted (400 INVALID_PARAMETERS naming ``character_id``).
* Create: the draft's pictures are all decoded before anything is written (``uploads``); then the objects are put,
  then the row inserted; a failure on the way (the id taken meanwhile, a store or database error) deletes the
  objects put: nothing is half-stored.
* Delete: the row first (of two concurrent deletes one wins), then its pictures. Videos made keep their files, and
  jobs in the queue their own copy of the picture (``inputs/``).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path

from visualizr.frontend import clock
from visualizr.frontend.characters.schemas import Character, CharacterList, DeleteCharacterResponse
from visualizr.frontend.characters.uploads import CharacterDraft
from visualizr.frontend.errors import InvalidParametersError
from visualizr.frontend.infra.objects import ObjectStoreError
from visualizr.frontend.jobs import characters as table
from visualizr.frontend.jobs.characters import CharacterBook, CharacterRow

logger = logging.getLogger("visualizr.frontend.characters")

KEY_PREFIX = "characters"
URL_PREFIX = "/api/v1/characters"
DELETED = "deleted"
BUILTIN_TOKEN = "builtin"


def picture_keys(character_id: str, count: int, token: str) -> list[str]:
    """Object keys of a character's pictures; ``token`` keeps two creates racing for one id apart."""
    return [f"{KEY_PREFIX}/{character_id}/{token}_{index + 1}.png" for index in range(count)]


def reference_url(character_id: str, index: int) -> str:
    return f"{URL_PREFIX}/{character_id}/images/{index + 1}"


class CharacterService:
    def __init__(
        self,
        book: CharacterBook,
        builtins: Mapping[str, str],
        pictures_dir: Path,
        *,
        now: Callable[[], float] = clock.now,
    ) -> None:
        """``builtins``: id -> description of the built-in characters, whose pictures are in ``pictures_dir``."""
        self.book = book
        self.store, self.objects = book.store, book.objects
        self.builtins = builtins
        self.pictures_dir = Path(pictures_dir)
        self._now = now

    async def register_builtins(self) -> None:
        """The built-in characters, each with the pictures the export drew (a missing one is logged, not fatal)."""
        for character_id, description in self.builtins.items():
            files = sorted(self.pictures_dir.glob(f"{character_id}_*.png"))
            if not files:
                logger.warning("no pictures of the built-in character %r in %s", character_id, self.pictures_dir)
            keys = picture_keys(character_id, len(files), BUILTIN_TOKEN)
            try:
                for key, path in zip(keys, files, strict=True):
                    await self.objects.put_bytes(key, path.read_bytes())  # the same bytes every build
            except ObjectStoreError as exc:  # the bucket is down: the API still starts (put again at the next start)
                logger.warning("could not store the pictures of the built-in character %r: %s", character_id, exc)
            row = CharacterRow(character_id, character_id, description, True, tuple(keys), 0.0)
            await self.store.run(table.insert_character(row))

    async def create(self, draft: CharacterDraft) -> Character:
        if await self.store.run(table.get_character(draft.character_id)) is not None:
            raise self._taken(draft.character_id)
        keys = picture_keys(draft.character_id, len(draft.pictures), secrets.token_hex(4))
        row = CharacterRow(draft.character_id, draft.name, draft.description, False, tuple(keys), self._now())
        put: list[str] = []
        try:
            for key, png in zip(keys, draft.pictures, strict=True):
                put.append(key)
                await self.objects.put_bytes(key, png)
            if not await self.store.run(table.insert_character(row)):  # created by another request meanwhile
                raise self._taken(draft.character_id)
        except BaseException:
            await self._forget(put)
            raise
        return self._wire(row, 0)

    async def _forget(self, keys: list[str]) -> None:
        try:
            await self.objects.delete(keys)
        except Exception as exc:  # the store failed on the way: what it still holds is logged
            logger.warning("could not delete the pictures %s of a refused character: %s", keys, exc)

    def _taken(self, character_id: str) -> InvalidParametersError:
        return InvalidParametersError(
            f"character_id {character_id!r} is taken", {"field": "character_id", "value": character_id}
        )

    async def get(self, character_id: str) -> Character:
        row = await self.book.resolve(character_id)
        counts = await self.store.run(table.videos_using([character_id]))
        return self._wire(row, counts.get(character_id, 0))

    async def list(self, limit: int, offset: int) -> CharacterList:
        rows, total = await self.store.run(table.character_page(limit, offset))
        counts = await self.store.run(table.videos_using([r.character_id for r in rows]))
        listed = [self._wire(r, counts.get(r.character_id, 0)) for r in rows]
        return CharacterList(characters=listed, total_count=total, has_more=offset + len(rows) < total)

    async def delete(self, character_id: str) -> DeleteCharacterResponse:
        deleted = await self.store.run(table.delete_character(character_id))
        if deleted is None:
            row = await self.book.resolve(character_id)  # CHARACTER_NOT_FOUND, or a built-in
            raise InvalidParametersError(
                f"Character {row.character_id!r} is built in and cannot be deleted",
                {"field": "character_id", "value": row.character_id, "reason": "built-in"},
            )
        await self.objects.delete(deleted.reference_images)
        return DeleteCharacterResponse(character_id, DELETED, clock.iso(self._now()) or "")

    def _wire(self, row: CharacterRow, video_count: int) -> Character:
        return Character(
            character_id=row.character_id,
            name=row.name,
            description=row.description,
            builtin=row.builtin,
            reference_image_urls=[reference_url(row.character_id, i) for i in range(len(row.reference_images))],
            video_count=video_count,
            created_at=clock.iso(row.created_at) or "",
        )
