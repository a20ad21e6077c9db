"""What uvicorn's loggers print: no secrets (``security.RedactKeys``), and an access log an operator can read.

The access log keeps what an operator acts on: writes (POST, DELETE), WebSocket handshakes and every answer of 400
or more. Successful reads (GET and HEAD under 400: status polls, Prometheus scrapes, health probes, the studio's
files) are logged only when uvicorn's access logger is at DEBUG (``VISUALIZR_LOG_LEVEL=debug``).
"""

from __future__ import annotations

import logging

from visualizr.frontend.security import RedactKeys

ACCESS_LOGGER = "uvicorn.access"
SERVER_LOGGERS = (ACCESS_LOGGER, "uvicorn.error")  # uvicorn logs a WebSocket handshake's path on the latter
READS = frozenset({"GET", "HEAD"})


class QuietAccessLog(logging.Filter):
    """Drops uvicorn's access records of successful reads unless the access logger is at DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if not (isinstance(args, tuple) and len(args) == 5):  # (client, method, path, http version, status)
            return True
        method, status = args[1], args[4]
        if method in READS and isinstance(status, int) and status < 400:
            return logging.getLogger(ACCESS_LOGGER).isEnabledFor(logging.DEBUG)
        return True


def _install(logger_name: str, log_filter: logging.Filter) -> None:
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, type(log_filter)) for f in logger.filters):
        logger.addFilter(log_filter)


def install_server_log_filters() -> None:
    """Once per process. Filters live on the loggers, which uvicorn's logging set-up keeps (it replaces their
    handlers), so the order of app creation and uvicorn.Config is free."""
    for name in SERVER_LOGGERS:
        _install(name, RedactKeys())
    _install(ACCESS_LOGGER, QuietAccessLog())
