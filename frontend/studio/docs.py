"""The ``/schema`` API docs with self-hosted viewers: Swagger UI (``/schema``, ``/schema/swagger``), ReDoc
(``/schema/redoc``), RapiDoc (``/schema/rapidoc``) and Stoplight Elements (``/schema/elements``).

Their JavaScript and CSS come from ``vendor/`` (pinned npm tarballs, ``frontend.studio.vendor``) under
``/schema/static/``, so the pages render on a machine with no internet access. The OpenAPI document declares the
Bearer scheme, so Swagger UI's "Authorize" button sends the API key. The pages are served with a Content Security
Policy that keeps every load on this origin: a viewer's hard-coded external image (ReDoc's footer logo) is never
even requested.
"""

from __future__ import annotations

from litestar import Router
from litestar.datastructures import CacheControlHeader, ResponseHeader
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import (
    OpenAPIRenderPlugin,
    RapidocRenderPlugin,
    RedocRenderPlugin,
    StoplightRenderPlugin,
    SwaggerRenderPlugin,
    YamlRenderPlugin,
)
from litestar.openapi.spec import Components, SecurityScheme
from litestar.static_files import create_static_files_router

from visualizr import __version__
from visualizr.frontend.studio.vendor import ELEMENTS, RAPIDOC, REDOC, SWAGGER_UI, VENDOR_DIR

BEARER = "BearerAuth"
ONE_YEAR_SECONDS = 365 * 24 * 3600
# The viewers start from inline scripts, inject styles and run workers from blobs (ReDoc); nothing leaves the origin.
DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'self'"
)


def render_plugins() -> list[OpenAPIRenderPlugin]:
    favicon = f"<link rel='icon' type='image/png' href='{SWAGGER_UI.url('favicon-32x32.png')}'>"
    return [
        SwaggerRenderPlugin(
            path=["/", "/swagger"],
            js_url=SWAGGER_UI.url("swagger-ui-bundle.js"),
            css_url=SWAGGER_UI.url("swagger-ui.css"),
            standalone_preset_js_url=SWAGGER_UI.url("swagger-ui-standalone-preset.js"),
            favicon=favicon,
        ),
        RedocRenderPlugin(js_url=REDOC.url("bundles/redoc.standalone.js"), google_fonts=False, favicon=favicon),
        RapidocRenderPlugin(js_url=RAPIDOC.url("dist/rapidoc-min.js"), favicon=favicon),
        StoplightRenderPlugin(
            js_url=ELEMENTS.url("web-components.min.js"), css_url=ELEMENTS.url("styles.min.css"), favicon=favicon
        ),
        YamlRenderPlugin(path=["/openapi.yaml", "/openapi.yml"]),
    ]


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Visualizr API",
        version=__version__,
        render_plugins=render_plugins(),
        openapi_router=Router(
            "/schema",
            route_handlers=[],
            include_in_schema=False,
            response_headers=[ResponseHeader(name="Content-Security-Policy", value=DOCS_POLICY)],
        ),
        components=Components(
            security_schemes={
                BEARER: SecurityScheme(
                    type="http", scheme="bearer", description="An API key of VISUALIZR_API_KEYS (when any is set)"
                )
            }
        ),
        security=[{BEARER: []}],
    )


# Versioned folders (name@version): a file's content never changes under its URL.
docs_static = create_static_files_router(
    path="/schema/static",
    directories=[VENDOR_DIR],
    name="docs_static",
    cache_control=CacheControlHeader(max_age=ONE_YEAR_SECONDS, public=True),
    include_in_schema=False,
)
