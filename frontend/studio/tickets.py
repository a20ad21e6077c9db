"""Short-lived signed tickets: how a browser authenticates where it cannot send ``Authorization``.

A ``<video src>``, an ``<img src>`` and a WebSocket handshake carry no custom header. Rather than put the API key
into those URLs (where access logs, browser history and proxies keep it), the studio asks ``POST /studio/tickets``
(with its ``Authorization: Bearer`` key) for one ticket per URL path and appends ``?ticket=...``. A ticket:

* names exactly one path (``/assets/video/<file>`` or the WebSocket path) and is refused anywhere else;
* expires after ``TICKET_TTL_SECONDS``, so one copied out of a log is soon worthless;
* is ``<expiry>.<path in base64url>.<HMAC-SHA256 tag>`` under a random secret drawn at process start: it reveals
  nothing about any API key, and a restart (or another API replica) simply refuses it; the studio mints again.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable

TICKET_TTL_SECONDS = 600
TAG_BYTES = 16


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TicketBook:
    def __init__(
        self,
        ttl_seconds: int = TICKET_TTL_SECONDS,
        *,
        secret: bytes | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self._secret = secret or secrets.token_bytes(32)
        self._now = now

    def _tag(self, payload: str) -> str:
        return _b64(hmac.new(self._secret, payload.encode(), hashlib.sha256).digest()[:TAG_BYTES])

    def mint(self, path: str) -> str:
        payload = f"{int(self._now()) + self.ttl_seconds}.{_b64(path.encode())}"
        return f"{payload}.{self._tag(payload)}"

    def verify(self, ticket: str, path: str) -> bool:
        """True when ``ticket`` was minted here for exactly ``path`` and has not expired."""
        expiry, _, rest = ticket.partition(".")
        encoded_path, _, tag = rest.partition(".")
        if not (expiry.isdigit() and encoded_path and tag):
            return False
        if not hmac.compare_digest(self._tag(f"{expiry}.{encoded_path}"), tag):
            return False
        try:
            signed_path = _unb64(encoded_path).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return False
        return signed_path == path and self._now() < int(expiry)
