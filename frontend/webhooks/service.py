"""What the routes hold of webhooks: the URL policy the generate routes check, and the deliveries a job's status
shows (the sender, ``webhooks.sender``, runs beside them)."""

from __future__ import annotations

from typing import TypeVar

import msgspec

from visualizr.frontend.jobs.store import JobStore
from visualizr.frontend.jobs.webhook_outbox import deliveries_of
from visualizr.frontend.webhooks.schemas import delivery_views
from visualizr.frontend.webhooks.targets import WebhookPolicy

S = TypeVar("S", bound=msgspec.Struct)


class Webhooks:
    def __init__(self, store: JobStore, policy: WebhookPolicy) -> None:
        self.store, self.policy = store, policy

    async def with_deliveries(self, status: S) -> S:
        """A job's status body with its ``webhook_deliveries`` (left out when it has no webhook)."""
        deliveries = await self.store.run(deliveries_of([status.request_id]))  # type: ignore[attr-defined]
        if not deliveries:
            return status
        return msgspec.structs.replace(status, webhook_deliveries=delivery_views(deliveries))
