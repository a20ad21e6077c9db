"""The one error tree of the API and the one exception handler that renders it.

Every error body is ``{"error": {"code", "message", "details"}}`` with one of the spec's eight codes or one of
ours (the README lists them): ``UNAUTHORIZED`` (401, a missing or wrong API key), ``INSUFFICIENT_STORAGE`` (507,
the data folder's disk is below its free-space floor or full), ``IDEMPOTENCY_KEY_REUSED`` (409, an
``Idempotency-Key`` sent again with a different request), ``ROUTE_NOT_FOUND`` (404, no route or static file at
that path: the reference's ``REQUEST_NOT_FOUND`` means an unknown generation request or asset, which a mistyped URL
is not), ``DATABASE_UNAVAILABLE`` (503 with Retry-After, the shared job database cannot be reached) and
``OBJECT_STORE_UNAVAILABLE`` (503 with Retry-After, the S3 bucket of the files cannot be reached) and
``CHARACTER_NOT_FOUND`` (404, no character of the registry has that id).
Litestar's own exceptions (parameter validation, a missing body, unknown route, wrong method, oversized body) are
mapped onto the same body so that nothing a client can send produces a bare 500:

* a ValidationException -> HTTP 400, ``INVALID_PARAMETERS`` naming the ``field`` of its first problem as the client
  sends it (a header by its header name; Litestar's ``data``, the body itself, by none);
* unknown route -> HTTP 404, ``ROUTE_NOT_FOUND``; wrong method -> HTTP 405 (with ``Allow``),
  ``INVALID_PARAMETERS``;
* any other 4xx raised by Litestar -> its own status, ``INVALID_PARAMETERS``;
* an unexpected exception -> HTTP 500, ``GENERATION_FAILED`` (logged with its traceback; no internals leak).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotFoundException,
    ValidationException,
)

logger = logging.getLogger("visualizr.frontend.errors")

INVALID_PROMPT = "INVALID_PROMPT"
INVALID_PARAMETERS = "INVALID_PARAMETERS"
MODEL_NOT_FOUND = "MODEL_NOT_FOUND"
REQUEST_NOT_FOUND = "REQUEST_NOT_FOUND"
INSUFFICIENT_GPU_MEMORY = "INSUFFICIENT_GPU_MEMORY"
MODEL_LOAD_FAILED = "MODEL_LOAD_FAILED"
GENERATION_FAILED = "GENERATION_FAILED"
QUEUE_FULL = "QUEUE_FULL"
UNAUTHORIZED = "UNAUTHORIZED"
INSUFFICIENT_STORAGE = "INSUFFICIENT_STORAGE"
IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
ROUTE_NOT_FOUND = "ROUTE_NOT_FOUND"
DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE"
OBJECT_STORE_UNAVAILABLE = "OBJECT_STORE_UNAVAILABLE"
CHARACTER_NOT_FOUND = "CHARACTER_NOT_FOUND"
BODY_PARAMETER = "data"  # Litestar's name of a route's body: a problem of that key is a body that is missing


class ErrorInfo(msgspec.Struct):
    """The ``error`` object of every error body (and of a failed job's status)."""

    code: str
    message: str
    details: Any = None


class VisualizrError(Exception):
    """Base of every error the API answers with. Subclasses fix ``code`` and ``http_status``."""

    code: ClassVar[str] = GENERATION_FAILED
    http_status: ClassVar[int] = 500

    def __init__(self, message: str, details: Any = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers or {}

    def to_body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.details)


class InvalidPromptError(VisualizrError):
    code = INVALID_PROMPT
    http_status = 400


class InvalidParametersError(VisualizrError):
    code = INVALID_PARAMETERS
    http_status = 400


class ModelNotFoundError(VisualizrError):
    code = MODEL_NOT_FOUND
    http_status = 404


class RequestNotFoundError(VisualizrError):
    code = REQUEST_NOT_FOUND
    http_status = 404


class InsufficientGpuMemoryError(VisualizrError):
    code = INSUFFICIENT_GPU_MEMORY
    http_status = 507


class ModelLoadFailedError(VisualizrError):
    code = MODEL_LOAD_FAILED
    http_status = 500


class GenerationFailedError(VisualizrError):
    code = GENERATION_FAILED
    http_status = 500


class QueueFullError(VisualizrError):
    code = QUEUE_FULL
    http_status = 503

    def __init__(self, message: str, retry_after_seconds: int, details: Any = None) -> None:
        super().__init__(message, details, headers={"Retry-After": str(max(1, int(retry_after_seconds)))})
        self.retry_after_seconds = max(1, int(retry_after_seconds))


class InsufficientStorageError(VisualizrError):
    code = INSUFFICIENT_STORAGE
    http_status = 507


class BackingServiceUnavailableError(VisualizrError):
    """A shared service the request needs (the job database, the object store) cannot be reached: 503 with
    ``Retry-After``; nothing was written."""

    http_status = 503
    RETRY_AFTER_SECONDS: ClassVar[int] = 5

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message, details, headers={"Retry-After": str(self.RETRY_AFTER_SECONDS)})


