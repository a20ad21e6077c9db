"""The SDK's exceptions: one ``VisualizrAPIError`` per error code of the API reference, built from the
``{"error": {"code", "message", "details"}}`` body the server answers with.

::

    VisualizrError
    ├── VisualizrConnectionError              the server could not be reached / the socket dropped
    ├── GenerationTimeoutError (TimeoutError) waiting for a job took too long
    └── VisualizrAPIError                     the server answered with an error
        ├── AuthenticationError               401 / 403 (missing or wrong API key)
        ├── BadRequestError
        │   ├── InvalidPromptError            INVALID_PROMPT
        │   └── InvalidParametersError        INVALID_PARAMETERS
        ├── NotFoundError
        │   ├── ModelNotFoundError            MODEL_NOT_FOUND
        │   ├── RequestNotFoundError          REQUEST_NOT_FOUND
        │   ├── CharacterNotFoundError        CHARACTER_NOT_FOUND
        │   └── RouteNotFoundError            ROUTE_NOT_FOUND (no route or file at this path: a wrong URL)
        ├── InsufficientGpuMemoryError        INSUFFICIENT_GPU_MEMORY
        ├── InsufficientStorageError          INSUFFICIENT_STORAGE (507: the server's disk is below its floor)
        ├── IdempotencyKeyReusedError         IDEMPOTENCY_KEY_REUSED (409: the key went with another request)
        ├── DatabaseUnavailableError          DATABASE_UNAVAILABLE (503: the server's job database is down)
        ├── ObjectStoreUnavailableError       OBJECT_STORE_UNAVAILABLE (503: the server's file bucket is down)
        ├── ModelLoadFailedError              MODEL_LOAD_FAILED
        ├── GenerationFailedError             GENERATION_FAILED, or a job that ended ``failed``
        ├── GenerationCancelledError          a job that ended ``cancelled``
        ├── QueueFullError                    QUEUE_FULL (``retry_after`` seconds)
        └── UnexpectedResponseError           a body that is not what the reference describes
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec

if TYPE_CHECKING:
    from visualizr_client.models import ErrorInfo, GenerationStatus


class VisualizrError(Exception):
    """Base of every exception the SDK raises."""


class VisualizrConnectionError(VisualizrError):
    """The server could not be reached, or a connection dropped mid-way."""


class GenerationTimeoutError(VisualizrError, TimeoutError):
    """A wait ran out of time (also a built-in ``TimeoutError``)."""


class WebhookVerificationError(VisualizrError):
    """A webhook's signature or timestamp did not check out (``verify_webhook``): do not trust its body."""


