"""The in-process pub/sub hub of job updates.

Every WebSocket has a ``Subscriber``: a small pending-message buffer drained by its own sender task, so
publishing never awaits a socket. Progress messages are coalesced per request (a slow socket gets the latest
progress, not a backlog); terminal and error messages are always kept. With several API replicas on PostgreSQL the
hub publishes through an ``EventRelay`` too (``relay.py``) and delivers what the other replicas publish.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import OrderedDict
from collections.abc import Hashable

import msgspec

from visualizr.frontend.generation.reporting.relay import EventRelay
from visualizr.frontend.generation.schemas import WsProgress

logger = logging.getLogger("visualizr.frontend.ws")

PROGRESS = "progress"
PREVIEW = "preview"
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
    """Job updates to WebSocket subscribers: this replica's, and, given an ``EventRelay`` (PostgreSQL), every other
    replica's through it; what other replicas publish arrives through ``deliver``."""

    def __init__(self, relay: EventRelay | None = None) -> None:
        self._relay = relay
        self._subs: dict[str, dict[Subscriber, bool]] = {}  # request id -> subscriber -> nothing sent to it yet
        self._previews: dict[str, set[Subscriber]] = {}  # request id -> subscribers that asked for its previews
        self._preview_sockets: set[Subscriber] = set()  # open sockets that have asked for previews

    def subscribe(self, request_id: str, subscriber: Subscriber, *, previews: bool = False) -> None:
        self._subs.setdefault(request_id, {})[subscriber] = True  # a resubscription gets the state again
        if previews:
            self._previews.setdefault(request_id, set()).add(subscriber)
            self._preview_sockets.add(subscriber)

    def unsubscribe(self, request_id: str, subscriber: Subscriber) -> None:
        subs = self._subs.get(request_id)
        if subs is not None:
            subs.pop(subscriber, None)
            if not subs:
                del self._subs[request_id]
        watchers = self._previews.get(request_id)
        if watchers is not None:
            watchers.discard(subscriber)
            if not watchers:
                del self._previews[request_id]

    def remove(self, subscriber: Subscriber) -> None:
        self._preview_sockets.discard(subscriber)
        for request_id in [rid for rid, subs in self._subs.items() if subscriber in subs]:
            self.unsubscribe(request_id, subscriber)

    def subscribed(self) -> list[str]:
        """The request ids someone here subscribes to."""
        return list(self._subs)

    def has_subscribers(self, request_id: str) -> bool:
        """Whether anyone may listen: a subscriber here, or on any replica when updates are relayed."""
        return self._relay is not None or self.watched(request_id)

    def watched(self, request_id: str) -> bool:
        """Whether this replica has subscribers of the job."""
        return bool(self._subs.get(request_id))

    def publish(self, request_id: str, message: msgspec.Struct, *, terminal: bool = False) -> None:
        text = msgspec.json.encode(message).decode()
        self.deliver(request_id, text, terminal=terminal)
        if self._relay is not None:
            self._relay.publish(request_id, text, phase_of(message), terminal=terminal)

    def deliver(self, request_id: str, text: str, *, terminal: bool) -> None:
        """One update to this replica's subscribers of the job (nothing follows a terminal one)."""
        subs = self._subs.pop(request_id, None) if terminal else self._subs.get(request_id)
        if terminal:
            self._previews.pop(request_id, None)
        if not subs:
            return
        key = (request_id, TERMINAL if terminal else PROGRESS)
        for subscriber in list(subs):
            subs[subscriber] = False
            subscriber.offer(key, text)

    def want_previews(self, subscriber: Subscriber) -> None:
        """An open socket that will want previews (of the jobs it is about to submit and subscribe to)."""
        self._preview_sockets.add(subscriber)

    def wants_previews(self, request_id: str) -> bool:
        """Whether a job starting here should ask its pipeline for previews: a subscriber here asked for the job's,
        or an open socket here has asked for previews (it may subscribe to the job once its 202 arrives)."""
        return bool(self._previews.get(request_id) or self._preview_sockets)

    def publish_preview(self, request_id: str, message: msgspec.Struct) -> None:
        """A live preview to this replica's subscribers that asked for the job's previews (never relayed: see
        docs/ARCHITECTURE.md); a slow socket gets the newest one."""
        watchers = self._previews.get(request_id)
        if not watchers:
            return
        text = msgspec.json.encode(message).decode()
        for subscriber in list(watchers):
            subscriber.offer((request_id, PREVIEW), text)

    def catch_up(self, subscriber: Subscriber, request_id: str, message: msgspec.Struct, *, terminal: bool) -> None:
        """The job's state read after ``subscribe``, to that subscriber, unless an update reached it meanwhile
        (newer, or as new: an update is published after its write)."""
        subs = self._subs.get(request_id)
        if subs is None or not subs.get(subscriber):
            return
        if terminal:
            self.unsubscribe(request_id, subscriber)
        else:
            subs[subscriber] = False
        subscriber.offer((request_id, TERMINAL if terminal else PROGRESS), msgspec.json.encode(message).decode())


def phase_of(message: msgspec.Struct) -> Hashable:
    """What makes an update a phase change for the relay's throttle: a progress message's status and step."""
    return (message.status, message.current_step) if isinstance(message, WsProgress) else type(message).__name__
