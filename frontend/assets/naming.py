"""Video ids, file names and URLs of assets, all derived from the generation service's own helpers
(``video_id_of``, ``asset_names``, ``ASSETS_URL_PREFIX``) so the two packages can never disagree."""

from __future__ import annotations

import re

from visualizr.frontend.generation.encoding import asset_names
from visualizr.frontend.generation.naming import VIDEO_ID_PREFIXES

# asset id prefix -> request id prefix: "video_" -> "video_req_" (videos), "anim_" -> "anim_req_" (animations)
REQUEST_PREFIX_BY_VIDEO_PREFIX = {video: request for request, video in VIDEO_ID_PREFIXES.items()}
MAX_HEX_CHARS = 64  # request ids carry a 32-hex uuid4; anything much longer is not one of ours

_STEM = "X"
VIDEO_SUFFIX, THUMBNAIL_SUFFIX, PREVIEW_SUFFIX = (name.removeprefix(_STEM) for name in asset_names(_STEM))
MEDIA_TYPES = {VIDEO_SUFFIX: "video/mp4", THUMBNAIL_SUFFIX: "image/jpeg", PREVIEW_SUFFIX: "image/gif"}

_ID = f"(?:{'|'.join(map(re.escape, REQUEST_PREFIX_BY_VIDEO_PREFIX))})[0-9a-f]{{1,{MAX_HEX_CHARS}}}"
VIDEO_ID_RE = re.compile(_ID)
ASSET_FILE_RE = re.compile(f"({_ID})({'|'.join(re.escape(s) for s in MEDIA_TYPES)})")


def request_id_of(video_id: str) -> str | None:
    """``video_<hex>`` -> ``video_req_<hex>``, ``anim_<hex>`` -> ``anim_req_<hex>`` (inverse of ``video_id_of``);
    None for anything else."""
    if not VIDEO_ID_RE.fullmatch(video_id):
        return None
    prefix = next(p for p in REQUEST_PREFIX_BY_VIDEO_PREFIX if video_id.startswith(p))
    return REQUEST_PREFIX_BY_VIDEO_PREFIX[prefix] + video_id.removeprefix(prefix)


def media_type_of(file_name: str) -> str | None:
    """The content type of one of the service's asset files; None for any other name (never served)."""
    match = ASSET_FILE_RE.fullmatch(file_name)
    return MEDIA_TYPES[match.group(2)] if match else None


def shown(value: str, limit: int = 120) -> str:
    """A client-supplied value cut short enough to echo in an error message."""
    return value[:limit]
