"""``python -m visualizr.frontend``: serve the API with uvicorn on Settings.host:Settings.port (VISUALIZR_*
environment). An unusable data folder stops it with one line on stderr (exit status 2)."""

from __future__ import annotations

import logging
import sys

import uvicorn

from visualizr.frontend.app import create_app
from visualizr.frontend.infra.disk import DataDirError
from visualizr.settings import Settings


def main() -> int:
    settings = Settings.from_env()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        app = create_app(settings)
    except DataDirError as exc:
        print(f"visualizr: {exc}", file=sys.stderr)
        return 2
    # One process: the queue, the workers and the WebSocket hub are in-process state.
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level.lower(), workers=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
