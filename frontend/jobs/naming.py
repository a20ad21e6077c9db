"""Names of a job's things: request ids, asset (video) ids, asset file names and URLs, the source-image path."""

from __future__ import annotations

import re
import uuid

from visualizr.frontend.jobs.record import KIND_CHARACTER

REQUEST_ID_PREFIX = "video_req_"
ANIMATION_REQUEST_ID_PREFIX = "anim_req_"
REQUEST_ID_PREFIX_BY_KIND = {KIND_CHARACTER: ANIMATION_REQUEST_ID_PREFIX}  # any other kind: REQUEST_ID_PREFIX
# request id prefix -> asset (video id) prefix: ``video_req_<hex>`` -> ``video_<hex>``, ``anim_req_`` -> ``anim_``
VIDEO_ID_PREFIXES = {REQUEST_ID_PREFIX: "video_", ANIMATION_REQUEST_ID_PREFIX: "anim_"}
REQUEST_PREFIX_BY_VIDEO_PREFIX = {video: request for request, video in VIDEO_ID_PREFIXES.items()}
ASSETS_URL_PREFIX = "/assets/video"
MAX_HEX_CHARS = 64  # request ids carry a 32-hex uuid4; anything much longer is not one of ours
INPUTS_DIR = "inputs"  # source images of image-to-video jobs, under the data folder
ASSETS_KEY_PREFIX = "assets/video"  # the asset files' object keys (folder store: under the data folder)

# Asset file suffixes after the video id, and what they are served as. A keyframe (the first frame a keyframe
# stage made from the prompt) is kept beside the video of a job that had one.
VIDEO_SUFFIX, THUMBNAIL_SUFFIX, PREVIEW_SUFFIX = ".mp4", "_thumb.jpg", "_preview.gif"
KEYFRAME_SUFFIX = "_keyframe.png"
MEDIA_TYPES = {
    VIDEO_SUFFIX: "video/mp4",
    THUMBNAIL_SUFFIX: "image/jpeg",
    PREVIEW_SUFFIX: "image/gif",
    KEYFRAME_SUFFIX: "image/png",
}

_ID = f"(?:{'|'.join(map(re.escape, REQUEST_PREFIX_BY_VIDEO_PREFIX))})[0-9a-f]{{1,{MAX_HEX_CHARS}}}"
VIDEO_ID_RE = re.compile(_ID)
ASSET_FILE_RE = re.compile(f"({_ID})({'|'.join(re.escape(s) for s in MEDIA_TYPES)})")


def new_request_id(kind: str) -> str:
    return f"{REQUEST_ID_PREFIX_BY_KIND.get(kind, REQUEST_ID_PREFIX)}{uuid.uuid4().hex}"


def video_id_of(request_id: str) -> str:
    """``video_req_<hex>`` -> ``video_<hex>``, ``anim_req_<hex>`` -> ``anim_<hex>`` (the asset file stem)."""
    for request_prefix, video_prefix in VIDEO_ID_PREFIXES.items():
        if request_id.startswith(request_prefix):
            return video_prefix + request_id.removeprefix(request_prefix)
    return "video_" + request_id


def request_id_of(video_id: str) -> str | None:
    """The inverse of ``video_id_of``; None for anything that is not one of our video ids."""
    if not VIDEO_ID_RE.fullmatch(video_id):
        return None
    prefix = next(p for p in REQUEST_PREFIX_BY_VIDEO_PREFIX if video_id.startswith(p))
    return REQUEST_PREFIX_BY_VIDEO_PREFIX[prefix] + video_id.removeprefix(prefix)


def asset_names(video_id: str) -> tuple[str, str, str]:
    """File names of a video's MP4, JPEG thumbnail and GIF preview."""
    return f"{video_id}{VIDEO_SUFFIX}", f"{video_id}{THUMBNAIL_SUFFIX}", f"{video_id}{PREVIEW_SUFFIX}"


def keyframe_name(video_id: str) -> str:
    """File name of a video's keyframe (a PNG), for the jobs that had one."""
    return f"{video_id}{KEYFRAME_SUFFIX}"


def asset_url(file_name: str) -> str:
    """The URL an asset file is served under."""
    return f"{ASSETS_URL_PREFIX}/{file_name}"


def asset_key(file_name: str) -> str:
    """The object key of an asset file."""
    return f"{ASSETS_KEY_PREFIX}/{file_name}"


def media_type_of(file_name: str) -> str | None:
    """The content type of one of the service's asset files; None for any other name (never served)."""
    match = ASSET_FILE_RE.fullmatch(file_name)
    return MEDIA_TYPES[match.group(2)] if match else None


def input_path(request_id: str) -> str:
    """A job's source image: its object key, relative to the data folder (what the job row stores)."""
    return f"{INPUTS_DIR}/{request_id}.png"


def end_input_path(source_image: str) -> str:
    """A keyframe job's end image (``GenerationParameters.end_image``): beside its source image."""
    return source_image.removesuffix(".png") + "_end.png"


def shown(value: str, limit: int = 120) -> str:
    """A client-supplied value cut short enough to echo in an error message."""
    return value[:limit]