class VisualizrAPIError(VisualizrError):
    """The server answered with an error. ``status`` is the HTTP status (None when the error came from a job's
    state or a WebSocket message rather than an HTTP response)."""

    spec_code: ClassVar[str] = ""  # the spec code a subclass stands for ("" for the base)

    def __init__(self, status: int | None, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{code}: {message}" if code else message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, message={self.message!r})"


class AuthenticationError(VisualizrAPIError):
    spec_code = "UNAUTHORIZED"


class BadRequestError(VisualizrAPIError):
    pass


class InvalidPromptError(BadRequestError):
    spec_code = "INVALID_PROMPT"


class InvalidParametersError(BadRequestError):
    spec_code = "INVALID_PARAMETERS"


class NotFoundError(VisualizrAPIError):
    pass


class ModelNotFoundError(NotFoundError):
    spec_code = "MODEL_NOT_FOUND"


class RequestNotFoundError(NotFoundError):
    spec_code = "REQUEST_NOT_FOUND"


class CharacterNotFoundError(NotFoundError):
    spec_code = "CHARACTER_NOT_FOUND"


class RouteNotFoundError(NotFoundError):
    spec_code = "ROUTE_NOT_FOUND"


class InsufficientGpuMemoryError(VisualizrAPIError):
    spec_code = "INSUFFICIENT_GPU_MEMORY"


class InsufficientStorageError(VisualizrAPIError):
    spec_code = "INSUFFICIENT_STORAGE"


class IdempotencyKeyReusedError(VisualizrAPIError):
    """The ``idempotency_key`` was already used for a different request (``details["request_id"]``: its job)."""

    spec_code = "IDEMPOTENCY_KEY_REUSED"


class DatabaseUnavailableError(VisualizrAPIError):
    """The server's shared job database cannot be reached (nothing was written): retry shortly."""

    spec_code = "DATABASE_UNAVAILABLE"


class ObjectStoreUnavailableError(VisualizrAPIError):
    """The server's object store (the S3 bucket of its files) cannot be reached: retry shortly."""

    spec_code = "OBJECT_STORE_UNAVAILABLE"


class ModelLoadFailedError(VisualizrAPIError):
    spec_code = "MODEL_LOAD_FAILED"


class GenerationFailedError(VisualizrAPIError):
    """``GENERATION_FAILED`` from an HTTP call, or a job that ended ``failed`` (then ``error`` is the job's
    error object, whose code may be another one, e.g. ``INSUFFICIENT_GPU_MEMORY``, and ``job`` its status)."""

    spec_code = "GENERATION_FAILED"

    def __init__(
        self,
        status: int | None,
        code: str,
        message: str,
        details: Any = None,
        *,
        error: ErrorInfo | None = None,
        job: GenerationStatus | None = None,
    ) -> None:
        super().__init__(status, code, message, details)
        self.error = error
        self.job = job


class GenerationCancelledError(VisualizrAPIError):
    """A job ended ``cancelled`` while being waited for."""

    spec_code = "CANCELLED"

    def __init__(self, request_id: str, job: GenerationStatus | None = None) -> None:
        super().__init__(None, self.spec_code, f"Generation request {request_id!r} was cancelled", None)
        self.request_id = request_id
        self.job = job


class QueueFullError(VisualizrAPIError):
    spec_code = "QUEUE_FULL"

    def __init__(
        self, status: int | None, code: str, message: str, details: Any = None, retry_after: float | None = None
    ) -> None:
        super().__init__(status, code, message, details)
        self.retry_after = retry_after  # seconds, from Retry-After (or details.retry_after_seconds)


class UnexpectedResponseError(VisualizrAPIError):
    spec_code = "UNEXPECTED_RESPONSE"


ERRORS_BY_CODE: dict[str, type[VisualizrAPIError]] = {
    cls.spec_code: cls
    for cls in (
        AuthenticationError,
        InvalidPromptError,
        InvalidParametersError,
        ModelNotFoundError,
        RequestNotFoundError,
        RouteNotFoundError,
        CharacterNotFoundError,
        InsufficientGpuMemoryError,
        InsufficientStorageError,
        IdempotencyKeyReusedError,
        DatabaseUnavailableError,
        ObjectStoreUnavailableError,
        ModelLoadFailedError,
        GenerationFailedError,
        QueueFullError,
    )
}
_FALLBACK_BY_STATUS: dict[int, type[VisualizrAPIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    503: QueueFullError,
    507: InsufficientGpuMemoryError,
}


class _ErrorBody(msgspec.Struct):
    code: str = ""
    message: str = ""
    details: Any = None


class _ErrorEnvelope(msgspec.Struct):
    error: _ErrorBody


def _retry_after(headers: Mapping[str, str], details: Any) -> float | None:
    raw = headers.get("retry-after") or headers.get("Retry-After")
    if raw is None and isinstance(details, dict):
        raw = details.get("retry_after_seconds")
    try:
        return float(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None  # an HTTP-date Retry-After: not used by this server


def api_error(
    status: int | None, code: str, message: str, details: Any = None, headers: Mapping[str, str] | None = None
) -> VisualizrAPIError:
    """The exception for one error (code first; 401/403 always mean authentication; then the HTTP status)."""
    if status in (401, 403):
        cls: type[VisualizrAPIError] = AuthenticationError
    else:
        cls = ERRORS_BY_CODE.get(code) or _FALLBACK_BY_STATUS.get(status or 0, VisualizrAPIError)
    if cls is QueueFullError:
        return QueueFullError(status, code, message, details, retry_after=_retry_after(headers or {}, details))
    return cls(status, code, message, details)


def error_from_response(status: int, headers: Mapping[str, str], content: bytes) -> VisualizrAPIError:
    """The exception for a non-2xx answer; bodies other than the spec's error object still give one."""
    try:
        body = msgspec.json.decode(content, type=_ErrorEnvelope).error
    except (msgspec.DecodeError, msgspec.ValidationError):
        text = content.decode("utf-8", errors="replace").strip()[:500]
        return api_error(status, f"HTTP_{status}", text or f"HTTP {status}", None, headers)
    return api_error(status, body.code or f"HTTP_{status}", body.message or f"HTTP {status}", body.details, headers)


def job_error(job: GenerationStatus) -> GenerationFailedError:
    """The exception for a job whose status is ``failed``."""
    info = job.error
    code = info.code if info is not None else "GENERATION_FAILED"
    message = info.message if info is not None and info.message else f"Generation {job.request_id!r} failed"
    details = info.details if info is not None else None
    return GenerationFailedError(None, code, message, details, error=info, job=job)
