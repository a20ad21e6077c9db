"""``python -m visualizr.frontend``: serve the API with uvicorn on Settings.host:Settings.port (VISUALIZR_*
environment).
"""

from __future__ import annotations

import logging

import uvicorn

from visualizr.frontend.app import create_app
from visualizr.settings import Settings


def main() -> None:
    settings = Settings.from_env()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        # One process: the queue, the workers and the WebSocket hub are in-process state.
        workers=1,
    )


if __name__ == "__main__":
    main()
