"""URL paths more than one part of the API needs to know (the route that serves each one is its domain's)."""

from __future__ import annotations

from typing import Final

WS_PATH: Final = "/api/v1/ws/generation"  # job updates over the WebSocket (generation.controllers)
