"""HTTP and WebSocket routes of text-to-video generation."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from litestar import Controller, Request, WebSocket, delete, get, post, websocket
from litestar.exceptions import WebSocketDisconnect
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED

from frontend.generation.schemas import CancelResponse, GenerateVideoResponse, JobStatus
from frontend.generation.service import GenerationService
from frontend.generation.validation import decode_request, validate_request
from frontend.generation.websocket import GenerationHub, Subscriber, handle_client_message, run_sender

WS_PATH = "/api/v1/ws/generation"


class GenerationController(Controller):
    path = "/api/v1/generate"
    tags = ["generation"]

    @post("/video", status_code=HTTP_202_ACCEPTED)
    async def generate_video(
        self, request: Request[Any, Any, Any], service: GenerationService
    ) -> GenerateVideoResponse:
        """Queue a text-to-video job. Body: GenerateVideoRequest (JSON); absent fields take card defaults.

        The body is decoded here (not by Litestar) so every error names its field in our error body.
        """
        validated = validate_request(decode_request(await request.body()), service.catalog)
        return await service.submit(validated)

    @get("/status/{request_id:str}")
    async def get_status(self, request_id: str, service: GenerationService) -> JobStatus:
        return await service.get_status(request_id)

    @delete("/{request_id:str}", status_code=HTTP_200_OK)
    async def cancel(self, request_id: str, service: GenerationService) -> CancelResponse:
        return await service.cancel(request_id)


@websocket(WS_PATH)
async def generation_updates(socket: WebSocket[Any, Any, Any], service: GenerationService) -> None:
    await socket.accept()
    hub: GenerationHub = service.hub
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
        hub.remove(subscriber)
        subscriber.close()
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sender
