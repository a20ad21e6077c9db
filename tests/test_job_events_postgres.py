"""Two EventRelays on a real PostgreSQL, in one process (the session server; no API): a notice goes from one replica
to the other's subscribers and never back to its own, a message over NOTIFY's limit arrives as a read of the row,
a listener whose connection the server ends reconnects and catches up from the rows of the jobs it watches, and a
stopping replica drains what it holds."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import msgspec
import psycopg

from benchmarks.backing_services import PostgresServer
from visualizr.frontend.generation.reporting.relay import MAX_PAYLOAD_BYTES, EventRelay
from visualizr.frontend.generation.schemas import WsProgress


class Watching:
    """This replica's subscribers as the listener sees them: the jobs watched, and what was delivered."""

    def __init__(self, *request_ids: str) -> None:
        self.request_ids = set(request_ids)
        self.delivered: list[tuple[str, str, bool]] = []

    def deliver(self, request_id: str, text: str, *, terminal: bool) -> None:
        self.delivered.append((request_id, text, terminal))

    def watched(self, request_id: str) -> bool:
        return request_id in self.request_ids

    def subscribed(self) -> list[str]:
        return sorted(self.request_ids)


def row_state(request_id: str) -> WsProgress:
    return WsProgress("progress", request_id, "processing", 50, "frame_generation", 1)


async def read_row(request_id: str) -> tuple[msgspec.Struct, bool]:
    return row_state(request_id), False


async def until(condition: Callable[[], bool], timeout_s: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


def text(message: msgspec.Struct) -> str:
    return msgspec.json.encode(message).decode()


def test_notices_cross_replicas_and_a_listener_catches_up_after_its_connection_is_ended(
    postgres: PostgresServer,
) -> None:
    url = postgres.new_database()
    caught_up = (text(row_state("job-1")), text(row_state("job-2")))

    async def scenario() -> None:
        a, b = EventRelay(url, "replica-a"), EventRelay(url, "replica-b")
        on_a, on_b = Watching("job-1"), Watching("job-1", "job-2")
        tasks = [asyncio.create_task(a.run(on_a, read_row)), asyncio.create_task(b.run(on_b, read_row))]
        try:
            await until(lambda: a.listening and b.listening)
            await until(lambda: len(on_b.delivered) == 2)  # connected: the rows of what it watches
            assert [t for _, t, _ in on_b.delivered] == list(caught_up)
            on_a.delivered.clear()
            on_b.delivered.clear()

            progress = text(WsProgress("progress", "job-1", "processing", 30, "frame_generation", 2))
            a.publish("job-3", text(row_state("job-3")), "p", terminal=False)  # nobody watches it on b
            a.publish("job-1", progress, ("processing", "frame_generation"), terminal=False)
            done = '{"type":"failed","request_id":"job-2","error":{"details":"' + "x" * MAX_PAYLOAD_BYTES + '"}}'
            a.publish("job-2", done, "WsFailed", terminal=True)  # too long to notify: b reads the row
            await until(lambda: len(on_b.delivered) == 2)
            assert on_b.delivered == [("job-1", progress, False), ("job-2", caught_up[1], False)]
            assert on_a.delivered == []  # its own notices are not delivered twice

            with psycopg.connect(url, autocommit=True) as admin:
                ended = admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                    (b.name("listen"),),
                ).fetchall()
            assert ended == [(True,)]
            on_b.delivered.clear()
            await until(lambda: len(on_b.delivered) == 2)  # reconnected: caught up from the rows again
            assert b.listening and [t for _, t, _ in on_b.delivered] == list(caught_up)
            a.publish("job-1", progress, ("processing", "decoding"), terminal=False)
            later = progress.replace("30", "31")
            a.publish("job-1", later, ("processing", "decoding"), terminal=False)  # within the interval: held
            await a.drain()  # a stopping replica sends what it holds, without waiting for the interval
            assert not a._outbox and not a._timers
            await until(lambda: on_b.delivered[-1][1] == later)  # (the first one, unsent yet, may have given way)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(scenario())
