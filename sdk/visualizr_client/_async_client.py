"""The asyncio client (httpx.AsyncClient; WebSocket progress through ``websockets.asyncio``).

Same methods as ``VisualizrClient``, awaited; ``stream_progress`` is an async iterator.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import WebSocketException

from visualizr_client import _core
from visualizr_client import models as m
from visualizr_client._errors import error_from_response

T = TypeVar("T")


class AsyncVisualizrClient:
    """Asyncio client of the Visualizr API.

    >>> async with AsyncVisualizrClient(api_key="...") as client:
    ...     job = await client.generate_video("a red balloon", num_frames=8)
    ...     async for message in client.stream_progress(job.request_id):
    ...         print(message)
    """

    def __init__(
        self,
        base_url: str = _core.DEFAULT_BASE_URL,
        api_key: str | None = None,
        timeout: float | None = _core.DEFAULT_TIMEOUT,
        *,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = _core.Settings(base_url, api_key, timeout, dict(headers or {}))
        self._http = httpx.AsyncClient(transport=transport, **self.settings.client_kwargs())

    @property
    def base_url(self) -> str:
        return self.settings.base_url

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncVisualizrClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _call(self, call: _core.Call[T]) -> T:
        with _core.connection_errors(f"{call.method} {call.path}"):
            response = await self._http.request(call.method, call.path, **call.options())
        return call.parse(response.status_code, response.headers, response.content)

    # --- generation -------------------------------------------------------------------------------------

    async def generate_video(
        self, prompt: str, *, idempotency_key: str | None = None, **params: Any
    ) -> m.GenerationAccepted:
        return await self._call(_core.generate_video(prompt, params, idempotency_key))

    async def quote(self, prompt: str, **params: Any) -> m.Quote:
        """What ``generate_video(prompt, **params)`` would get now, without making a job."""
        return await self._call(_core.quote_video(prompt, params))

    async def generate_video_from_image(
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
        return await self._call(call)

    async def generate_character_animation(
        self, character_id: str, *, idempotency_key: str | None = None, **params: Any
    ) -> m.GenerationAccepted:
        """Queue a character animation; ``params``: action, emotion, background, duration_seconds, resolution..."""
        return await self._call(_core.generate_character_animation(character_id, params, idempotency_key))

    async def get_status(self, request_id: str) -> m.GenerationStatus:
        return await self._call(_core.get_status(request_id))

    async def cancel(self, request_id: str) -> m.CancelResult:
        return await self._call(_core.cancel(request_id))

    async def wait_for_completion(
        self, request_id: str, timeout: float | None = 300, poll_interval: float = _core.DEFAULT_POLL_INTERVAL
    ) -> m.GenerationStatus:
        deadline = _core.Deadline(timeout)
        while True:
            job = await self.get_status(request_id)
            if _core.finished(job) is not None:
                return job
            if deadline.expired:
                raise deadline.error(request_id, job.status)
            await asyncio.sleep(deadline.sleep_for(poll_interval))

    async def stream_progress(
        self, request_id: str, timeout: float | None = None, previews: bool = False
    ) -> AsyncIterator[m.StreamMessage]:
        deadline = _core.Deadline(timeout)
        try:
            async with ws_connect(
                self.settings.ws_url,
                additional_headers=self.settings.ws_headers,
                open_timeout=self.settings.timeout,
            ) as ws:
                await ws.send(_core.subscribe_frame(request_id, previews))
                while True:
                    raw = await asyncio.wait_for(ws.recv(), deadline.remaining())
                    message = _core.parse_ws_message(raw, request_id)
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

    async def list_models(self) -> list[m.ModelSummary]:
        return (await self._call(_core.list_models())).models

    async def get_model(self, model_id: str) -> m.ModelDetail:
        return await self._call(_core.get_model(model_id))

    async def load_model(self, model_id: str) -> m.ModelLoadResult:
        return await self._call(_core.load_model(model_id))

    async def unload_model(self, model_id: str) -> m.ModelUnloadResult:
        return await self._call(_core.unload_model(model_id))

    # --- assets -----------------------------------------------------------------------------------------

    async def list_videos(
        self,
        limit: int | None = None,
        offset: int | None = None,
        model: str | None = None,
        start_date: str | None = None,
        end_date: str | None = None,
    ) -> m.VideoList:
        return await self._call(_core.list_videos(limit, offset, model, start_date, end_date))

    async def get_video(self, video_id: str) -> m.VideoDetail:
        return await self._call(_core.get_video(video_id))

    async def delete_video(self, video_id: str) -> m.VideoDeleteResult:
        return await self._call(_core.delete_video(video_id))

    async def download(self, url_or_path: str, dest: str | os.PathLike[str]) -> Path:
        url = self.settings.absolute(url_or_path)
        path = _core.download_target(url, dest)
        with _core.connection_errors(f"GET {url}"):
            async with self._http.stream("GET", url) as response:
                if response.status_code != 200:
                    raise error_from_response(response.status_code, response.headers, await response.aread())
                with _core.atomic_file(path) as handle:
                    async for chunk in response.aiter_bytes(_core.CHUNK_SIZE):
                        handle.write(chunk)
        return path

    # --- characters -------------------------------------------------------------------------------------

    async def create_character(
        self,
        name: str,
        images: Sequence[str | os.PathLike[str] | bytes],
        description: str | None = None,
        character_id: str | None = None,
    ) -> m.CharacterInfo:
        """Register a character with one to four reference pictures (file paths or encoded bytes)."""
        return await self._call(_core.create_character(name, images, description, character_id))

    async def list_characters(self, limit: int | None = None, offset: int | None = None) -> m.CharacterList:
        return await self._call(_core.list_characters(limit, offset))

    async def get_character(self, character_id: str) -> m.CharacterInfo:
        return await self._call(_core.get_character(character_id))

    async def delete_character(self, character_id: str) -> m.CharacterDeleteResult:
        return await self._call(_core.delete_character(character_id))

    # --- system -----------------------------------------------------------------------------------------

    async def health(self) -> m.HealthStatus:
        return await self._call(_core.health())

    async def metrics(self) -> m.Metrics:
        return await self._call(_core.metrics())
