"""`make serve`: tritonserver under the supervisor (restarted whenever it exits) and the API, in the foreground
until Ctrl-C / SIGTERM.

The model repository must already be built (`python -m visualizr.export`, which `make serve` runs first).
Shutdown order: the supervisor stops restarting, uvicorn drains the API, then tritonserver and its stubs stop.
"""

from __future__ import annotations

import logging
import signal
import sys
import types

import uvicorn

from visualizr import process_tree
from visualizr.frontend.app import create_app, prepare_storage
from visualizr.frontend.infra.disk import DataDirError
from visualizr.launcher import TritonStartError
from visualizr.settings import Settings
from visualizr.supervisor import TritonSupervisor

log = logging.getLogger("visualizr.serve")


def _raise_on_sigterm(signum: int, frame: types.FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


class _ApiServer(uvicorn.Server):
    """uvicorn, telling the supervisor to stop restarting Triton as soon as a shutdown signal arrives."""

    def __init__(self, config: uvicorn.Config, supervisor: TritonSupervisor) -> None:
        super().__init__(config)
        self.supervisor = supervisor

    def handle_exit(self, sig: int, frame: types.FrameType | None) -> None:
        self.supervisor.stop_restarting()
        super().handle_exit(sig, frame)


def main() -> int:
    settings = Settings.from_env()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Until uvicorn installs its own handlers, SIGTERM stops start-up the same way Ctrl-C does.
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    try:
        prepare_storage(settings)
    except DataDirError as exc:
        print(f"visualizr: {exc}", file=sys.stderr)
        return 2
    process_tree.become_subreaper()  # the stubs of a killed tritonserver become our children, which we reap
    supervisor = TritonSupervisor(settings)
    try:
        log.info(
            "starting tritonserver (http :%d, grpc :%d, metrics :%d) under the supervisor, status in %s",
            settings.triton_http_port, settings.triton_grpc_port, settings.triton_metrics_port,
            settings.supervisor_status_path,
        )
        supervisor.start().wait_ready(settings.triton_ready_timeout_s)
        log.info("tritonserver ready; API on http://%s:%d", settings.host, settings.port)
        app = create_app(settings, restart_triton=supervisor.request_restart)
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            timeout_graceful_shutdown=10,
        )
        _ApiServer(config, supervisor).run()
    except KeyboardInterrupt:
        log.info("interrupted")
    except (TritonStartError, DataDirError) as exc:
        log.error("%s", exc)
        return 1
    finally:
        supervisor.stop_restarting()
        log.info("stopping tritonserver")
        supervisor.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
