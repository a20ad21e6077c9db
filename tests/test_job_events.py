"""Job events between replicas, the pure parts: the notice payload, the progress throttle, the hub's catch-up on
subscription and its delivery of what other replicas relay (the relay over a real PostgreSQL:
tests/test_job_events_postgres.py; two API replicas: tests/test_integration_replica_events.py)."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from tests.support.fakes import pending
from visualizr.frontend.errors import ErrorInfo
from visualizr.frontend.generation.reporting.hub import GenerationHub, Subscriber, phase_of
from visualizr.frontend.generation.reporting.relay import (
    MAX_PAYLOAD_BYTES,
    PRUNE_AT,
    EventRelay,
    Notice,
    Throttle,
    decode_notice,
    encode_notice,
)
from visualizr.frontend.generation.schemas import WsCompleted, WsFailed, WsProgress


def progress(request_id: str, percent: int, step: str = "frame_generation") -> WsProgress:
    return WsProgress("progress", request_id, "processing", percent, step, 3)


def failed(request_id: str, details: str) -> WsFailed:
    return WsFailed("failed", request_id, ErrorInfo("GENERATION_FAILED", "Video generation failed", details))


def test_a_notice_carries_the_message_and_where_it_came_from() -> None:
    text = msgspec.json.encode(progress("job-1", 40)).decode()
    notice = decode_notice(encode_notice("replica-a", "job-1", text, terminal=False))
    assert notice is not None and notice.origin == "replica-a" and notice.request_id == "job-1"
    assert notice.terminal is False and notice.text == text


def test_a_message_too_long_for_notify_goes_as_its_job_id_only() -> None:
    text = msgspec.json.encode(failed("job-2", "é" * MAX_PAYLOAD_BYTES)).decode()
    payload = encode_notice("replica-a", "job-2", text, terminal=True)
    assert len(payload.encode()) <= MAX_PAYLOAD_BYTES  # bytes, not characters: the limit is PostgreSQL's
    notice = decode_notice(payload)
    assert notice == Notice("replica-a", "job-2", True, notice.message) and notice.text is None
    fits = msgspec.json.encode(failed("job-2", "e" * 7000)).decode()
    assert decode_notice(encode_notice("replica-a", "job-2", fits, terminal=True)).text == fits  # type: ignore[union-attr]


@pytest.mark.parametrize("payload", ["", "not json", '{"origin": 1}', "[]"])
def test_a_malformed_notice_is_ignored(payload: str) -> None:
    assert decode_notice(payload) is None


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_progress_is_throttled_per_job_and_the_newest_held_one_follows() -> None:
    clock = Clock()
    throttle = Throttle(0.25, clock)
    phase = ("processing", "frame_generation")
    assert throttle.offer("a", phase, "a10", terminal=False) == ("a10", 0.0)
    clock.t += 0.1
    assert throttle.offer("a", phase, "a20", terminal=False) == (None, pytest.approx(0.15))
    assert throttle.offer("b", phase, "b10", terminal=False) == ("b10", 0.0)  # another job: its own interval
    clock.t += 0.05
    assert throttle.offer("a", phase, "a30", terminal=False) == (None, pytest.approx(0.1))  # replaces a20
    clock.t += 0.1
    assert throttle.release("a") == "a30"
    assert throttle.release("a") is None  # nothing held
    clock.t += 0.1
    assert throttle.offer("a", phase, "a40", terminal=False) == (None, pytest.approx(0.15))  # from the release
    clock.t += 0.2
    assert throttle.offer("a", phase, "a50", terminal=False) == ("a50", 0.0)  # the interval has passed
    assert throttle.release("a") is None  # a50 went out instead of a40


def test_phase_changes_and_terminal_messages_are_never_held() -> None:
    clock = Clock()
    throttle = Throttle(0.25, clock)
    assert throttle.offer("a", ("processing", "frame_generation"), "p1", terminal=False)[0] == "p1"
    assert throttle.offer("a", ("processing", "frame_generation"), "p2", terminal=False)[0] is None
    assert throttle.offer("a", ("processing", "decoding"), "d", terminal=False)[0] == "d"
    assert throttle.offer("a", ("processing", "decoding"), "d2", terminal=False)[0] is None
    assert throttle.offer("a", "WsCompleted", "done", terminal=True) == ("done", 0.0)
    assert throttle.release("a") is None  # the held progress died with the terminal message


def test_the_throttle_forgets_jobs_whose_interval_is_over() -> None:
    clock = Clock()
    throttle = Throttle(0.25, clock)
    for index in range(PRUNE_AT - 1):  # jobs whose terminal notice this replica never sees
        throttle.offer(f"job-{index}", "p", "x", terminal=False)
    clock.t += 1.0
    assert throttle.offer("held", "p", "x", terminal=False) == ("x", 0.0)
    assert throttle.offer("held", "p", "y", terminal=False)[0] is None  # the remembered count reached PRUNE_AT
    assert set(throttle._sent) == {"held"} and throttle.release("held") == "y"
    assert throttle.offer("job-1", "p", "z", terminal=False) == ("z", 0.0)  # forgotten: as if new


def test_the_phase_of_a_message_is_its_status_and_step() -> None:
    assert phase_of(progress("a", 10)) == phase_of(progress("a", 50)) != phase_of(progress("a", 90, "decoding"))
    assert phase_of(WsCompleted("completed", "a", None)) != phase_of(progress("a", 90))  # type: ignore[arg-type]


def test_the_state_read_on_subscribe_is_sent_unless_an_update_came_first() -> None:
    hub = GenerationHub()
    quiet, busy = Subscriber(), Subscriber()
    hub.subscribe("a", quiet)
    hub.subscribe("a", busy)
    hub.unsubscribe("a", quiet)
    hub.subscribe("a", quiet)
    hub.deliver("b", "{}", terminal=False)  # another job's update reaches neither
    hub.catch_up(quiet, "a", progress("a", 10), terminal=False)
    assert [m["progress"] for m in pending(quiet)] == [10]
    hub.deliver("a", msgspec.json.encode(progress("a", 30)).decode(), terminal=False)  # while busy's read ran
    hub.catch_up(busy, "a", progress("a", 10), terminal=False)  # read before that update: not sent
    assert [m["progress"] for m in pending(busy)] == [30]


def test_a_terminal_state_ends_the_subscription_once() -> None:
    hub = GenerationHub()
    early, late = Subscriber(), Subscriber()
    hub.subscribe("a", early)
    hub.deliver("a", msgspec.json.encode(WsCompleted("completed", "a", None)).decode(), terminal=True)  # type: ignore[arg-type]
    hub.catch_up(early, "a", progress("a", 90), terminal=False)  # the stale read after the terminal update
    assert [m["type"] for m in pending(early)] == ["completed"]
    hub.subscribe("a", late)
    hub.catch_up(late, "a", WsCompleted("completed", "a", None), terminal=True)  # type: ignore[arg-type]
    hub.deliver("a", "{}", terminal=False)
    assert [m["type"] for m in pending(late)] == ["completed"] and not hub.watched("a")


def unsent(relay: EventRelay) -> list[tuple[str, str, int | None]]:
    """(request id, type, progress) of each notice in the relay's outbox, in order."""
    messages = [msgspec.json.decode(decode_notice(payload).text or "") for payload in relay._outbox.values()]  # type: ignore[union-attr]
    return [(m["request_id"], m["type"], m.get("progress")) for m in messages]


def test_updates_are_relayed_with_anyone_listening_and_delivered_here_too() -> None:
    async def scenario() -> None:
        relay = EventRelay("postgresql://unused", "replica-a", Throttle(60.0))
        hub = GenerationHub(relay)
        assert hub.has_subscribers("nobody-here")  # another replica may be listening
        assert not GenerationHub().has_subscribers("nobody-here")
        here = Subscriber()
        hub.subscribe("a", here)
        hub.publish("a", progress("a", 10))
        hub.publish("a", progress("a", 20))  # held by the throttle, delivered here at once
        hub.publish("b", progress("b", 5))
        assert unsent(relay) == [("a", "progress", 10), ("b", "progress", 5)]
        hub.publish("a", WsCompleted("completed", "a", None), terminal=True)  # type: ignore[arg-type]
        assert msgspec.json.decode(await here.next())["progress"] == 20  # coalesced here
        assert msgspec.json.decode(await here.next())["type"] == "completed"
        # a's unsent progress gave way to its terminal notice; b's keeps its place
        assert unsent(relay) == [("b", "progress", 5), ("a", "completed", None)]

    asyncio.run(scenario())
