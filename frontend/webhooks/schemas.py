"""Wire types of webhooks: a job's deliveries as its status shows them (``webhook_deliveries``)."""

from __future__ import annotations

import msgspec

from visualizr.frontend import clock
from visualizr.frontend.jobs.webhook_outbox import PENDING, Delivery, WebhookAttempt


class WebhookDelivery(msgspec.Struct, omit_defaults=True):
    """One event of the job: its ``webhook_id`` (the same on every retry), ``status`` (pending, delivered, failed:
    given up, dropped), its attempts (``at`` in epoch seconds) and, while pending, when the next one is due."""

    webhook_id: str
    event: str
    status: str
    attempts: list[WebhookAttempt]
    next_attempt_at: str | None = None


def delivery_views(deliveries: list[Delivery]) -> list[WebhookDelivery]:
    return [
        WebhookDelivery(
            webhook_id=d.event_id,
            event=d.event,
            status=d.status,
            attempts=list(d.attempts),
            next_attempt_at=clock.iso(d.next_attempt_at) if d.status == PENDING else None,
        )
        for d in deliveries
    ]
