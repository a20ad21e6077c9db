"""The client-message protocol of ``/api/v1/ws/generation``.

Client messages: ``{"type": "subscribe" | "unsubscribe", "request_id": "..."}``; many subscriptions per socket.
On subscribe the current state is sent at once (a ``progress`` message, or ``completed`` / ``failed`` /
``cancelled``); a subscribe with ``"previews": true`` also gets the job's ``preview`` messages, and
``{"type": "previews"}`` (no request id) says, before submitting, that this socket will want them (a job asks its
pipeline for previews only if such a socket is open when it starts). Bad messages get
``{"type": "error", "error": {code, message, details}}``; the socket stays open.
"""

from __future__ import annotations

import contextlib
from typing import Any, Protocol

import msgspec
from litestar import WebSocket
from litestar.exceptions import WebSocketDisconnect

from visualizr.frontend.errors import INVALID_PARAMETERS, ErrorInfo, VisualizrError
from visualizr.frontend.generation.reporting.hub import Subscriber
from visualizr.frontend.generation.schemas import WsClientMessage, WsError


class Subscriptions(Protocol):
    """What the protocol needs of the generation service."""

    async def subscribe(self, request_id: str, subscriber: Subscriber, previews: bool = False) -> None: ...

    async def unsubscribe(self, request_id: str, subscriber: Subscriber) -> None: ...

    def want_previews(self, subscriber: Subscriber) -> None: ...


def error_message(code: str, message: str, details: Any = None, request_id: str | None = None) -> str:
    return msgspec.json.encode(
        WsError(type="error", error=ErrorInfo(code=code, message=message, details=details), request_id=request_id)
    ).decode()


async def run_sender(socket: WebSocket[Any, Any, Any], subscriber: Subscriber) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
        while not subscriber.closed:
            text = await subscriber.next()
            if subscriber.closed:
                return
            await socket.send_text(text)


async def handle_client_message(raw: str | bytes | None, subscriber: Subscriber, service: Subscriptions) -> None:
    if raw is None:
        subscriber.offer_unique(error_message(INVALID_PARAMETERS, "Empty message"))
        return
    try:
        message = msgspec.json.decode(raw, type=WsClientMessage)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        subscriber.offer_unique(
            error_message(
                INVALID_PARAMETERS,
                'Messages must be JSON objects like {"type": "subscribe", "request_id": "..."}',
                {"reason": str(exc)},
            )
        )
        return
    if message.type == "previews":
        service.want_previews(subscriber)
        return
    if message.type not in ("subscribe", "unsubscribe"):
        subscriber.offer_unique(
            error_message(
                INVALID_PARAMETERS,
                f"Unknown message type {message.type!r}",
                {"field": "type", "allowed": ["subscribe", "unsubscribe", "previews"]},
            )
        )
        return
    if not message.request_id:
        subscriber.offer_unique(error_message(INVALID_PARAMETERS, "request_id is required", {"field": "request_id"}))
        return
    try:
        if message.type == "subscribe":
            await service.subscribe(message.request_id, subscriber, previews=message.previews)
        else:
            await service.unsubscribe(message.request_id, subscriber)
    except VisualizrError as exc:
        subscriber.offer_unique(error_message(exc.code, exc.message, exc.details, message.request_id))
