"""Request ids, asset (video) ids and the URL the asset files are served under."""

from __future__ import annotations

from visualizr.frontend.generation.schemas import KIND_CHARACTER

REQUEST_ID_PREFIX = "video_req_"
ANIMATION_REQUEST_ID_PREFIX = "anim_req_"
REQUEST_ID_PREFIX_BY_KIND = {KIND_CHARACTER: ANIMATION_REQUEST_ID_PREFIX}  # any other kind: REQUEST_ID_PREFIX
# request id prefix -> asset (video id) prefix: ``video_req_<hex>`` -> ``video_<hex>``, ``anim_req_`` -> ``anim_``
VIDEO_ID_PREFIXES = {REQUEST_ID_PREFIX: "video_", ANIMATION_REQUEST_ID_PREFIX: "anim_"}
ASSETS_URL_PREFIX = "/assets/video"


def video_id_of(request_id: str) -> str:
    """``video_req_<hex>`` -> ``video_<hex>``, ``anim_req_<hex>`` -> ``anim_<hex>`` (the asset file stem)."""
    for request_prefix, video_prefix in VIDEO_ID_PREFIXES.items():
        if request_id.startswith(request_prefix):
            return video_prefix + request_id.removeprefix(request_prefix)
    return "video_" + request_id


def asset_url(file_name: str) -> str:
    """The URL an asset file is served under."""
    return f"{ASSETS_URL_PREFIX}/{file_name}"
