"""Verify a Visualizr webhook (Standard Webhooks signatures: https://www.standardwebhooks.com)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping

from visualizr_client._errors import WebhookVerificationError

SECRET_PREFIX = "whsec_"


def _key(secret: str | bytes) -> bytes:
    if isinstance(secret, bytes):
        return secret
    if secret.startswith(SECRET_PREFIX):
        try:
            return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
        except binascii.Error as exc:
            raise WebhookVerificationError(f"the secret is not valid whsec_ base64: {exc}") from None
    return secret.encode()


def verify_webhook(payload: bytes, headers: Mapping[str, str], secret: str | bytes, tolerance: float = 300) -> bytes:
    """Check a webhook's ``webhook-signature`` (HMAC-SHA256 of ``"{webhook-id}.{webhook-timestamp}.{payload}"``
    with ``secret``: the server's ``VISUALIZR_WEBHOOK_SECRET``, ``whsec_<base64>`` or plain text) and that its
    timestamp is within ``tolerance`` seconds of now. Returns ``payload`` (the job's status document, JSON);
    raises WebhookVerificationError. Use ``webhook-id`` to drop retries you already handled."""
    lowered = {k.lower(): v for k, v in headers.items()}
    event_id, stamp, signatures = (lowered.get(h) for h in ("webhook-id", "webhook-timestamp", "webhook-signature"))
    if not event_id or not stamp or not signatures:
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature header")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise WebhookVerificationError(f"webhook-timestamp is not an integer: {stamp[:40]!r}") from None
    if abs(time.time() - timestamp) > tolerance:
        raise WebhookVerificationError(f"webhook-timestamp {timestamp} is more than {tolerance:g} s from now")
    signed = f"{event_id}.{timestamp}.".encode() + payload
    expected = base64.b64encode(hmac.new(_key(secret), signed, hashlib.sha256).digest()).decode()
    for candidate in signatures.split():  # several, space-separated, while a secret is rotated
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return payload
    raise WebhookVerificationError("no webhook-signature matches the payload and secret")
