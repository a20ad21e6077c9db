"""The webhook sender every replica runs: claims due deliveries from the job store's outbox, POSTs each one's body
(the job's status document, made at the first attempt and kept, so retries resend the same bytes) signed per
Standard Webhooks, and records the attempt; a failure is retried after ``BACKOFF`` until ``webhook_retry_for_s``
after the event, then given up. Redirects are not followed; a response is read up to ``MAX_RESPONSE_BYTES``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final
from urllib.parse import urlsplit

import httpx
import msgspec
from prometheus_client import CollectorRegistry, Counter

from visualizr import __version__
from visualizr.backoff import ExponentialBackoff
from visualizr.frontend import clock
from visualizr.frontend.errors import RequestNotFoundError
from visualizr.frontend.jobs.database import SQLITE
from visualizr.frontend.jobs.record import TERMINAL_STATES
from visualizr.frontend.jobs.store import JobStore
from visualizr.frontend.jobs.webhook_outbox import (
    DELIVERED,
    DROPPED,
    GAVE_UP,
    PENDING,
    PROGRESS,
    Delivery,
    WebhookAttempt,
    claim_due,
    record_attempt,
    release_leases,
)
from visualizr.frontend.webhooks.signing import secret_key, signed_headers
from visualizr.frontend.webhooks.targets import WebhookPolicy
from visualizr.settings import Settings

logger = logging.getLogger("visualizr.frontend.webhooks")

BACKOFF: Final = ExponentialBackoff(first_s=1.0, max_s=300.0)
MAX_RESPONSE_BYTES: Final = 64 * 1024
BATCH: Final = 16  # deliveries one replica claims at once
LEASE_MARGIN_S: Final = 30.0  # beyond the POST's timeout: a replica that died mid-POST is replaced after this
OUTCOMES: Final = (DELIVERED, "retrying", GAVE_UP, DROPPED)

StatusDocument = Callable[[str], Awaitable[tuple[msgspec.Struct, str | None]]]


class WebhookSender:
    def __init__(
        self,
        settings: Settings,
        store: JobStore,
        policy: WebhookPolicy,
        status: StatusDocument,
        registry: CollectorRegistry,
        owner: str,
        *,
        now: Callable[[], float] = clock.now,
    ) -> None:
        self.store, self.policy, self._status, self.owner, self._now = store, policy, status, owner, now
        self.key = secret_key(settings.webhook_secret) if settings.webhook_secret else b""
        self.timeout_s = float(settings.webhook_timeout_s)
        self.retry_for_s = float(settings.webhook_retry_for_s)
        self.poll_s = settings.webhook_poll_ms / 1000
        self.outcomes = Counter(
            "visualizr_webhook_deliveries",
            "Webhook delivery attempts by outcome: delivered, retrying, failed (given up), dropped (the job is gone)",
            ["outcome"],
            registry=registry,
        )
        for outcome in OUTCOMES:
            self.outcomes.labels(outcome)

    async def run(self) -> None:
        """Deliver due events until cancelled (every replica runs one). Without a secret it returns at once: no
        webhook can be asked for, and one stored before the secret was removed waits for it."""
        if not self.key:
            return
        with contextlib.suppress(Exception):  # the database away: the leases expire instead
            await self.store.run(release_leases(self.owner, self.store.database.dialect == SQLITE))
        async with httpx.AsyncClient(
            follow_redirects=False, headers={"user-agent": f"visualizr/{__version__}"}
        ) as client:
            while True:
                try:
                    batch = await self.store.run(
                        claim_due(self.owner, self._now(), self.timeout_s + LEASE_MARGIN_S, BATCH)
                    )
                except Exception as exc:  # the database away: health says so; the outbox waits
                    logger.debug("could not claim webhook deliveries: %s", exc)
                    batch = []
                if batch:
                    results = await asyncio.gather(*(self.deliver(client, d) for d in batch), return_exceptions=True)
                    for delivery, result in zip(batch, results, strict=True):
                        if isinstance(result, Exception):  # sent again once its lease runs out
                            logger.warning("webhook %s not handled: %r", delivery.event_id, result)
                else:
                    await asyncio.sleep(self.poll_s)

    async def deliver(self, client: httpx.AsyncClient, delivery: Delivery) -> None:
        payload = delivery.payload or await self._payload(delivery)
        if payload is None:
            await self._record(delivery, None, DROPPED, self._now(), b"")
            return
        refusal = await self.policy.refusal(delivery.url)
        if refusal is None:
            attempt = await self._post(client, delivery, payload)
        else:
            attempt = WebhookAttempt(at=self._now(), duration_seconds=0.0, error=f"refused: {refusal}")
        if attempt.status_code is not None and 200 <= attempt.status_code < 300:
            await self._record(delivery, attempt, DELIVERED, attempt.at, payload)
            return
        due = self._now() + BACKOFF.delay(len(delivery.attempts) + 1)
        gives_up = due > delivery.created_at + self.retry_for_s
        logger.info("webhook %s to %s failed (%s)%s", delivery.event_id, urlsplit(delivery.url).hostname,
                    attempt.error or attempt.status_code, "; given up" if gives_up else "")  # fmt: skip
        await self._record(delivery, attempt, GAVE_UP if gives_up else PENDING, due, payload)

    async def _payload(self, delivery: Delivery) -> bytes | None:
        """The job's status document now; None when the job is gone, or its end overtook a progress event."""
        try:
            status, _ = await self._status(delivery.request_id)
        except RequestNotFoundError:
            return None
        if delivery.event == PROGRESS and getattr(status, "status", None) in TERMINAL_STATES:
            return None
        return msgspec.json.encode(status)

    async def _post(self, client: httpx.AsyncClient, delivery: Delivery, payload: bytes) -> WebhookAttempt:
        at, started = self._now(), time.monotonic()
        headers = {"content-type": "application/json", **signed_headers(self.key, delivery.event_id, int(at), payload)}
        try:
            async with asyncio.timeout(self.timeout_s):
                request = client.build_request("POST", delivery.url, content=payload, headers=headers,
                                               timeout=self.timeout_s)  # fmt: skip
                response = await client.send(request, stream=True)
                try:
                    read = 0
                    async for chunk in response.aiter_raw():
                        read += len(chunk)
                        if read >= MAX_RESPONSE_BYTES:
                            break
                finally:
                    await response.aclose()
            return WebhookAttempt(at, round(time.monotonic() - started, 3), status_code=response.status_code)
        except (httpx.HTTPError, TimeoutError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            return WebhookAttempt(at, round(time.monotonic() - started, 3), error=error[:300])

    async def _record(
        self, delivery: Delivery, attempt: WebhookAttempt | None, status: str, due: float, payload: bytes
    ) -> None:
        with contextlib.suppress(Exception):  # unrecorded: its lease runs out and it is sent again (same id)
            await self.store.run(record_attempt(delivery, self.owner, attempt, status, due, payload))
        self.outcomes.labels("retrying" if status == PENDING else status).inc()
