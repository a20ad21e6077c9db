"""`make serve`: run tritonserver and the API together in the foreground until Ctrl-C / SIGTERM.

The model repository must already be built (`python -m visualizr.export`, which `make serve` runs first).
"""

from __future__ import annotations

import logging
import signal
import sys
import types

import uvicorn

from visualizr.launcher import TritonServer
from visualizr.settings import Settings

log = logging.getLogger("visualizr.serve")

TRITON_READY_TIMEOUT_S = 300.0


def _raise_on_sigterm(signum: int, frame: types.FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    settings = Settings.from_env()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Until uvicorn installs its own handlers, SIGTERM stops start-up the same way Ctrl-C does.
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    triton = TritonServer(settings)
    try:
        log.info("starting tritonserver (http :%d, grpc :%d, metrics :%d), log in %s",
                 settings.triton_http_port, settings.triton_grpc_port, settings.triton_metrics_port, triton.log_path)
        triton.start()
        triton.wait_ready(TRITON_READY_TIMEOUT_S)
        log.info("tritonserver ready; API on http://%s:%d", settings.host, settings.port)
        uvicorn.run(
            "visualizr.frontend.app:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            timeout_graceful_shutdown=10,
        )
    except KeyboardInterrupt:
        log.info("interrupted")
    finally:
        log.info("stopping tritonserver")
        triton.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
