"""Job events across API replicas: PostgreSQL LISTEN/NOTIFY behind the ``GenerationHub``.

What one replica publishes goes to the others as a ``Notice`` on ``CHANNEL`` (its WebSocket message as raw JSON,
or none when it would pass PostgreSQL's 8000-byte limit: receivers read the job's row then). Progress is throttled
per job (``Throttle``); phase changes and terminal messages always go. Two connections of their own: one sends, one
listens (psycopg holds a connection while it waits for notifications). Both reconnect with a bounded backoff; a
listener that (re)connects catches up by reading the row of every job it has subscribers for, since notifications
are not replayed. docs/ARCHITECTURE.md says why this is not Litestar's channels plugin.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Protocol

import msgspec

from visualizr.backoff import ExponentialBackoff

logger = logging.getLogger("visualizr.frontend.ws")

CHANNEL = "visualizr_job_events"
MAX_PAYLOAD_BYTES = 7999  # PostgreSQL refuses a NOTIFY payload of 8000 bytes or more
PROGRESS_INTERVAL_S = 0.25  # per job, between two progress notices of one phase
RECONNECT = ExponentialBackoff(first_s=0.25, max_s=5.0)
PRUNE_AT = 1024  # jobs the throttle remembers before it forgets those that no longer matter
BATCH = 500  # notices sent in one round trip
DRAIN_S = 1.0  # how long a stopping replica waits for its last notices to go
SEND = "SELECT pg_notify(%s, payload) FROM unnest(%s::text[]) AS payload"  # in the array's order
CONNECT_TIMEOUT_S = 5
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3}


NO_MESSAGE = msgspec.Raw(b"null")  # msgspec takes no Raw in a union: a JSON null says "read the row"


class Notice(msgspec.Struct, frozen=True):
    """One job update between replicas: who sent it, which job, and its WebSocket message (null: read the row)."""

    origin: str
    request_id: str
    terminal: bool = False
    message: msgspec.Raw = NO_MESSAGE

    @property
    def text(self) -> str | None:
        raw = bytes(self.message)
        return None if raw in (b"", b"null") else raw.decode()


def encode_notice(origin: str, request_id: str, text: str, *, terminal: bool) -> str:
    """The NOTIFY payload of one message: the message itself when it fits, else only the job's id."""
    payload = msgspec.json.encode(Notice(origin, request_id, terminal, msgspec.Raw(text.encode())))
    if len(payload) > MAX_PAYLOAD_BYTES:
        payload = msgspec.json.encode(Notice(origin, request_id, terminal))
    return payload.decode()


def decode_notice(payload: str) -> Notice | None:
    try:
        return msgspec.json.decode(payload, type=Notice)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        logger.warning("ignoring a malformed job notice on %s: %s", CHANNEL, exc)
        return None


class Throttle:
    """Which notices of a job go out now: terminal ones and phase changes always, others at most once every
    ``interval_s``; the newest held one is due when its interval ends (``release``)."""

    def __init__(self, interval_s: float = PROGRESS_INTERVAL_S, now: Callable[[], float] = time.monotonic) -> None:
        self.interval_s, self._now = interval_s, now
        self._sent: dict[str, tuple[float, Hashable]] = {}  # request id -> (when its last notice went, its phase)
        self._held: dict[str, str] = {}
        self._prune_at = PRUNE_AT

    def offer(self, request_id: str, phase: Hashable, payload: str, *, terminal: bool) -> tuple[str | None, float]:
        """(the payload to send now or None, seconds until the held one is due: 0 when none is held)."""
        if terminal:
            self._sent.pop(request_id, None)
            self._held.pop(request_id, None)
            return payload, 0.0
        now = self._now()
        if len(self._sent) >= self._prune_at:
            self._prune(now)
        last = self._sent.get(request_id)
        if last is None or last[1] != phase or now - last[0] >= self.interval_s:
            self._sent[request_id] = (now, phase)
            self._held.pop(request_id, None)
            return payload, 0.0
        self._held[request_id] = payload
        return None, last[0] + self.interval_s - now

    def _prune(self, now: float) -> None:
        """Forget jobs whose interval is over and hold nothing (their terminal notice may come from another
        replica): the next notice of one goes at once either way."""
        for request_id, (sent_at, _) in list(self._sent.items()):
            if now - sent_at >= self.interval_s and request_id not in self._held:
                del self._sent[request_id]
        self._prune_at = max(PRUNE_AT, 2 * len(self._sent))

    def release(self, request_id: str) -> str | None:
        """The held payload of a job, now due (None when a newer one went out meanwhile)."""
        payload = self._held.pop(request_id, None)
        if payload is not None:
            self._sent[request_id] = (self._now(), self._sent[request_id][1])
        return payload


class LocalSubscribers(Protocol):
    """What the listener needs of the hub: deliver to this replica's subscribers only."""

    def deliver(self, request_id: str, text: str, *, terminal: bool) -> None: ...

    def watched(self, request_id: str) -> bool: ...

    def subscribed(self) -> list[str]: ...


CurrentUpdate = Callable[[str], Awaitable[tuple[msgspec.Struct, bool]]]  # a job's message from its row, terminal?


