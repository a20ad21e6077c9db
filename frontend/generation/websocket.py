"""WebSocket updates: the in-process pub/sub hub and the client-message protocol of ``/api/v1/ws/generation``.

Every socket has a ``Subscriber``: a small pending-message buffer drained by its own sender task, so
publishing never awaits a socket. Progress messages are coalesced per request (a slow socket gets the latest
progress, not a backlog); terminal and error messages are always kept.

Client messages: ``{"type": "subscribe" | "unsubscribe", "request_id": "..."}``; many subscriptions per
socket. On subscribe the current state is sent at once (a ``progress`` message, or ``completed`` / ``failed``
/ ``cancelled``). Bad messages get ``{"type": "error", "error": {code, message, details}}``; the socket stays
open.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import OrderedDict
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

import msgspec
from litestar import WebSocket
from litestar.exceptions import WebSocketDisconnect

from visualizr.frontend.errors import INVALID_PARAMETERS, VisualizrError
from visualizr.frontend.generation.schemas import ErrorInfo, WsClientMessage, WsError

if TYPE_CHECKING:
    from visualizr.frontend.generation.service import GenerationService

logger = logging.getLogger("visualizr.frontend.ws")

PROGRESS = "progress"
TERMINAL = "terminal"
MAX_PENDING = 512


class Subscriber:
    def __init__(self, max_pending: int = MAX_PENDING) -> None:
        self._pending: OrderedDict[Hashable, str] = OrderedDict()
        self._event = asyncio.Event()
        self._max_pending = max_pending
        self._counter = itertools.count()
        self.closed = False

    def offer(self, key: Hashable, text: str) -> None:
        if self.closed:
            return
        if key in self._pending:
            self._pending[key] = text  # coalesce: keeps its place in line, carries the newest state
        elif len(self._pending) < self._max_pending:
            self._pending[key] = text
        else:
            logger.warning("dropping a websocket message: subscriber has %d pending", len(self._pending))
            return
        self._event.set()

    def offer_unique(self, text: str) -> None:
        self.offer(("unique", next(self._counter)), text)

    async def next(self) -> str:
        while not self._pending:
            self._event.clear()
            await self._event.wait()
        return self._pending.popitem(last=False)[1]

    def close(self) -> None:
        self.closed = True
        self._pending.clear()
        self._event.set()


class GenerationHub:
    def __init__(self) -> None:
        self._subs: dict[str, set[Subscriber]] = {}

    def subscribe(self, request_id: str, subscriber: Subscriber) -> None:
        self._subs.setdefault(request_id, set()).add(subscriber)

    def unsubscribe(self, request_id: str, subscriber: Subscriber) -> None:
        subs = self._subs.get(request_id)
        if subs is not None:
            subs.discard(subscriber)
            if not subs:
                del self._subs[request_id]

    def remove(self, subscriber: Subscriber) -> None:
        for request_id in [rid for rid, subs in self._subs.items() if subscriber in subs]:
            self.unsubscribe(request_id, subscriber)

    def has_subscribers(self, request_id: str) -> bool:
        return bool(self._subs.get(request_id))

    def subscriber_count(self) -> int:
        return len({s for subs in self._subs.values() for s in subs})

    def publish(self, request_id: str, message: msgspec.Struct, *, terminal: bool = False) -> None:
        subs = self._subs.get(request_id)
        if not subs:
            return
        text = msgspec.json.encode(message).decode()
        key = (request_id, TERMINAL if terminal else PROGRESS)
        for subscriber in list(subs):
            subscriber.offer(key, text)
        if terminal:
            self._subs.pop(request_id, None)  # nothing follows a terminal message

    def publish_to(
        self, subscriber: Subscriber, request_id: str, message: msgspec.Struct, *, terminal: bool = False
    ) -> None:
        """One message to one subscriber (the current state sent on subscribe)."""
        text = msgspec.json.encode(message).decode()
        subscriber.offer((request_id, TERMINAL if terminal else PROGRESS), text)


def error_message(code: str, message: str, details: Any = None, request_id: str | None = None) -> str:
    return msgspec.json.encode(
        WsError(
            type="error", error=ErrorInfo(code=code, message=message, details=details), request_id=request_id
        )
    ).decode()


async def run_sender(socket: WebSocket[Any, Any, Any], subscriber: Subscriber) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
        while not subscriber.closed:
            text = await subscriber.next()
            if subscriber.closed:
                return
            await socket.send_text(text)


async def handle_client_message(
    raw: str | bytes | None, subscriber: Subscriber, service: GenerationService
) -> None:
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
    if message.type not in ("subscribe", "unsubscribe"):
        subscriber.offer_unique(
            error_message(
                INVALID_PARAMETERS,
                f"Unknown message type {message.type!r}",
                {"field": "type", "allowed": ["subscribe", "unsubscribe"]},
            )
        )
        return
    if not message.request_id:
        subscriber.offer_unique(
            error_message(INVALID_PARAMETERS, "request_id is required", {"field": "request_id"})
        )
        return
    try:
        if message.type == "subscribe":
            await service.subscribe(message.request_id, subscriber)
        else:
            await service.unsubscribe(message.request_id, subscriber)
    except VisualizrError as exc:
        subscriber.offer_unique(error_message(exc.code, exc.message, exc.details, message.request_id))
