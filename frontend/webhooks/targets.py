"""Which URLs a webhook may target: http or https with a host; the hosts of ``VISUALIZR_WEBHOOK_ALLOWED_HOSTS``
when it is set, else any host whose every address is public (private, loopback, link-local, reserved and
multicast addresses are refused unless ``VISUALIZR_WEBHOOK_ALLOW_PRIVATE`` opts in: tests, a trusted network).
Checked at submission (INVALID_PARAMETERS naming the field) and again before every POST (DNS may have changed)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from typing import Final
from urllib.parse import urlsplit

from visualizr.frontend.errors import InvalidParametersError
from visualizr.frontend.jobs.webhook_outbox import DEFAULT_EVENTS, EVENTS, WebhookTarget
from visualizr.settings import Settings

URL_FIELD: Final = "webhook_url"
EVENTS_FIELD: Final = "webhook_events"
MAX_URL_CHARS: Final = 2048
RESOLVE_TIMEOUT_S: Final = 5.0
SCHEMES: Final = ("http", "https")


def _refused(message: str, field: str = URL_FIELD, **details: object) -> InvalidParametersError:
    return InvalidParametersError(message, {"field": field, **details})


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class WebhookPolicy:
    def __init__(self, settings: Settings) -> None:
        self.enabled = bool(settings.webhook_secret)
        self.allowed_hosts = frozenset(settings.webhook_allowed_hosts)
        self.allow_private = settings.webhook_allow_private

    async def target(self, url: str | None, events: Sequence[str] | str | None) -> WebhookTarget | None:
        """The request's webhook (None without ``webhook_url``); INVALID_PARAMETERS naming the field at fault."""
        if url is None:
            if events is not None:
                raise _refused(f"{EVENTS_FIELD} needs a {URL_FIELD}", EVENTS_FIELD)
            return None
        if not self.enabled:
            raise _refused("Webhooks are not enabled on this server (VISUALIZR_WEBHOOK_SECRET is not set)")
        url = url.strip()
        reason = self._syntax_error(url)
        if reason is None:
            reason = await self.refusal(url)
        if reason is not None:
            raise _refused(f"{URL_FIELD} is not allowed: {reason}", value=url[:200], reason=reason)
        return WebhookTarget(url, _events(events))

    def _syntax_error(self, url: str) -> str | None:
        if len(url) > MAX_URL_CHARS:
            return f"longer than {MAX_URL_CHARS} characters"
        if not url.isprintable() or any(c.isspace() for c in url):
            return "it contains spaces or control characters"
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 (raises for a port that is no number)
        except ValueError as exc:
            return f"not a URL ({exc})"
        if parts.scheme.lower() not in SCHEMES:
            return "only http and https URLs are taken"
        if not parts.hostname:
            return "it has no host"
        return None

    async def refusal(self, url: str) -> str | None:
        """Why ``url`` may not be posted to now (its host outside the allow-list, or an address that is not
        public), or None."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if self.allowed_hosts:
            return None if host in self.allowed_hosts else f"host {host!r} is not in VISUALIZR_WEBHOOK_ALLOWED_HOSTS"
        if self.allow_private:
            return None
        try:
            addresses = await _addresses(host, parts.port or (443 if parts.scheme.lower() == "https" else 80))
        except (OSError, TimeoutError) as exc:
            return f"host {host!r} cannot be resolved ({type(exc).__name__})"
        private = sorted(a for a in addresses if not is_public(a))
        if private or not addresses:
            return f"host {host!r} has a private, loopback or reserved address ({', '.join(private[:3])})"
        return None


async def _addresses(host: str, port: int) -> set[str]:
    try:
        return {str(ipaddress.ip_address(host.strip("[]")))}
    except ValueError:
        pass
    lookup = asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    infos = await asyncio.wait_for(lookup, RESOLVE_TIMEOUT_S)
    return {str(info[4][0]) for info in infos}


def _events(given: Sequence[str] | str | None) -> tuple[str, ...]:
    """The events asked for (a list, or comma-separated text from a form), in EVENTS' order; the terminal ones by
    default."""
    if given is None:
        return DEFAULT_EVENTS
    names = [n.strip() for n in given.split(",")] if isinstance(given, str) else list(given)
    unknown = [n for n in names if n not in EVENTS]
    if unknown or not names:
        raise _refused(
            f"{EVENTS_FIELD} must be a non-empty subset of {', '.join(EVENTS)}", EVENTS_FIELD, allowed=list(EVENTS)
        )
    return tuple(e for e in EVENTS if e in names)
