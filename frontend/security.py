"""API keys: ``Authorization: Bearer <key>`` on every route except the exempt ones below.

Keys come from ``Settings.api_keys`` (``VISUALIZR_API_KEYS``, comma-separated). With no keys the API is open:
it listens on loopback unless ``VISUALIZR_HOST`` names another address, and then says so with a WARNING. A
missing or wrong key answers HTTP 401 with the usual error body, code ``UNAUTHORIZED`` (a ninth code: the
reference has none for authentication) and ``WWW-Authenticate``.

* Exempt: ``/api/v1/health`` (probes), ``/schema`` (the OpenAPI document and its viewers: they describe
  the API and hold no data) and the studio's page (``/``, ``/studio``, ``/studio/static/``: it asks for the
  key itself). CORS preflights never get here: Litestar's CORS middleware answers them first.
* Protected: everything else, including ``/metrics`` (Prometheus sends ``authorization: {credentials: ...}``)
  and the generated files under ``/assets/``.
* ``?api_key=<key>`` is accepted instead of the header only where a browser cannot set headers: WebSocket
  connections and GETs under ``/assets/`` (``<video src>``, ``<img src>``). Its value never reaches a log:
  ``RedactKeys`` rewrites the records of uvicorn's loggers that print request lines (``uvicorn.access`` for
  HTTP, ``uvicorn.error`` for WebSocket handshakes; installed by ``server_logs``), tickets included. There,
  ``?ticket=<ticket>`` is accepted too: a short-lived ticket signed for that one path
  (``frontend.studio.tickets``), which is what the studio uses so that its key never appears in a URL at all.
* WebSocket: checked before the handshake is accepted. With the ASGI "websocket.http.response" extension
  (uvicorn) the client gets a plain HTTP 401 with the error body; otherwise the socket is closed with code
  4401.

Keys are compared with ``hmac.compare_digest`` against every configured key (no early exit).
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Iterable
from typing import Protocol
from urllib.parse import parse_qs

import msgspec
from litestar.types import ASGIApp, Receive, Scope, Send

from visualizr.frontend.errors import UnauthorizedError
from visualizr.settings import LOOPBACK

logger = logging.getLogger("visualizr.frontend.security")

EXEMPT_PATHS = ("/api/v1/health", "/", "/studio")
EXEMPT_PREFIXES = ("/schema", "/studio/static")
QUERY_KEY_PREFIXES = ("/assets/",)
QUERY_PARAMETER = "api_key"
TICKET_PARAMETER = "ticket"
WS_UNAUTHORIZED_CLOSE_CODE = 4401
_SECRETS = (QUERY_PARAMETER, TICKET_PARAMETER)
_SECRET_IN_QUERY = re.compile(rf"([?&](?:{'|'.join(_SECRETS)})=)[^&#\s]*", re.IGNORECASE)


def _under(path: str, prefixes: Iterable[str]) -> bool:
    return any(path == p.rstrip("/") or path.startswith(p.rstrip("/") + "/") for p in prefixes)


class TicketVerifier(Protocol):
    def verify(self, ticket: str, path: str) -> bool: ...


def is_exempt(path: str) -> bool:
    return path in EXEMPT_PATHS or _under(path, EXEMPT_PREFIXES)


def _query_value(scope: Scope, name: str) -> str | None:
    """A query parameter, only where a browser cannot send headers (WebSockets, ``/assets/``)."""
    if scope["type"] == "websocket" or _under(scope.get("path", ""), QUERY_KEY_PREFIXES):
        values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get(name)
        if values:
            return values[0]
    return None


def key_matches(candidate: str, keys: Iterable[str]) -> bool:
    """Constant-time over every key: no early exit on a match."""
    given = candidate.encode()
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(given, key.encode())
    return matched


def presented_key(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return _query_value(scope, QUERY_PARAMETER)


def redact(text: str) -> str:
    """``...?api_key=secret&x=1`` -> ``...?api_key=REDACTED&x=1`` (and the same for ``ticket``)."""
    return _SECRET_IN_QUERY.sub(r"\1REDACTED", text)


def _has_secret(text: object) -> bool:
    return isinstance(text, str) and any(name in text for name in _SECRETS)


class RedactKeys(logging.Filter):
    """Takes API keys and tickets out of log records (uvicorn prints each request's query string)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(_has_secret(a) for a in record.args):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if _has_secret(record.msg):
            record.msg = redact(record.msg)
        return True


def warn_if_open(keys: tuple[str, ...], host: str) -> None:
    """An open API on loopback is the safe default (a note); open on any other address is a warning."""
    if keys:
        return
    if host == LOOPBACK:
        logger.info(
            "the API is open (no VISUALIZR_API_KEYS) and listens on %s only; set VISUALIZR_API_KEYS to serve "
            "other machines, or VISUALIZR_HOST to choose the address",
            host,
        )
    else:
        logger.warning(
            "!!! VISUALIZR_API_KEYS is empty: the API is OPEN to anyone who can reach %s. "
            "Set VISUALIZR_API_KEYS=key1,key2 to require 'Authorization: Bearer <key>'. !!!",
            host,
        )


class ApiKeyMiddleware:
    def __init__(self, app: ASGIApp, keys: tuple[str, ...], tickets: TicketVerifier | None = None) -> None:
        self.app = app
        self.keys = keys
        self.tickets = tickets

    def _ticket_valid(self, scope: Scope) -> bool:
        if self.tickets is None:
            return False
        ticket = _query_value(scope, TICKET_PARAMETER)
        return ticket is not None and self.tickets.verify(ticket, scope.get("path", ""))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.keys or scope["type"] not in ("http", "websocket") or is_exempt(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        key = presented_key(scope)
        if (key is not None and key_matches(key, self.keys)) or (key is None and self._ticket_valid(scope)):
            await self.app(scope, receive, send)
            return
        error = UnauthorizedError(
            "A valid API key is required: send 'Authorization: Bearer <key>'"
            if key is None
            else "The API key is not valid",
            {"reason": "missing api key" if key is None else "invalid api key"},
        )
        await _deny(scope, receive, send, error)


async def _deny(scope: Scope, receive: Receive, send: Send, error: UnauthorizedError) -> None:
    body = msgspec.json.encode(error.to_body())
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *((k.lower().encode(), v.encode()) for k, v in error.headers.items()),
    ]
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": error.http_status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    await receive()  # websocket.connect: the handshake request, answered below without accepting it
    if "websocket.http.response" in (scope.get("extensions") or {}):
        await send({"type": "websocket.http.response.start", "status": error.http_status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": WS_UNAUTHORIZED_CLOSE_CODE, "reason": error.message[:120]})
