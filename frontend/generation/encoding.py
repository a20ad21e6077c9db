"""Frames -> H.264 MP4 (PyAV/libx264), JPEG thumbnail and animated GIF preview (Pillow); metadata read back.

Everything here is blocking: call it through ``asyncio.to_thread``. Files are written to a temporary name in
the same folder and renamed, so a half-written asset is never served.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from visualizr.frontend.jobs.files import VideoAssets, probe_video, remove_assets
from visualizr.frontend.jobs.record import VideoMetadata

THUMBNAIL_QUALITY = 90
PREVIEW_MAX_SIDE = 256
PREVIEW_MAX_FRAMES = 48
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


def write_preview_gif(frames: np.ndarray, fps: int, path: Path) -> None:
    """A looping GIF at most PREVIEW_MAX_SIDE pixels on its long side, at most PREVIEW_MAX_FRAMES frames."""
    count = len(frames)
    stride = max(1, -(-count // PREVIEW_MAX_FRAMES))
    picked = frames[::stride]
    height, width = int(frames.shape[1]), int(frames.shape[2])
    scale = min(1.0, PREVIEW_MAX_SIDE / max(width, height))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    images = []
    for rgb in picked:
        image = Image.fromarray(np.ascontiguousarray(rgb))
        if image.size != size:
            image = image.resize(size, Image.Resampling.BILINEAR)
        images.append(image.quantize(colors=256, method=Image.Quantize.MEDIANCUT))
    duration_ms = max(20, round(1000 * stride / max(1, fps)))
    tmp = _tmp(path)
    try:
        images[0].save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=duration_ms,
            loop=0,
            optimize=False,
        )
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def encode_assets(frames: np.ndarray, fps: int, directory: Path, video_id: str) -> tuple[VideoAssets, VideoMetadata]:
    directory.mkdir(parents=True, exist_ok=True)
    assets = VideoAssets.of(directory, video_id)
    try:
        write_mp4(frames, fps, assets.video)
        write_thumbnail(frames, assets.thumbnail)
        write_preview_gif(frames, fps, assets.preview)
        return assets, probe_video(assets.video)
    except BaseException:
        remove_assets(assets)
        raise
