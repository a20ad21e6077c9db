"""HTTP and WebSocket routes of generation: text-to-video, image-to-video, character animation; status, cancel."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import msgspec
from litestar import Controller, Request, WebSocket, delete, get, post, websocket
from litestar.datastructures import UploadFile
from litestar.exceptions import ClientException, WebSocketDisconnect
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.openapi.spec import Parameter, Schema
from litestar.openapi.spec.enums import OpenAPIType
from litestar.params import ParamType
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED

from visualizr.frontend.errors import InvalidParametersError
from visualizr.frontend.generation.character_request import validate_character_request
from visualizr.frontend.generation.from_image import split_form, validate_image_request
from visualizr.frontend.generation.hub import Subscriber
from visualizr.frontend.generation.idempotency import HEADER as IDEMPOTENCY_HEADER
from visualizr.frontend.generation.idempotency import MAX_KEY_CHARS, IdempotencyClaim
from visualizr.frontend.generation.image_input import FIELD as IMAGE_FIELD
from visualizr.frontend.generation.image_input import MAX_IMAGE_BYTES
from visualizr.frontend.generation.schemas import (
    CHARACTER_ANIMATION_EXAMPLE,
    GENERATE_VIDEO_EXAMPLE,
    IMAGE_TO_VIDEO_EXAMPLE,
    CancelResponse,
    CharacterAnimationRequest,
    CharacterAnimationResponse,
    GenerateVideoRequest,
    GenerateVideoResponse,
    ImageToVideoForm,
    JobStatus,
)
from visualizr.frontend.generation.service import GenerationService
from visualizr.frontend.generation.validation import decode_request, decode_struct, validate_request
from visualizr.frontend.generation.websocket import handle_client_message, run_sender
from visualizr.frontend.openapi import documented_body
from visualizr.frontend.paths import WS_PATH

MULTIPART = "multipart/form-data"
FORM_TYPES = (MULTIPART, "application/x-www-form-urlencoded")  # the latter cannot carry the image: 400 naming it
FORM_OVERHEAD_BYTES = 1024 * 1024  # the text fields and part headers around the image
IDEMPOTENCY = (
    Parameter(
        name=IDEMPOTENCY_HEADER,
        param_in=ParamType.HEADER,
        required=False,
        schema=Schema(type=OpenAPIType.STRING, min_length=1, max_length=MAX_KEY_CHARS),
        description="Send the same request again with the same key: the first job is returned, nothing is queued",
    ),
)


async def read_form(request: Request[Any, Any, Any]) -> dict[str, list[Any]]:
    """The multipart form as ``{name: [values]}``; every way it can be malformed is INVALID_PARAMETERS."""
    if request.content_type[0] not in FORM_TYPES:
        raise InvalidParametersError(
            f"Send the request as {MULTIPART}", {"field": None, "content_type": request.content_type[0]}
        )
    try:
        form = await request.form()
    except RequestEntityTooLarge:
        raise InvalidParametersError(
            f"Request body too large: the image may be at most {MAX_IMAGE_BYTES // (1024 * 1024)} MB",
            {"field": "image", "max_bytes": MAX_IMAGE_BYTES},
        ) from None
    except (ClientException, UnicodeDecodeError) as exc:
        reason = exc.detail if isinstance(exc, ClientException) else "a text field is not UTF-8"
        raise InvalidParametersError(f"Malformed multipart body: {reason}", {"field": None, "reason": reason}) from None
    return form.dict()


def claim_of(request: Request[Any, Any, Any], *parts: bytes) -> IdempotencyClaim | None:
    """The request's idempotency claim: its ``Idempotency-Key`` header and a fingerprint of what it sent."""
    return IdempotencyClaim.of(request.headers.get(IDEMPOTENCY_HEADER), request.url.path, parts)


def canonical(body: bytes) -> bytes:
    """A JSON body with its keys sorted, so the same request always has the same fingerprint."""
    return msgspec.json.encode(msgspec.json.decode(body), order="sorted")


