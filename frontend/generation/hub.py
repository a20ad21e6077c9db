"""The in-process pub/sub hub of job updates.

Every WebSocket has a ``Subscriber``: a small pending-message buffer drained by its own sender task, so
publishing never awaits a socket. Progress messages are coalesced per request (a slow socket gets the latest
progress, not a backlog); terminal and error messages are always kept.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import OrderedDict
from collections.abc import Hashable

import msgspec

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

    def subscribed(self) -> list[str]:
        """The request ids someone here subscribes to."""
        return list(self._subs)

    def has_subscribers(self, request_id: str) -> bool:
        return bool(self._subs.get(request_id))

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
