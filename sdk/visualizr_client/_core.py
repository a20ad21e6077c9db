"""Transport-agnostic core shared by the sync and the async client.

Every endpoint is a ``Call``: method, path, query, JSON body and the result type that parses its answer.
The clients only send a ``Call`` over their own httpx client and hand the answer back to ``Call.parse``;
waiting, streaming and downloading reuse the helpers below, so the two clients hold no logic of their own.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Generic, TypeVar
from urllib.parse import quote, urljoin, urlsplit

import httpx
import msgspec
from websockets.exceptions import ConnectionClosed, InvalidStatus

from visualizr_client import models as m
from visualizr_client._errors import (
    AuthenticationError,
    GenerationCancelledError,
    GenerationTimeoutError,
    UnexpectedResponseError,
    VisualizrConnectionError,
    VisualizrError,
    api_error,
    error_from_response,
    job_error,
)

DEFAULT_BASE_URL = "http://localhost:8002"
DEFAULT_TIMEOUT = 30.0
DEFAULT_POLL_INTERVAL = 1.0
WS_PATH = "/api/v1/ws/generation"
USER_AGENT = "visualizr-client/0.1"
IDEMPOTENCY_HEADER = "Idempotency-Key"

T = TypeVar("T")


@dataclass(frozen=True)
class Call(Generic[T]):
    """One HTTP request of the API and the type its 2xx answer decodes to."""

    method: str
    path: str
    result: type[T]
    params: dict[str, Any] | None = None
    json: dict[str, Any] | None = None
    data: dict[str, Any] | None = None  # multipart form fields (with ``files``)
    files: dict[str, tuple[str, bytes, str]] | list[tuple[str, tuple[str, bytes, str]]] | None = None
    headers: dict[str, str] | None = None

    def options(self) -> dict[str, Any]:
        """Keyword arguments of ``httpx.(Async)Client.request`` besides method and path."""
        return {
            "params": self.params,
            "json": self.json,
            "data": self.data,
            "files": self.files,
            "headers": self.headers,
        }

    def parse(self, status: int, headers: Mapping[str, str], content: bytes) -> T:
        if not 200 <= status < 300:
            raise error_from_response(status, headers, content)
        try:
            return msgspec.json.decode(content, type=self.result)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise UnexpectedResponseError(
                status,
                UnexpectedResponseError.spec_code,
                f"{self.method} {self.path}: answer is not a {self.result.__name__}: {exc}",
                {"body": content[:500].decode("utf-8", errors="replace")},
            ) from None


def _segment(value: str) -> str:
    """One path segment: ids can never add path levels or a query."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"an id must be a non-empty string, got {value!r}")
    return quote(value, safe="")