class DatabaseUnavailableError(BackingServiceUnavailableError):
    code = DATABASE_UNAVAILABLE


class ObjectStoreUnavailableError(BackingServiceUnavailableError):
    code = OBJECT_STORE_UNAVAILABLE


class IdempotencyKeyReusedError(VisualizrError):
    code = IDEMPOTENCY_KEY_REUSED
    http_status = 409


class CharacterNotFoundError(VisualizrError):
    """No character of the registry has that id (``frontend.characters``)."""

    code = CHARACTER_NOT_FOUND
    http_status = 404


class UnauthorizedError(VisualizrError):
    code = UNAUTHORIZED
    http_status = 401

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message, details, headers={"WWW-Authenticate": 'Bearer realm="visualizr"'})


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def _response(
    status: int, code: str, message: str, details: Any, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        content=error_body(code, message, details),
        status_code=status,
        media_type=MediaType.JSON,
        headers=headers or None,
    )


def to_visualizr_error(exc: Exception) -> tuple[int, str, str, Any, dict[str, str]]:
    """(status, code, message, details, headers) for any exception."""
    if isinstance(exc, VisualizrError):
        return exc.http_status, exc.code, exc.message, exc.details, exc.headers
    if isinstance(exc, NotFoundException):
        return 404, ROUTE_NOT_FOUND, "Not found: no route or file at this path", None, {}
    if isinstance(exc, MethodNotAllowedException):
        return 405, INVALID_PARAMETERS, "Method not allowed", None, dict(exc.headers or {})
    if isinstance(exc, HTTPException) and exc.status_code < 500:
        return exc.status_code, INVALID_PARAMETERS, str(exc.detail), None, dict(exc.headers or {})
    return 500, GENERATION_FAILED, "Internal server error", None, {}


def invalid_request(request: Request[Any, Any, Any], exc: ValidationException) -> InvalidParametersError:
    """Litestar's validation failure as INVALID_PARAMETERS naming the field of its first problem."""
    problem = exc.extra[0] if isinstance(exc.extra, list) and exc.extra else {}
    key = problem.get("key")
    if key == BODY_PARAMETER:
        return InvalidParametersError("Request body is required", {"field": None, "reason": "empty body"})
    reason = problem.get("message", exc.detail)
    field = _as_sent(request, key) if key else None
    message = f"Invalid value for {field!r}: {reason}" if field else f"Invalid request: {reason}"
    return InvalidParametersError(message, {"field": field, "reason": reason})


def _as_sent(request: Request[Any, Any, Any], key: str) -> str:
    """A handler parameter's name as the client sends it: its header, query or cookie name, else the key."""
    parameter = request.route_handler.parsed_fn_signature.parameters.get(key)
    kwarg = getattr(parameter, "kwarg_definition", None)
    return getattr(kwarg, "header", None) or getattr(kwarg, "query", None) or getattr(kwarg, "cookie", None) or key


def exception_handler(request: Request[Any, Any, Any], exc: Exception) -> Response:
    if isinstance(exc, ValidationException):
        exc = invalid_request(request, exc)
    status, code, message, details, headers = to_visualizr_error(exc)
    if status >= 500 and not isinstance(exc, VisualizrError):
        logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _response(status, code, message, details, headers)


# Litestar looks handlers up by exception class (MRO) and status code; Exception catches everything else.
EXCEPTION_HANDLERS = {
    VisualizrError: exception_handler,
    HTTPException: exception_handler,
    Exception: exception_handler,
}
