"""The synchronous client (httpx.Client; WebSocket progress through ``websockets.sync``)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx
from websockets.exceptions import WebSocketException
from websockets.sync.client import connect as ws_connect

from visualizr_client import _core
from visualizr_client import models as m
from visualizr_client._errors import error_from_response

T = TypeVar("T")


class VisualizrClient:
    """Blocking client of the Visualizr API.

    >>> with VisualizrClient("http://localhost:8002", api_key="...") as client:
    ...     job = client.generate_video("a red balloon", num_frames=8, fps=8)
    ...     done = client.wait_for_completion(job.request_id)
    ...     client.download(done.result.video_url, "balloon.mp4")

    The generate methods take ``idempotency_key=``: sent as the ``Idempotency-Key`` header, so retrying a
    request whose answer was lost returns the first job instead of queuing a second one.
    """

    def __init__(
        self,
        base_url: str = _core.DEFAULT_BASE_URL,
        api_key: str | None = None,
        timeout: float | None = _core.DEFAULT_TIMEOUT,
        *,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = _core.Settings(base_url, api_key, timeout, dict(headers or {}))
        self._http = httpx.Client(transport=transport, **self.settings.client_kwargs())

    @property
    def base_url(self) -> str:
        return self.settings.base_url

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> VisualizrClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _call(self, call: _core.Call[T]) -> T:
        with _core.connection_errors(f"{call.method} {call.path}"):
            response = self._http.request(call.method, call.path, **call.options())
        return call.parse(response.status_code, response.headers, response.content)

    # --- generation -------------------------------------------------------------------------------------

    def generate_video(self, prompt: str, *, idempotency_key: str | None = None, **params: Any) -> m.GenerationAccepted:
        """Queue a text-to-video job; ``params`` are the reference's body fields (width, num_frames, seed...) and
        ``webhook_url`` / ``webhook_events`` (a list: completed, failed, cancelled, progress)."""
        return self._call(_core.generate_video(prompt, params, idempotency_key))

    def quote(self, prompt: str, **params: Any) -> m.Quote:
        """What ``generate_video(prompt, **params)`` would get now (queue position, wait and run seconds, frames,
        whether it fits), without making a job."""
        return self._call(_core.quote_video(prompt, params))

    def generate_video_from_image(
        self,
        image: str | os.PathLike[str] | bytes,
        motion_prompt: str,
        *,
        end_image: str | os.PathLike[str] | bytes | None = None,
        idempotency_key: str | None = None,
        **params: Any,
    ) -> m.GenerationAccepted:
        """Queue an image-to-video job (multipart upload); ``end_image``: the video's last frame (keyframes, where
        the model's card has supports_end_image); ``params``: duration_seconds, fps, motion_strength..."""
        call = _core.generate_video_from_image(image, motion_prompt, params, idempotency_key, end_image)
        return self._call(call)

    def generate_character_animation(
        self, character_id: str, *, idempotency_key: str | None = None, **params: Any
    ) -> m.GenerationAccepted:
        """Queue a character animation; ``params``: action, emotion, background, duration_seconds, resolution..."""
        return self._call(_core.generate_character_animation(character_id, params, idempotency_key))

    def get_status(self, request_id: str) -> m.GenerationStatus:
        return self._call(_core.get_status(request_id))

    def cancel(self, request_id: str) -> m.CancelResult:
        return self._call(_core.cancel(request_id))

    def wait_for_completion(
        self, request_id: str, timeout: float | None = 300, poll_interval: float = _core.DEFAULT_POLL_INTERVAL
    ) -> m.GenerationStatus:
        """Poll until the job completes. Raises GenerationFailedError (``.error``), GenerationCancelledError
        or GenerationTimeoutError (a TimeoutError)."""
        deadline = _core.Deadline(timeout)
        while True:
            job = self.get_status(request_id)
            if _core.finished(job) is not None:
                return job
            if deadline.expired:
                raise deadline.error(request_id, job.status)
            time.sleep(deadline.sleep_for(poll_interval))

    def stream_progress(
        self, request_id: str, timeout: float | None = None, previews: bool = False
    ) -> Iterator[m.StreamMessage]:
        """Progress of one job over the WebSocket: ProgressMessage... (and PreviewMessage... with ``previews``)
        then one CompletedMessage, FailedMessage or CancelledMessage, after which the iterator ends (failed /
        cancelled do not raise)."""
        deadline = _core.Deadline(timeout)
        try:
            with ws_connect(
                self.settings.ws_url,
                additional_headers=self.settings.ws_headers,
                open_timeout=self.settings.timeout,
            ) as ws:
                ws.send(_core.subscribe_frame(request_id, previews))
                while True:
                    message = _core.parse_ws_message(ws.recv(timeout=deadline.remaining()), request_id)
                    if message is None:
                        continue
                    yield message
                    if _core.is_terminal(message):
                        return
        except TimeoutError as exc:
            raise (deadline.error(request_id) if deadline.expired else _core.stream_closed(request_id, exc)) from exc
        except (WebSocketException, OSError) as exc:
            raise _core.ws_failure(request_id, exc) from exc

    # --- models -----------------------------------------------------------------------------------------

    def list_models(self) -> list[m.ModelSummary]:
        return self._call(_core.list_models()).models

    def get_model(self, model_id: str) -> m.ModelDetail:
        return self._call(_core.get_model(model_id))

    def load_model(self, model_id: str) -> m.ModelLoadResult:
        return self._call(_core.load_model(model_id))

    def unload_model(self, model_id: str) -> m.ModelUnloadResult:
        return self._call(_core.unload_model(model_id))

    # --- assets -----------------------------------------------------------------------------------------

    def list_videos(
        self,
        limit: int | None = None,
        offset: int | None = None,
        model: str | None = None,
        start_date: str | None = None,
        end_date: str | None = None,
    ) -> m.VideoList:
        return self._call(_core.list_videos(limit, offset, model, start_date, end_date))

    def get_video(self, video_id: str) -> m.VideoDetail:
        return self._call(_core.get_video(video_id))

    def delete_video(self, video_id: str) -> m.VideoDeleteResult:
        return self._call(_core.delete_video(video_id))

    def download(self, url_or_path: str, dest: str | os.PathLike[str]) -> Path:
        """Stream a file (a result's ``video_url`` or any URL) to ``dest`` (a file, or a directory to keep the
        URL's file name); written atomically. Returns the file's path."""
        url = self.settings.absolute(url_or_path)
        path = _core.download_target(url, dest)
        with _core.connection_errors(f"GET {url}"), self._http.stream("GET", url) as response:
            if response.status_code != 200:
                raise error_from_response(response.status_code, response.headers, response.read())
            with _core.atomic_file(path) as handle:
                for chunk in response.iter_bytes(_core.CHUNK_SIZE):
                    handle.write(chunk)
        return path

    # --- characters -------------------------------------------------------------------------------------

    def create_character(
        self,
        name: str,
        images: Sequence[str | os.PathLike[str] | bytes],
        description: str | None = None,
        character_id: str | None = None,
    ) -> m.CharacterInfo:
        """Register a character with one to four reference pictures (file paths or encoded bytes)."""
        return self._call(_core.create_character(name, images, description, character_id))

    def list_characters(self, limit: int | None = None, offset: int | None = None) -> m.CharacterList:
        return self._call(_core.list_characters(limit, offset))

    def get_character(self, character_id: str) -> m.CharacterInfo:
        return self._call(_core.get_character(character_id))

    def delete_character(self, character_id: str) -> m.CharacterDeleteResult:
        return self._call(_core.delete_character(character_id))

    # --- system -----------------------------------------------------------------------------------------

    def health(self) -> m.HealthStatus:
        return self._call(_core.health())

    def metrics(self) -> m.Metrics:
        return self._call(_core.metrics())