def _compact(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _form_text(value: Any) -> str:
    """A form field's text: a list (``webhook_events``) comma-separated."""
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def _idempotency(key: str | None) -> dict[str, str] | None:
    """The ``Idempotency-Key`` header: sending the same request again with the same key returns the first job
    instead of queuing another (the server answers IDEMPOTENCY_KEY_REUSED for the key with another request)."""
    return None if key is None else {IDEMPOTENCY_HEADER: key}


# --- the endpoint table -----------------------------------------------------------------------------------


def generate_video(
    prompt: str, params: Mapping[str, Any], idempotency_key: str | None = None
) -> Call[m.GenerationAccepted]:
    """Body fields as the reference names them (negative_prompt, width, height, num_frames, fps,
    num_inference_steps, guidance_scale, seed, model, style; webhook_url and webhook_events, a list); None values
    are left out (server defaults)."""
    body = _compact({"prompt": prompt, **params})
    return Call(
        "POST", "/api/v1/generate/video", m.GenerationAccepted, json=body, headers=_idempotency(idempotency_key)
    )


def quote_video(prompt: str, params: Mapping[str, Any]) -> Call[m.Quote]:
    """The body of ``generate_video``, quoted: ``POST /api/v1/generate/quote`` makes no job."""
    return Call("POST", "/api/v1/generate/quote", m.Quote, json=_compact({"prompt": prompt, **params}))


def generate_video_from_image(
    image: str | os.PathLike[str] | bytes,
    motion_prompt: str,
    params: Mapping[str, Any],
    idempotency_key: str | None = None,
    end_image: str | os.PathLike[str] | bytes | None = None,
) -> Call[m.GenerationAccepted]:
    """``image``: a file path or the encoded bytes (PNG, JPEG, WebP or GIF); ``end_image`` likewise, the video's
    last frame (keyframes: models whose card has ``supports_end_image``)."""
    form = {key: _form_text(value) for key, value in _compact({"motion_prompt": motion_prompt, **params}).items()}
    files = {"image": _file_part(image)}
    if end_image is not None:
        files["end_image"] = _file_part(end_image)
    return Call(
        "POST",
        "/api/v1/generate/video/from-image",
        m.GenerationAccepted,
        data=form,
        files=files,
        headers=_idempotency(idempotency_key),
    )


def _file_part(image: str | os.PathLike[str] | bytes) -> tuple[str, bytes, str]:
    """A file path or encoded bytes as a multipart file part."""
    if isinstance(image, bytes):
        return "image", image, "application/octet-stream"
    return Path(image).name, Path(image).read_bytes(), "application/octet-stream"


def generate_character_animation(
    character_id: str, params: Mapping[str, Any], idempotency_key: str | None = None
) -> Call[m.GenerationAccepted]:
    body = _compact({"character_id": character_id, **params})
    path = "/api/v1/generate/character-animation"
    return Call("POST", path, m.GenerationAccepted, json=body, headers=_idempotency(idempotency_key))


def get_status(request_id: str) -> Call[m.GenerationStatus]:
    return Call("GET", f"/api/v1/generate/status/{_segment(request_id)}", m.GenerationStatus)


def cancel(request_id: str) -> Call[m.CancelResult]:
    return Call("DELETE", f"/api/v1/generate/{_segment(request_id)}", m.CancelResult)


def list_models() -> Call[m.ModelList]:
    return Call("GET", "/api/v1/models", m.ModelList)


def get_model(model_id: str) -> Call[m.ModelDetail]:
    return Call("GET", f"/api/v1/models/{_segment(model_id)}", m.ModelDetail)


def load_model(model_id: str) -> Call[m.ModelLoadResult]:
    return Call("POST", f"/api/v1/models/{_segment(model_id)}/load", m.ModelLoadResult)


def unload_model(model_id: str) -> Call[m.ModelUnloadResult]:
    return Call("POST", f"/api/v1/models/{_segment(model_id)}/unload", m.ModelUnloadResult)


def list_videos(
    limit: int | None, offset: int | None, model: str | None, start_date: str | None, end_date: str | None
) -> Call[m.VideoList]:
    query = {"limit": limit, "offset": offset, "model": model, "start_date": start_date, "end_date": end_date}
    return Call("GET", "/api/v1/assets/videos", m.VideoList, params=_compact(query))


def get_video(video_id: str) -> Call[m.VideoDetail]:
    return Call("GET", f"/api/v1/assets/videos/{_segment(video_id)}", m.VideoDetail)


def delete_video(video_id: str) -> Call[m.VideoDeleteResult]:
    return Call("DELETE", f"/api/v1/assets/videos/{_segment(video_id)}", m.VideoDeleteResult)


def create_character(
    name: str,
    images: Sequence[str | os.PathLike[str] | bytes],
    description: str | None = None,
    character_id: str | None = None,
) -> Call[m.CharacterInfo]:
    """``images``: one to four file paths or encoded pictures (PNG, JPEG, WebP or GIF)."""
    form = _compact({"name": name, "description": description, "character_id": character_id})
    files = [("images", _file_part(image)) for image in images]
    return Call("POST", "/api/v1/characters", m.CharacterInfo, data=form, files=files)


def list_characters(limit: int | None, offset: int | None) -> Call[m.CharacterList]:
    return Call("GET", "/api/v1/characters", m.CharacterList, params=_compact({"limit": limit, "offset": offset}))


def get_character(character_id: str) -> Call[m.CharacterInfo]:
    return Call("GET", f"/api/v1/characters/{_segment(character_id)}", m.CharacterInfo)


def delete_character(character_id: str) -> Call[m.CharacterDeleteResult]:
    return Call("DELETE", f"/api/v1/characters/{_segment(character_id)}", m.CharacterDeleteResult)


def health() -> Call[m.HealthStatus]:
    return Call("GET", "/api/v1/health", m.HealthStatus)


def metrics() -> Call[m.Metrics]:
    return Call("GET", "/api/v1/metrics", m.Metrics)


# --- connection settings ----------------------------------------------------------------------------------


class BearerAuth(httpx.Auth):
    """``Authorization: Bearer <key>``, sent only to the configured server (never to another origin a
    download URL may point at)."""

    def __init__(self, api_key: str, origin: tuple[str, str, int | None]) -> None:
        self._header = f"Bearer {api_key}"
        self._origin = origin

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        if (request.url.scheme, request.url.host, request.url.port) == self._origin:
            request.headers["Authorization"] = self._header
        yield request


@dataclass(frozen=True)
class Settings:
    base_url: str = DEFAULT_BASE_URL
    api_key: str | None = None
    timeout: float | None = DEFAULT_TIMEOUT
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url must be an http(s) URL, got {self.base_url!r}")
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments shared by httpx.Client and httpx.AsyncClient."""
        url = httpx.URL(self.base_url)
        return {
            "base_url": self.base_url,
            "timeout": self.timeout,
            "headers": {"User-Agent": USER_AGENT, "Accept": "application/json", **self.headers},
            "auth": BearerAuth(self.api_key, (url.scheme, url.host, url.port)) if self.api_key else None,
        }

    @property
    def ws_url(self) -> str:
        parts = urlsplit(self.base_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        return f"{scheme}://{parts.netloc}{parts.path}{WS_PATH}"

    @property
    def ws_headers(self) -> dict[str, str]:
        return {**self.headers, **({"Authorization": f"Bearer {self.api_key}"} if self.api_key else {})}

    def absolute(self, url_or_path: str) -> str:
        """A result URL (``/assets/video/x.mp4``) or a full URL, as a full URL."""
        if urlsplit(url_or_path).scheme:
            return url_or_path
        return urljoin(self.base_url + "/", url_or_path.lstrip("/"))


@contextlib.contextmanager
def connection_errors(what: str) -> Iterator[None]:
    """Transport failures (refused, reset, timed out) as VisualizrConnectionError / GenerationTimeoutError."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise GenerationTimeoutError(f"{what}: timed out ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        raise VisualizrConnectionError(f"{what}: {exc or type(exc).__name__}") from exc


# --- waiting ----------------------------------------------------------------------------------------------


class Deadline:
    def __init__(self, timeout: float | None) -> None:
        self._end = None if timeout is None else time.monotonic() + timeout
        self.timeout = timeout

    def remaining(self) -> float | None:
        return None if self._end is None else max(0.0, self._end - time.monotonic())

    @property
    def expired(self) -> bool:
        return self._end is not None and time.monotonic() >= self._end

    def sleep_for(self, interval: float) -> float:
        remaining = self.remaining()
        return interval if remaining is None else min(interval, remaining)

    def error(self, request_id: str, last: object = None) -> GenerationTimeoutError:
        state = f" (last state: {last})" if last is not None else ""
        return GenerationTimeoutError(f"Generation {request_id!r} not finished after {self.timeout} s{state}")


def finished(job: m.GenerationStatus) -> m.GenerationStatus | None:
    """The job if it completed, None while it runs; failed / cancelled raise."""
    if job.status == m.COMPLETED:
        return job
    if job.status == m.FAILED:
        raise job_error(job)
    if job.status == m.CANCELLED:
        raise GenerationCancelledError(job.request_id, job)
    return None


# --- WebSocket --------------------------------------------------------------------------------------------

_WS_TYPES = {
    "progress": m.ProgressMessage,
    "preview": m.PreviewMessage,
    "completed": m.CompletedMessage,
    "failed": m.FailedMessage,
    "cancelled": m.CancelledMessage,
    "error": m.ErrorMessage,
}


def subscribe_frame(request_id: str, previews: bool = False) -> str:
    frame: dict[str, object] = {"type": "subscribe", "request_id": request_id}
    if previews:
        frame["previews"] = True
    return msgspec.json.encode(frame).decode()


def parse_ws_message(raw: str | bytes, request_id: str) -> m.StreamMessage | None:
    """A message about ``request_id`` (None for anything else); an ``error`` message raises its API error."""
    try:
        data = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return None
    if not isinstance(data, dict) or data.get("type") not in _WS_TYPES:
        return None
    if data.get("request_id") not in (request_id, None):
        return None
    try:
        message = msgspec.convert(data, type=_WS_TYPES[data["type"]])
    except msgspec.ValidationError as exc:
        raise UnexpectedResponseError(
            None, UnexpectedResponseError.spec_code, f"bad WebSocket message: {exc}", data
        ) from None
    if isinstance(message, m.ErrorMessage):
        raise api_error(None, message.error.code, message.error.message, message.error.details)
    return message


def is_terminal(message: m.StreamMessage) -> bool:
    return isinstance(message, m.TERMINAL_MESSAGES)


WS_UNAUTHORIZED_CLOSE_CODE = 4401  # the server closes an unauthenticated socket with it (no HTTP 401 possible)


def ws_failure(request_id: str, exc: BaseException) -> VisualizrError:
    """What a failed WebSocket means: the handshake's HTTP error answer (e.g. 401 UNAUTHORIZED) as its API error,
    close code 4401 as AuthenticationError, anything else as VisualizrConnectionError."""
    if isinstance(exc, InvalidStatus):
        response = exc.response
        return error_from_response(response.status_code, response.headers, response.body or b"")
    if isinstance(exc, ConnectionClosed) and exc.rcvd is not None and exc.rcvd.code == WS_UNAUTHORIZED_CLOSE_CODE:
        return AuthenticationError(None, AuthenticationError.spec_code, exc.rcvd.reason or "Unauthorized")
    return stream_closed(request_id, exc)


def stream_closed(request_id: str, exc: BaseException | None = None) -> VisualizrConnectionError:
    reason = f": {exc}" if exc else ""
    return VisualizrConnectionError(f"WebSocket closed before {request_id!r} finished{reason}")


# --- downloads --------------------------------------------------------------------------------------------


def download_target(url: str, dest: str | os.PathLike[str]) -> Path:
    """``dest`` itself, or ``dest/<file name of the URL>`` when ``dest`` is a directory."""
    path = Path(dest)
    if path.is_dir():
        name = Path(urlsplit(url).path).name
        if not name:
            raise ValueError(f"cannot name a file after {url!r}: pass a file path as dest")
        path = path / name
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[IO[bytes]]:
    """A temporary file beside ``path``, renamed onto it only when the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a download gets the usual mode of a new file
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


CHUNK_SIZE = 1 << 16
