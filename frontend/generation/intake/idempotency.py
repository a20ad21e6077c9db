"""``Idempotency-Key`` on the POST routes: a key sent again with the same request returns the first job instead of
queuing a duplicate; the same key with a different request is 409 IDEMPOTENCY_KEY_REUSED. Keys are kept for
``KEY_TTL_SECONDS``. The request is compared by a fingerprint of what the client sent (route, decoded fields,
image bytes), not of the raw body, so a multipart boundary or key order does not matter. Routes take the header as
``KeyHeader``: Litestar checks (and documents) its length, ``IdempotencyClaim.of`` that it is printable."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated

from litestar.params import Parameter

from visualizr.frontend import clock
from visualizr.frontend.errors import IdempotencyKeyReusedError, InvalidParametersError
from visualizr.frontend.jobs.store import JobStore

HEADER = "Idempotency-Key"
MAX_KEY_CHARS = 255
KEY_TTL_SECONDS = 24 * 3600
KeyHeader = Annotated[
    str | None,
    Parameter(
        header=HEADER,
        min_length=1,
        max_length=MAX_KEY_CHARS,
        description="Send the same request again with the same key: the first job is returned, nothing is queued",
    ),
]


@dataclass(frozen=True)
class IdempotencyClaim:
    key: str
    fingerprint: str

    @classmethod
    def of(cls, key: str | None, route: str, parts: Iterable[bytes]) -> IdempotencyClaim | None:
        """The claim of a request (None without the header); INVALID_PARAMETERS for a key that is not printable."""
        if key is None:
            return None
        if not key.isprintable():
            raise InvalidParametersError(
                f"{HEADER} must be 1 to {MAX_KEY_CHARS} printable characters",
                {"field": HEADER, "max_length": MAX_KEY_CHARS},
            )
        digest = hashlib.sha256(route.encode())
        for part in parts:
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
        return cls(key, digest.hexdigest())


class IdempotencyKeys:
    """Keys are global: the key table's primary key decides which of two racing requests (on any replicas) stores
    its job (``jobs.work_queue.admit``); ``first_job`` answers the common repeat before any other check."""

    def __init__(self, store: JobStore) -> None:
        self._store = store

    async def first_job(self, claim: IdempotencyClaim) -> tuple[str, str] | None:
        """(fingerprint, request id) of the job first stored under the claim's key; None for a new key."""
        return await self._store.idempotent_job(claim.key, clock.now() - KEY_TTL_SECONDS)

    @staticmethod
    def check(claim: IdempotencyClaim, fingerprint: str, request_id: str) -> None:
        """IDEMPOTENCY_KEY_REUSED when the key's first job came from a different request."""
        if fingerprint != claim.fingerprint:
            raise IdempotencyKeyReusedError(
                f"{HEADER} {claim.key[:60]!r} was already used for a different request",
                {"field": HEADER, "request_id": request_id},
            )
