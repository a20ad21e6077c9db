"""``GET|HEAD /assets/video/<file>``: the generated files, from the object store whatever replica asks, with byte
ranges (video players seek), ETag and Last-Modified (304 on a matching If-None-Match / If-Modified-Since).

Proxied, not redirected to a presigned URL: the API keys (Bearer, ``?api_key=``, studio tickets) keep guarding the
files, the URLs and range semantics stay the same with the data folder and with S3, and the S3 endpoint may be an
internal address clients cannot reach. Only the service's own file names (``video_<hex>.mp4``, ``_thumb.jpg``,
``_preview.gif``, ``_keyframe.png``) are served; anything else is a 404, whatever the encoding of the request path
(the data folder also refuses a link that leaves the assets folder). Litestar 2.25's ``File`` / static-files
router sends whole local files only (no Range), hence this handler.
"""

from __future__ import annotations

from typing import Any

from litestar import HttpMethod, Request, route
from litestar.response.base import ASGIResponse
from litestar.response.streaming import ASGIStreamingResponse

from visualizr.frontend.assets.ranges import (
    byte_range,
    content_range,
    http_date,
    if_range_holds,
    not_modified,
)
from visualizr.frontend.errors import RequestNotFoundError
from visualizr.frontend.jobs.files import JobFiles
from visualizr.frontend.jobs.naming import ASSETS_URL_PREFIX, asset_key, media_type_of, shown


def _file_not_found(file_name: str) -> RequestNotFoundError:
    return RequestNotFoundError(f"Asset file {shown(file_name)!r} not found", {"file": shown(file_name)})


@route(
    f"{ASSETS_URL_PREFIX}/{{file_name:str}}",
    http_method=[HttpMethod.GET, HttpMethod.HEAD],
    name="video_assets",
    tags=["assets"],
)
async def serve_asset(file_name: str, request: Request[Any, Any, Any], files: JobFiles) -> ASGIResponse:
    media_type = media_type_of(file_name)
    found = None if media_type is None else await files.store.info(asset_key(file_name))
    if media_type is None or found is None:
        raise _file_not_found(file_name)
    size = found.size
    etag, last_modified = f'"{found.version}"', http_date(found.modified)
    headers = {"accept-ranges": "bytes", "etag": etag, "last-modified": last_modified}
    if not_modified(
        request.headers.get("if-none-match"), request.headers.get("if-modified-since"), etag, found.modified
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
    # set here, not through media_type=: Litestar leaves content-type (and length) off HEAD responses
    headers.update({"content-type": media_type, "content-length": str(length)})
    return ASGIStreamingResponse(
        iterator=files.store.read(asset_key(file_name), first, length),
        status_code=206 if span is not None else 200,
        media_type=media_type,
        headers=headers,
        is_head_response=is_head,
    )
