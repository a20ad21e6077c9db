"""A job's files: its asset files (video, thumbnail, preview, and the keyframe of a job that had one), read back and
removed, and the stored source image of an image-to-video job. Blocking: call through ``asyncio.to_thread``."""

from __future__ import annotations

from pathlib import Path

import av
import msgspec
import numpy as np
from PIL import Image

from visualizr.frontend.jobs.naming import asset_names, keyframe_name
from visualizr.frontend.jobs.record import VideoMetadata


class VideoAssets(msgspec.Struct, frozen=True):
    video: Path
    thumbnail: Path
    preview: Path
    keyframe: Path | None = None  # a keyframe stage's picture (PNG); None: the job had none

    @classmethod
    def of(cls, directory: Path, video_id: str, keyframe: bool = True) -> VideoAssets:
        """The files of a video; ``keyframe`` False leaves the keyframe out (a job without one)."""
        video, thumbnail, preview = (directory / name for name in asset_names(video_id))
        key = directory / keyframe_name(video_id) if keyframe else None
        return cls(video=video, thumbnail=thumbnail, preview=preview, keyframe=key)

    @property
    def files(self) -> tuple[Path, ...]:
        return tuple(p for p in (self.video, self.thumbnail, self.preview, self.keyframe) if p is not None)


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


def remove_assets(assets: VideoAssets) -> int:
    """Delete the files (missing ones are skipped); returns the bytes freed by the files actually removed."""
    freed = 0
    for path in assets.files:
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


def write_input(data_dir: Path, relative: str, png: bytes) -> None:
    """Store a source image (written to a temporary name, then renamed)."""
    path = data_dir / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(png)
    tmp.replace(path)


def remove_input(data_dir: Path, relative: str) -> None:
    (data_dir / relative).unlink(missing_ok=True)


def load_input(data_dir: Path, relative: str, width: int, height: int) -> np.ndarray:
    """The stored source image as uint8 [height, width, 3]; ValueError when it is gone or not that size."""
    path = data_dir / relative
    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (OSError, SyntaxError) as exc:
        raise ValueError(f"the source image {relative} cannot be read: {exc}") from None
    if pixels.shape != (height, width, 3):
        raise ValueError(f"the source image {relative} is {list(pixels.shape)}, expected {[height, width, 3]}")
    return np.ascontiguousarray(pixels)
