"""HTTP routes of the character registry (``/api/v1/characters``) and its reference pictures."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.params import Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from visualizr.frontend.bodies import FORM_OVERHEAD_BYTES, read_form
from visualizr.frontend.characters.schemas import Character, CharacterList, DeleteCharacterResponse
from visualizr.frontend.characters.service import CharacterService
from visualizr.frontend.characters.uploads import MAX_REFERENCE_IMAGES, read_character_form
from visualizr.frontend.infra.images import MAX_IMAGE_BYTES
from visualizr.frontend.jobs.characters import CharacterBook
from visualizr.frontend.jobs.listing import DEFAULT_LIMIT

MAX_LIMIT = 100
MAX_OFFSET = 2**31 - 1


class CharactersController(Controller):
    path = "/api/v1/characters"
    tags = ["characters"]

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        request_max_body_size=MAX_REFERENCE_IMAGES * MAX_IMAGE_BYTES + FORM_OVERHEAD_BYTES,
        before_request=read_form,
    )
    async def create_character(self, request: Request[Any, Any, Any], characters: CharacterService) -> Character:
        """Register a character. Body: multipart/form-data with ``name``, optional ``description`` and
        ``character_id``, and one to four ``images`` files (the from-image route's limits)."""
        return await characters.create(await read_character_form(await request.form()))

    @get("/")
    async def list_characters(
        self,
        characters: CharacterService,
        limit: int = Parameter(query="limit", default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
        offset: int = Parameter(query="offset", default=0, ge=0, le=MAX_OFFSET),
    ) -> CharacterList:
        """The characters by creation time (the built-ins first)."""
        return await characters.list(limit, offset)

    @get("/{character_id:str}")
    async def get_character(self, character_id: str, characters: CharacterService) -> Character:
        return await characters.get(character_id)

    @get("/{character_id:str}/images/{number:int}", media_type="image/png")
    async def get_character_picture(self, character_id: str, number: int, book: CharacterBook) -> Response[bytes]:
        """Reference picture ``number`` (from 1) of a character, PNG."""
        png = await book.picture(character_id, number)
        return Response(png, media_type="image/png", headers={"cache-control": "private, max-age=3600"})

    @delete("/{character_id:str}", status_code=HTTP_200_OK)
    async def delete_character(self, character_id: str, characters: CharacterService) -> DeleteCharacterResponse:
        """Delete a user's character and its pictures; videos made with it keep working. Built-ins stay."""
        return await characters.delete(character_id)
