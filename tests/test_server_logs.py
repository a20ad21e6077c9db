"""The access log keeps what an operator acts on; successful reads only at DEBUG."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from visualizr.frontend.security import RedactKeys
from visualizr.frontend.server_logs import ACCESS_LOGGER, QuietAccessLog, install_server_log_filters


def _record(method: str, path: str, status: int) -> logging.LogRecord:
    args = ("127.0.0.1:5000", method, path, "1.1", status)
    return logging.LogRecord(ACCESS_LOGGER, logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d', args, None)


@pytest.fixture
def access_level() -> Iterator[logging.Logger]:
    logger = logging.getLogger(ACCESS_LOGGER)
    level = logger.level
    yield logger
    logger.setLevel(level)


@pytest.mark.parametrize(
    ("method", "path", "status", "kept"),
    [
        ("GET", "/metrics", 200, False),
        ("GET", "/api/v1/health", 200, False),
        ("HEAD", "/assets/video/v.mp4", 206, False),
        ("GET", "/api/v1/generate/status/x", 404, True),
        ("GET", "/api/v1/health", 503, True),
        ("POST", "/api/v1/generate/video", 202, True),
        ("DELETE", "/api/v1/generate/x", 200, True),
    ],
)
def test_successful_reads_are_dropped_at_info(
    access_level: logging.Logger, method: str, path: str, status: int, kept: bool
) -> None:
    access_level.setLevel(logging.INFO)
    assert QuietAccessLog().filter(_record(method, path, status)) is kept


def test_everything_is_kept_at_debug(access_level: logging.Logger) -> None:
    access_level.setLevel(logging.DEBUG)
    assert QuietAccessLog().filter(_record("GET", "/metrics", 200))


def test_records_of_another_shape_are_kept(access_level: logging.Logger) -> None:
    access_level.setLevel(logging.INFO)
    record = logging.LogRecord(ACCESS_LOGGER, logging.INFO, __file__, 1, "something else", None, None)
    assert QuietAccessLog().filter(record)


def test_installed_once() -> None:
    install_server_log_filters()
    install_server_log_filters()
    kinds = [type(f) for f in logging.getLogger(ACCESS_LOGGER).filters]
    assert kinds.count(RedactKeys) == 1 and kinds.count(QuietAccessLog) == 1
    assert [type(f) for f in logging.getLogger("uvicorn.error").filters].count(RedactKeys) == 1
