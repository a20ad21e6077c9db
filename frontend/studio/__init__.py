"""Visualizr Studio: the browser page served at ``/`` and ``/studio`` (make, watch and manage videos), the tickets
it authenticates media and WebSocket URLs with, and the self-hosted assets of the ``/schema`` API docs.

The page is plain HTML/CSS/JS under ``static/`` (no build step, no CDN); it talks to the public API only, like any
other client. See docs/ARCHITECTURE.md for the design.
"""