class EventRelay:
    """This replica's end of ``CHANNEL``: ``publish`` queues notices for the sending connection; ``run`` sends and
    listens until cancelled."""

    def __init__(self, url: str, origin: str, throttle: Throttle | None = None) -> None:
        self.url, self.origin = url, origin
        self.throttle = throttle or Throttle()
        self.listening = False
        self._outbox: OrderedDict[tuple[str, bool], str] = OrderedDict()  # (request id, terminal) -> its newest
        self._ready = asyncio.Event()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._reads: set[asyncio.Task[None]] = set()

    def name(self, what: str) -> str:
        """The application_name of one of its connections (pg_stat_activity shows who listens)."""
        return f"visualizr job events: {what} ({self.origin})"[:63]

    def publish(self, request_id: str, text: str, phase: Hashable, *, terminal: bool) -> None:
        payload = encode_notice(self.origin, request_id, text, terminal=terminal)
        now, wait = self.throttle.offer(request_id, phase, payload, terminal=terminal)
        if now is not None:
            self._send(request_id, payload, terminal)
            timer = self._timers.pop(request_id, None)
            if timer is not None:
                timer.cancel()
        elif request_id not in self._timers:
            self._timers[request_id] = asyncio.get_running_loop().call_later(wait, self._release, request_id)

    def _release(self, request_id: str) -> None:
        self._timers.pop(request_id, None)
        payload = self.throttle.release(request_id)
        if payload is not None:
            self._send(request_id, payload, False)

    def _send(self, request_id: str, payload: str, terminal: bool) -> None:
        """Into the outbox: a job's newer progress replaces its unsent one in place; its terminal notice ends it."""
        if terminal:
            self._outbox.pop((request_id, False), None)
        self._outbox[(request_id, terminal)] = payload
        self._ready.set()

    async def drain(self, timeout_s: float = DRAIN_S) -> None:
        """Send what is pending, held progress too, for at most ``timeout_s`` (a stopping replica's last updates)."""
        for request_id in list(self._timers):
            self._timers[request_id].cancel()
            self._release(request_id)
        deadline = time.monotonic() + timeout_s
        while self._outbox and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    async def run(self, hub: LocalSubscribers, current: CurrentUpdate) -> None:
        """Send and listen, each on its connection, reconnecting, until cancelled."""
        try:
            await asyncio.gather(self._keep(self._sending, "send"), self._keep(self._listening, "listen", hub, current))
        finally:
            for timer in self._timers.values():
                timer.cancel()

    async def _keep(self, session: Callable[..., Awaitable[None]], what: str, *args: Any) -> None:
        """``session(connection, *args)`` on a fresh connection whenever the last one failed (bounded backoff)."""
        import psycopg

        failures = 0
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S, application_name=self.name(what),
                    **KEEPALIVES,
                ) as conn:
                    failures = 0
                    await session(conn, *args)
            except Exception as exc:  # the database (psycopg.Error, OSError) or a bug: either way, start again
                failures += 1
                delay = RECONNECT.delay(failures)
                logger.warning("job events (%s): %s; reconnecting in %.2f s", what, str(exc).strip(), delay)
                await asyncio.sleep(delay)

    async def _sending(self, conn: Any) -> None:
        """Send the outbox in order, up to ``BATCH`` notices a statement. When the connection is lost, terminal
        notices wait for the next one; progress is dropped (stale by then: listeners catch up from the rows)."""
        import psycopg

        while True:
            while not self._outbox:
                self._ready.clear()
                await self._ready.wait()
            batch = list(itertools.islice(self._outbox.items(), BATCH))
            try:
                await conn.execute(SEND, (CHANNEL, [payload for _, payload in batch]))
            except (psycopg.DataError, psycopg.ProgrammingError) as exc:
                logger.warning("dropping %d job notice(s) the database refuses: %s", len(batch), exc)
            except psycopg.Error:
                for key in [key for key in self._outbox if not key[1]]:
                    del self._outbox[key]
                raise
            for key, payload in batch:
                if self._outbox.get(key) is payload:  # not replaced by a newer one meanwhile
                    del self._outbox[key]

    async def _listening(self, conn: Any, hub: LocalSubscribers, current: CurrentUpdate) -> None:
        await conn.execute(f"LISTEN {CHANNEL}")
        self.listening = True
        try:
            await catch_up(hub, current, hub.subscribed())
            async for notify in conn.notifies():
                self._receive(notify.payload, hub, current)
        finally:
            self.listening = False

    def _receive(self, payload: str, hub: LocalSubscribers, current: CurrentUpdate) -> None:
        notice = decode_notice(payload)
        if notice is None or notice.origin == self.origin or not hub.watched(notice.request_id):
            return
        text = notice.text
        if text is not None:
            hub.deliver(notice.request_id, text, terminal=notice.terminal)
            return
        read = asyncio.create_task(catch_up(hub, current, [notice.request_id]))  # too long to notify: the row
        self._reads.add(read)
        read.add_done_callback(self._reads.discard)


async def catch_up(hub: LocalSubscribers, current: CurrentUpdate, request_ids: list[str]) -> None:
    """Deliver each job's state read from its row to its local subscribers (after a reconnect: what was missed)."""
    for request_id in request_ids:
        try:
            message, terminal = await current(request_id)
        except Exception as exc:  # gone, or the database is down again: the next reconnect tries again
            logger.debug("cannot catch up on %s: %s", request_id, exc)
            continue
        hub.deliver(request_id, msgspec.json.encode(message).decode(), terminal=terminal)
