"""Frames -> H.264 MP4 (PyAV/libx264), JPEG thumbnail and animated GIF preview (Pillow); metadata read back.

The preview is for hovering over a gallery card, so it is small: one shared palette, no dithering (both help
LZW), at most PREVIEW_LADDER[0]'s size, frame rate and colours. Its bytes are bounded by the MP4's:
``preview <= max(PREVIEW_MAX_RATIO x mp4, PREVIEW_MIN_BUDGET_BYTES)``. The rungs of PREVIEW_LADDER are tried in
order (smaller, slower, fewer colours) until one fits; if none does, the middle frame alone (a still) is written.

Everything here is blocking: call it through ``asyncio.to_thread``. Files are written to a temporary name in
the same folder and renamed, so a half-written asset is never served.
"""

from __future__ import annotations

import io
import os
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import av
import numpy as np
from PIL import Image

from visualizr.frontend.jobs.files import VideoAssets, probe_video, remove_assets
from visualizr.frontend.jobs.record import VideoMetadata

THUMBNAIL_QUALITY = 90
PREVIEW_MAX_FRAMES = 48
PREVIEW_MAX_RATIO = 0.75
PREVIEW_MIN_BUDGET_BYTES = 8 * 1024


class PreviewRung(NamedTuple):
    max_side: int  # pixels on the long side (never upscaled)
    max_fps: float
    colors: int


PREVIEW_LADDER = (
    PreviewRung(160, 8, 64),
    PreviewRung(144, 8, 48),
    PreviewRung(128, 8, 48),
    PreviewRung(112, 6, 40),
    PreviewRung(96, 6, 32),
    PreviewRung(80, 6, 32),
    PreviewRung(64, 4, 24),
    PreviewRung(48, 4, 16),
)
STILL = PreviewRung(48, 0, 16)  # max_fps 0: the middle frame only
X264_OPTIONS = {"crf": "18", "preset": "veryfast"}


def _check_frames(frames: np.ndarray) -> None:
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 [F, H, W, 3], got {frames.dtype} {list(frames.shape)}")
    if frames.shape[0] < 1:
        raise ValueError("no frames to encode")
    if frames.shape[1] % 2 or frames.shape[2] % 2:
        raise ValueError(f"yuv420p needs even sizes, got {frames.shape[2]}x{frames.shape[1]}")


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp{path.suffix}")


def write_mp4(frames: np.ndarray, fps: int, path: Path) -> None:
    """Exactly ``len(frames)`` frames at ``fps``: pts i in time base 1/fps, yuv420p, +faststart."""
    _check_frames(frames)
    height, width = int(frames.shape[1]), int(frames.shape[2])
    tmp = _tmp(path)
    try:
        with av.open(str(tmp), mode="w", format="mp4", container_options={"movflags": "+faststart"}) as container:
            stream = container.add_stream("libx264", rate=Fraction(int(fps), 1), options=X264_OPTIONS)
            stream.width = width
            stream.height = height
            stream.pix_fmt = "yuv420p"
            stream.time_base = Fraction(1, int(fps))
            for index, rgb in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
                frame.pts = index
                frame.time_base = Fraction(1, int(fps))
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_thumbnail(frames: np.ndarray, path: Path) -> None:
    """The middle frame as a JPEG."""
    tmp = _tmp(path)
    try:
        Image.fromarray(np.ascontiguousarray(frames[len(frames) // 2])).save(
            tmp, format="JPEG", quality=THUMBNAIL_QUALITY
        )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _preview_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def preview_gif(frames: np.ndarray, fps: int, rung: PreviewRung) -> bytes:
    """A looping GIF of ``frames`` at one rung: every n-th frame (at most ``max_fps``, PREVIEW_MAX_FRAMES),
    resized, quantised to one palette shared by all frames."""
    if rung.max_fps <= 0:
        picked, duration_ms = frames[len(frames) // 2 : len(frames) // 2 + 1], 1000
    else:
        stride = max(1, -(-int(fps) // int(rung.max_fps)), -(-len(frames) // PREVIEW_MAX_FRAMES))
        picked, duration_ms = frames[::stride], max(20, round(1000 * stride / max(1, fps)))
    size = _preview_size(int(frames.shape[2]), int(frames.shape[1]), rung.max_side)
    images = [Image.fromarray(np.ascontiguousarray(rgb)) for rgb in picked]
    if images[0].size != size:
        images = [image.resize(size, Image.Resampling.LANCZOS) for image in images]
    mosaic = Image.new("RGB", (size[0], size[1] * len(images)))
    for index, image in enumerate(images):
        mosaic.paste(image, (0, size[1] * index))
    palette = mosaic.quantize(colors=rung.colors, method=Image.Quantize.MEDIANCUT)
    indexed = [image.quantize(palette=palette, dither=Image.Dither.NONE) for image in images]
    buffer = io.BytesIO()
    indexed[0].save(
        buffer, format="GIF", save_all=True, append_images=indexed[1:], duration=duration_ms, loop=0, optimize=True
    )
    return buffer.getvalue()


def preview_budget(mp4_bytes: int) -> int:
    return max(int(PREVIEW_MAX_RATIO * mp4_bytes), PREVIEW_MIN_BUDGET_BYTES)


def write_preview_gif(frames: np.ndarray, fps: int, path: Path, budget_bytes: int | None = None) -> PreviewRung:
    """The first rung of PREVIEW_LADDER within ``budget_bytes`` (None: the first rung), else a still; returns
    the rung written."""
    for rung in (*PREVIEW_LADDER, STILL):
        data = preview_gif(frames, fps, rung)
        if budget_bytes is None or len(data) <= budget_bytes:
            break
    tmp = _tmp(path)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return rung


def encode_assets(frames: np.ndarray, fps: int, directory: Path, video_id: str) -> tuple[VideoAssets, VideoMetadata]:
    directory.mkdir(parents=True, exist_ok=True)
    assets = VideoAssets.of(directory, video_id)
    try:
        write_mp4(frames, fps, assets.video)
        write_thumbnail(frames, assets.thumbnail)
        write_preview_gif(frames, fps, assets.preview, preview_budget(assets.video.stat().st_size))
        return assets, probe_video(assets.video)
    except BaseException:
        remove_assets(assets)
        raise
