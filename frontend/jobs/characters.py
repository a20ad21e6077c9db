"""The ``characters`` table (schema version 4): the character registry's rows, and how many videos use each; and
``CharacterBook``, a character and its pictures read back (the registry's domain and the character route use it).

Queries are functions of a ``Connection`` (run them through ``JobStore.run``, one transaction each). A row's
``reference_images`` are object keys in the asset store (``frontend.infra.objects``), stored as a JSON list.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import msgspec

from visualizr.frontend.errors import CharacterNotFoundError
from visualizr.frontend.infra.objects import ObjectStore
from visualizr.frontend.jobs.database import Connection, Row
from visualizr.frontend.jobs.naming import shown
from visualizr.frontend.jobs.record import COMPLETED
from visualizr.frontend.jobs.store import JobStore

_COLUMNS = "character_id, name, description, builtin, reference_images, created_at"


class CharacterRow(msgspec.Struct, frozen=True):
    character_id: str
    name: str
    description: str
    builtin: bool
    reference_images: tuple[str, ...]
    created_at: float


def _decode(row: Row) -> CharacterRow:
    return CharacterRow(
        character_id=row["character_id"],
        name=row["name"],
        description=row["description"],
        builtin=bool(row["builtin"]),
        reference_images=tuple(msgspec.json.decode(row["reference_images"], type=list[str])),
        created_at=float(row["created_at"]),
    )


def insert_character(character: CharacterRow) -> Callable[[Connection], bool]:
    """Insert a character; False (nothing written) when its id is taken."""

    def work(conn: Connection) -> bool:
        result = conn.execute(
            f"INSERT INTO characters ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (character_id) DO NOTHING",
            (
                character.character_id,
                character.name,
                character.description,
                int(character.builtin),
                msgspec.json.encode(list(character.reference_images)).decode(),
                character.created_at,
            ),
        )
        return result.rowcount == 1

    return work


def get_character(character_id: str) -> Callable[[Connection], CharacterRow | None]:
    def query(conn: Connection) -> CharacterRow | None:
        row = conn.execute(f"SELECT {_COLUMNS} FROM characters WHERE character_id = ?", (character_id,)).fetchone()
        return None if row is None else _decode(row)

    return query


def character_page(limit: int, offset: int) -> Callable[[Connection], tuple[list[CharacterRow], int]]:
    """One page of the characters, oldest first (the built-ins lead), and how many there are."""

    def query(conn: Connection) -> tuple[list[CharacterRow], int]:
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM characters ORDER BY created_at, character_id LIMIT ? OFFSET ?", (limit, offset)
        ).fetchall()
        total = conn.execute("SELECT COUNT(*) FROM characters").fetchone()
        return [_decode(r) for r in rows], int(total[0]) if total is not None else 0

    return query


def delete_character(character_id: str) -> Callable[[Connection], CharacterRow | None]:
    """Delete a user's character; returns the row deleted (None: no such user character; built-ins stay)."""

    def work(conn: Connection) -> CharacterRow | None:
        row = conn.execute(
            f"DELETE FROM characters WHERE character_id = ? AND builtin = 0 RETURNING {_COLUMNS}", (character_id,)
        ).fetchone()
        return None if row is None else _decode(row)

    return work


def videos_using(character_ids: Sequence[str]) -> Callable[[Connection], dict[str, int]]:
    """character id -> how many completed videos animate it (ids without any are left out)."""

    def query(conn: Connection) -> dict[str, int]:
        if not character_ids:
            return {}
        marks = ", ".join("?" for _ in character_ids)
        rows = conn.execute(
            f"SELECT character_id, COUNT(*) FROM jobs WHERE character_id IN ({marks}) AND status = ? "
            "GROUP BY character_id",
            (*character_ids, COMPLETED),
        ).fetchall()
        return {str(r[0]): int(r[1]) for r in rows}

    return query


def character_not_found(character_id: str) -> CharacterNotFoundError:
    return CharacterNotFoundError(
        f"Character {shown(character_id)!r} not found", {"field": "character_id", "character_id": shown(character_id)}
    )


class CharacterBook:
    """A registered character and its pictures, read back."""

    def __init__(self, store: JobStore, objects: ObjectStore) -> None:
        self.store = store
        self.objects = objects

    async def resolve(self, character_id: str) -> CharacterRow:
        """The registry's row (CHARACTER_NOT_FOUND when there is none)."""
        row = await self.store.run(get_character(character_id))
        if row is None:
            raise character_not_found(character_id)
        return row

    async def picture(self, character_id: str, number: int) -> bytes:
        """Reference picture ``number`` (1-based) as PNG; CHARACTER_NOT_FOUND for an unknown id or number."""
        row = await self.resolve(character_id)
        found = None
        if 1 <= number <= len(row.reference_images):
            found = await self.objects.get_bytes(row.reference_images[number - 1])
        if found is None:
            raise CharacterNotFoundError(
                f"Character {shown(character_id)!r} has no picture {number}",
                {"character_id": shown(character_id), "picture": number, "pictures": len(row.reference_images)},
            )
        return found
