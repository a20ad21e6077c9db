"""HTTP and WebSocket routes of generation: text-to-video, image-to-video, character animation; status, cancel."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, WebSocket, delete, get, post, websocket
from litestar.datastructures import ResponseHeader, UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions import WebSocketDisconnect
from litestar.openapi.spec import Example
from litestar.params import Body
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED

from visualizr.frontend.bodies import FORM_OVERHEAD_BYTES, BodyDTO, read_form
from visualizr.frontend.generation.intake.character_request import validate_character_request
from visualizr.frontend.generation.intake.from_image import validate_image_request
from visualizr.frontend.generation.intake.idempotency import IdempotencyClaim, KeyHeader
from visualizr.frontend.generation.intake.validation import validate_request
from visualizr.frontend.generation.reporting.hub import Subscriber
from visualizr.frontend.generation.reporting.quote import quote
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
    QuoteResponse,
)
from visualizr.frontend.generation.service import GenerationService
from visualizr.frontend.generation.websocket import handle_client_message, run_sender
from visualizr.frontend.infra.images import MAX_IMAGE_BYTES
from visualizr.frontend.jobs.characters import CharacterBook
from visualizr.frontend.paths import WS_PATH
from visualizr.frontend.webhooks.service import Webhooks

REPLICA_HEADER = "X-Visualizr-Job-Replica"

# The bodies, decoded by BodyDTO and documented with an example the demo model accepts (fuzzers vary it field by
# field, so they reach past validation).
VideoBody = Annotated[GenerateVideoRequest, Body(examples=[Example(value=GENERATE_VIDEO_EXAMPLE)])]
CharacterBody = Annotated[CharacterAnimationRequest, Body(examples=[Example(value=CHARACTER_ANIMATION_EXAMPLE)])]
ImageForm = Annotated[
    ImageToVideoForm, Body(media_type=RequestEncodingType.MULTI_PART, examples=[Example(value=IMAGE_TO_VIDEO_EXAMPLE)])
]


def claim_of(request: Request[Any, Any, Any], key: str | None, *parts: bytes) -> IdempotencyClaim | None:
    """The request's idempotency claim: its ``Idempotency-Key`` and a fingerprint of what it sent."""
    return IdempotencyClaim.of(key, request.url.path, parts)


def fingerprint(data: msgspec.Struct) -> bytes:
    """The decoded fields of a body, files left out, in a fixed order."""
    fields = msgspec.structs.asdict(data)
    texts = {name: value for name, value in fields.items() if not isinstance(value, UploadFile)}
    return msgspec.json.encode(texts, order="sorted")


class GenerationController(Controller):
    path = "/api/v1/generate"
    tags = ["generation"]

    @post("/video", status_code=HTTP_202_ACCEPTED, dto=BodyDTO[GenerateVideoRequest])
    async def generate_video(
        self,
        request: Request[Any, Any, Any],
        data: VideoBody,
        service: GenerationService,
        webhooks: Webhooks,
        idempotency_key: KeyHeader = None,
    ) -> GenerateVideoResponse:
        """Queue a text-to-video job. Body: GenerateVideoRequest (JSON); absent fields take card defaults. An
        ``Idempotency-Key`` header makes a repeated request return the first job."""
        validated = validate_request(data, service.catalog)
        webhook = await webhooks.policy.target(data.webhook_url, data.webhook_events)
        return await service.submit(validated, claim_of(request, idempotency_key, fingerprint(data)), webhook)

    @post("/quote", status_code=HTTP_200_OK, dto=BodyDTO[GenerateVideoRequest])
    async def quote_video(self, data: VideoBody, service: GenerationService) -> QuoteResponse:
        """What ``POST /video`` with this body would get now, without creating a job: queue position, predicted
        wait and run seconds, frames, whether it fits the model's limits and memory (``fits: false`` names the
        field and the limit). Same body and 400s as ``POST /video``."""
        return await quote(data, service.catalog, service.gate, service.standing)

    @post(
        "/video/from-image",
        status_code=HTTP_202_ACCEPTED,
        request_max_body_size=2 * MAX_IMAGE_BYTES + FORM_OVERHEAD_BYTES,  # the image and an end image
        dto=BodyDTO[ImageToVideoForm],
        before_request=read_form,
    )
    async def generate_video_from_image(
        self,
        request: Request[Any, Any, Any],
        data: ImageForm,
        service: GenerationService,
        webhooks: Webhooks,
        idempotency_key: KeyHeader = None,
    ) -> GenerateVideoResponse:
        """Queue an image-to-video job. Body: multipart/form-data with the ``image`` file and the text fields
        of ImageToVideoForm (``motion_prompt``, ``duration_seconds``, ``fps``, ``motion_strength``, ...)."""
        webhook = await webhooks.policy.target(data.webhook_url, data.webhook_events)
        try:
            async with service.image_slots:  # decoding is what takes memory: a few at a time
                validated = await validate_image_request(data, service.catalog)
        finally:
            await data.image.close()
            if data.end_image is not None:
                await data.end_image.close()
        pictures = (validated.source_png or b"") + (validated.end_png or b"")
        claim = claim_of(request, idempotency_key, fingerprint(data), pictures)
        return await service.submit(validated, claim, webhook)

    @post("/character-animation", status_code=HTTP_202_ACCEPTED, dto=BodyDTO[CharacterAnimationRequest])
    async def generate_character_animation(
        self,
        request: Request[Any, Any, Any],
        data: CharacterBody,
        service: GenerationService,
        book: CharacterBook,
        webhooks: Webhooks,
        idempotency_key: KeyHeader = None,
    ) -> CharacterAnimationResponse:
        """Queue a character animation. Body: CharacterAnimationRequest (JSON); the character comes from the
        registry (``/api/v1/characters``), its first reference picture conditions the video where the model can."""
        validated = await validate_character_request(data, service.catalog, book)
        webhook = await webhooks.policy.target(data.webhook_url, data.webhook_events)
        accepted = await service.submit(validated, claim_of(request, idempotency_key, fingerprint(data)), webhook)
        return CharacterAnimationResponse(
            request_id=accepted.request_id,
            status=accepted.status,
            character_id=data.character_id or "",
            estimated_time_seconds=accepted.estimated_time_seconds,
            created_at=accepted.created_at,
        )

    @get(
        "/status/{request_id:str}",
        response_headers=[
            ResponseHeader(
                name=REPLICA_HEADER,
                description="The API replica (VISUALIZR_REPLICA_ID) that runs the job, or ran it last; absent "
                "before it first starts",
                documentation_only=True,
            )
        ],
    )
    async def get_status(self, request_id: str, service: GenerationService, webhooks: Webhooks) -> Response[JobStatus]:
        status, replica = await service.get_status(request_id)
        status = await webhooks.with_deliveries(status)
        return Response(status, headers={REPLICA_HEADER: replica} if replica else None)

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
