"""``GET|HEAD /assets/video/<file>``: the generated files, with byte ranges (video players seek), ETag and
Last-Modified (304 on a matching If-None-Match / If-Modified-Since).

Only the service's own file names (``video_<hex>.mp4``, ``_thumb.jpg``, ``_preview.gif``) are served, and only
when the resolved path (symlinks followed) is a regular file inside ``assets_dir``; anything else is a 404,
whatever the encoding of the request path. Litestar 2.25's ``File`` / static-files router sends whole files
only (no Range), hence this handler.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from litestar import HttpMethod, Request, route
from litestar.response.base import ASGIResponse
from litestar.response.streaming import ASGIStreamingResponse

from visualizr.frontend.assets.ranges import (
    byte_range,
    content_range,
    etag_of,
    http_date,
    if_range_holds,
    not_modified,
)
from visualizr.frontend.assets.service import AssetService
from visualizr.frontend.errors import RequestNotFoundError
from visualizr.frontend.jobs.naming import ASSETS_URL_PREFIX, media_type_of, shown

CHUNK_BYTES = 256 * 1024
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def resolve_asset(assets_dir: Path, file_name: str) -> tuple[Path, os.stat_result] | None:
    """(real path, stat) of a servable asset file, or None. Blocking: call it in a thread."""
    if media_type_of(file_name) is None:
        return None
    root = assets_dir.resolve()
    try:
        path = (root / file_name).resolve(strict=True)
        info = path.stat()
    except (OSError, RuntimeError):  # missing, dangling link, link loop
        return None
    if not path.is_relative_to(root) or not stat.S_ISREG(info.st_mode):
        return None
    return path, info


async def read_span(path: Path, offset: int, length: int) -> AsyncIterator[bytes]:
    """The bytes [offset, offset + length) of a file, read in a thread chunk by chunk. The file is opened on
    the first read, so a response that is never streamed (HEAD, a client gone) holds no descriptor."""
    fd = await asyncio.to_thread(os.open, path, _OPEN_FLAGS)
    try:
        end = offset + length
        while offset < end:
            chunk = await asyncio.to_thread(os.pread, fd, min(CHUNK_BYTES, end - offset), offset)
            if not chunk:  # the file shrank under us: end the body short (the client sees it)
                return
            offset += len(chunk)
            yield chunk
    finally:
        os.close(fd)


def _file_not_found(file_name: str) -> RequestNotFoundError:
    return RequestNotFoundError(f"Asset file {shown(file_name)!r} not found", {"file": shown(file_name)})


@route(
    f"{ASSETS_URL_PREFIX}/{{file_name:str}}",
    http_method=[HttpMethod.GET, HttpMethod.HEAD],
    name="video_assets",
    tags=["assets"],
)
async def serve_asset(file_name: str, request: Request[Any, Any, Any], assets: AssetService) -> ASGIResponse:
    found = await asyncio.to_thread(resolve_asset, assets.assets_dir, file_name)
    if found is None:
        raise _file_not_found(file_name)
    path, info = found
    size = info.st_size
    etag, last_modified = etag_of(size, info.st_mtime_ns), http_date(info.st_mtime)
    headers = {"accept-ranges": "bytes", "etag": etag, "last-modified": last_modified}
    if not_modified(
        request.headers.get("if-none-match"), request.headers.get("if-modified-since"), etag, info.st_mtime
    ):
        return ASGIResponse(status_code=304, headers=headers)

    is_head = request.method == HttpMethod.HEAD
    span = None
    if not is_head and if_range_holds(request.headers.get("if-range"), etag, last_modified):
        span = byte_range(request.headers.get("range"), size)
    first, last = span if span is not None else (0, size - 1)
    length = last - first + 1 if size else 0
    if span is not None:
        headers["content-range"] = content_range(first, last, size)
    media_type = media_type_of(file_name) or "application/octet-stream"
    # set here, not through media_type=: Litestar leaves content-type (and length) off HEAD responses
    headers.update({"content-type": media_type, "content-length": str(length)})
    return ASGIStreamingResponse(
        iterator=read_span(path, first, length),
        status_code=206 if span is not None else 200,
        media_type=media_type,
        headers=headers,
        is_head_response=is_head,
    )
