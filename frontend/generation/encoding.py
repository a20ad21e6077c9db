"""Frames -> H.264 MP4 (PyAV/libx264), JPEG thumbnail and animated GIF preview (Pillow); metadata read back.

Everything here is blocking: call it through ``asyncio.to_thread``. Files are written to a temporary name in
the same folder and renamed, so a half-written asset is never served.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import msgspec
import numpy as np
from PIL import Image

from visualizr.frontend.generation.schemas import VideoMetadata

THUMBNAIL_QUALITY = 90
PREVIEW_MAX_SIDE = 256
PREVIEW_MAX_FRAMES = 48
X264_OPTIONS = {"crf": "18", "preset": "veryfast"}


class VideoAssets(msgspec.Struct, frozen=True):
    video: Path
    thumbnail: Path
    preview: Path


def asset_names(video_id: str) -> tuple[str, str, str]:
    return f"{video_id}.mp4", f"{video_id}_thumb.jpg", f"{video_id}_preview.gif"


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
        with av.open(
            str(tmp), mode="w", format="mp4", container_options={"movflags": "+faststart"}
        ) as container:
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


def probe_video(path: Path) -> VideoMetadata:
    """Metadata read back from the written file (not from the request)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        num_frames = int(stream.frames)
        if num_frames <= 0:
            num_frames = sum(1 for _ in container.decode(stream))
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps_value = float(rate) if rate else 0.0
        fps: int | float = int(fps_value) if fps_value.is_integer() else round(fps_value, 3)
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        else:
            duration = num_frames / fps_value if fps_value else 0.0
        codec = stream.codec_context.name
        width, height = stream.codec_context.width, stream.codec_context.height
        fmt = "mp4" if "mp4" in container.format.name.split(",") else container.format.name.split(",")[0]
    return VideoMetadata(
        duration_seconds=round(duration, 3),
        fps=fps,
        resolution=f"{width}x{height}",
        file_size_bytes=path.stat().st_size,
        format=fmt,
        codec=codec,
        num_frames=num_frames,
    )


def encode_assets(
    frames: np.ndarray, fps: int, directory: Path, video_id: str
) -> tuple[VideoAssets, VideoMetadata]:
    directory.mkdir(parents=True, exist_ok=True)
    video_name, thumb_name, preview_name = asset_names(video_id)
    assets = VideoAssets(
        video=directory / video_name, thumbnail=directory / thumb_name, preview=directory / preview_name
    )
    try:
        write_mp4(frames, fps, assets.video)
        write_thumbnail(frames, assets.thumbnail)
        write_preview_gif(frames, fps, assets.preview)
        return assets, probe_video(assets.video)
    except BaseException:
        remove_assets(assets)
        raise


def remove_assets(assets: VideoAssets) -> int:
    """Delete the three files (missing ones are skipped); returns the bytes freed by the files actually removed."""
    freed = 0
    for path in (assets.video, assets.thumbnail, assets.preview):
        try:
            size = path.lstat().st_size  # a link's own size: unlink removes the link, not its target
            path.unlink()
        except FileNotFoundError:
            continue
        freed += size
    return freed


def bitrate_kbps(metadata: VideoMetadata) -> int:
    """Average bitrate of a probed file: its bits over its duration, in kilobits (1000 bits) per second."""
    if metadata.duration_seconds <= 0:
        return 0
    return round(metadata.file_size_bytes * 8 / metadata.duration_seconds / 1000)
