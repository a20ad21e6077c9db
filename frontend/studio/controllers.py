"""Routes of the studio: the page (``/``, ``/studio``), its static files (``/studio/static/``) and the tickets
that authenticate its media and WebSocket URLs (``POST /studio/tickets``, which needs the API key)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import msgspec
from litestar import MediaType, Response, get, post
from litestar.datastructures import CacheControlHeader
from litestar.static_files import create_static_files_router
from litestar.status_codes import HTTP_200_OK

from visualizr.frontend.errors import InvalidParametersError
from visualizr.frontend.jobs.naming import ASSETS_URL_PREFIX, media_type_of
from visualizr.frontend.paths import WS_PATH
from visualizr.frontend.studio.docs import docs_static
from visualizr.frontend.studio.tickets import TicketBook

STATIC_DIR = Path(__file__).parent / "static"
PAGE_TEMPLATE = Path(__file__).parent / "page.html"
CATALOG_MARKER = "{{catalog}}"
MAX_TICKETS_PER_CALL = 300

# The page loads nothing but its own files: a tight policy turns any injected markup into a no-op.
PAGE_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; connect-src 'self'; "
        "style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
        "form-action 'none'"
    ),
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "cache-control": "no-cache",
}


class TicketRequest(msgspec.Struct, forbid_unknown_fields=True):
    paths: list[str]


class TicketResponse(msgspec.Struct):
    tickets: dict[str, str]
    expires_in_seconds: int


class StudioPage:
    """The page with the generation options (``generation.options.client_options``, passed in by the app) inlined
    as a JSON data block (escaped for HTML; the CSP does not run it)."""

    def __init__(self, options: dict[str, Any]) -> None:
        data = html.escape(msgspec.json.encode(options).decode(), quote=False)
        self.body = PAGE_TEMPLATE.read_text().replace(CATALOG_MARKER, data).encode()


@get(["/", "/studio"], include_in_schema=False, sync_to_thread=False)
def studio_page(studio: StudioPage) -> Response[bytes]:
    return Response(studio.body, media_type=MediaType.HTML, headers=PAGE_HEADERS)


def ticketable(path: str) -> bool:
    """Only the URLs a browser cannot send a header to: asset files and the WebSocket."""
    if path == WS_PATH:
        return True
    prefix = ASSETS_URL_PREFIX + "/"
    return path.startswith(prefix) and media_type_of(path.removeprefix(prefix)) is not None


@post("/studio/tickets", status_code=HTTP_200_OK, tags=["studio"], sync_to_thread=False)
def mint_tickets(data: TicketRequest, tickets: TicketBook) -> TicketResponse:
    """One short-lived ticket per path (asset files under ``/assets/video/`` and the WebSocket path), to pass
    as ``?ticket=`` where a browser cannot send ``Authorization``. Needs the API key like any other call."""
    if len(data.paths) > MAX_TICKETS_PER_CALL:
        raise InvalidParametersError(
            f"At most {MAX_TICKETS_PER_CALL} paths per call", {"field": "paths", "max_items": MAX_TICKETS_PER_CALL}
        )
    refused = [p[:120] for p in data.paths if not ticketable(p)]
    if refused:
        raise InvalidParametersError(
            "Tickets are only issued for asset files and the WebSocket path",
            {"field": "paths", "refused": refused[:10]},
        )
    return TicketResponse({p: tickets.mint(p) for p in data.paths}, tickets.ttl_seconds)


studio_static = create_static_files_router(
    path="/studio/static",
    directories=[STATIC_DIR],
    name="studio_static",
    cache_control=CacheControlHeader(no_cache=True),
    include_in_schema=False,
)

STUDIO_ROUTES = [studio_page, mint_tickets, studio_static, docs_static]  # docs_static: the /schema viewers' files