class GenerationController(Controller):
    path = "/api/v1/generate"
    tags = ["generation"]

    @post(
        "/video",
        status_code=HTTP_202_ACCEPTED,
        operation_class=documented_body(GenerateVideoRequest, example=GENERATE_VIDEO_EXAMPLE, headers=IDEMPOTENCY),
    )
    async def generate_video(
        self, request: Request[Any, Any, Any], service: GenerationService
    ) -> GenerateVideoResponse:
        """Queue a text-to-video job. Body: GenerateVideoRequest (JSON); absent fields take card defaults. An
        ``Idempotency-Key`` header makes a repeated request return the first job.

        The body is decoded here (not by Litestar) so every error names its field in our error body.
        """
        body = await request.body()
        validated = validate_request(decode_request(body), service.catalog)
        return await service.submit(validated, claim_of(request, canonical(body)))

    @post(
        "/video/from-image",
        status_code=HTTP_202_ACCEPTED,
        request_max_body_size=MAX_IMAGE_BYTES + FORM_OVERHEAD_BYTES,
        operation_class=documented_body(
            ImageToVideoForm,
            files=(IMAGE_FIELD,),
            required_files=(IMAGE_FIELD,),
            example=IMAGE_TO_VIDEO_EXAMPLE,
            headers=IDEMPOTENCY,
        ),
    )
    async def generate_video_from_image(
        self, request: Request[Any, Any, Any], service: GenerationService
    ) -> GenerateVideoResponse:
        """Queue an image-to-video job. Body: multipart/form-data with the ``image`` file and the text fields
        of ImageToVideoForm (``motion_prompt``, ``duration_seconds``, ``fps``, ``motion_strength``, ...)."""
        form = await read_form(request)
        try:
            image_part, fields = split_form(form)
            async with service.image_slots:  # decoding is what takes memory: a few at a time
                validated = await validate_image_request(image_part, fields, service.catalog)
        finally:
            for values in form.values():
                for value in values:
                    if isinstance(value, UploadFile):
                        await value.close()
        claim = claim_of(request, msgspec.json.encode(fields, order="sorted"), validated.source_png or b"")
        return await service.submit(validated, claim)

    @post(
        "/character-animation",
        status_code=HTTP_202_ACCEPTED,
        operation_class=documented_body(
            CharacterAnimationRequest, example=CHARACTER_ANIMATION_EXAMPLE, headers=IDEMPOTENCY
        ),
    )
    async def generate_character_animation(
        self, request: Request[Any, Any, Any], service: GenerationService
    ) -> CharacterAnimationResponse:
        """Queue a character animation. Body: CharacterAnimationRequest (JSON); the prompt is composed from the
        character catalogue (``generation.characters``)."""
        raw = await request.body()
        body = decode_struct(raw, CharacterAnimationRequest)
        validated = validate_character_request(body, service.catalog)
        accepted = await service.submit(validated, claim_of(request, canonical(raw)))
        return CharacterAnimationResponse(
            request_id=accepted.request_id,
            status=accepted.status,
            character_id=body.character_id or "",
            estimated_time_seconds=accepted.estimated_time_seconds,
            created_at=accepted.created_at,
        )

    @get("/status/{request_id:str}")
    async def get_status(self, request_id: str, service: GenerationService) -> JobStatus:
        return await service.get_status(request_id)

    @delete("/{request_id:str}", status_code=HTTP_200_OK)
    async def cancel(self, request_id: str, service: GenerationService) -> CancelResponse:
        return await service.cancel(request_id)


@websocket(WS_PATH)
async def generation_updates(socket: WebSocket[Any, Any, Any], service: GenerationService) -> None:
    await socket.accept()
    service.telemetry.websocket_connected()
    hub = service.hub
    subscriber = Subscriber()
    sender = asyncio.create_task(run_sender(socket, subscriber))
    try:
        while True:
            event = await socket.receive()
            if event["type"] != "websocket.receive":
                break
            raw = event.get("text")
            if raw is None:
                raw = event.get("bytes")
            await handle_client_message(raw, subscriber, service)
    except WebSocketDisconnect:
        pass
    finally:
        service.telemetry.websocket_disconnected()
        hub.remove(subscriber)
        subscriber.close()
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sender
