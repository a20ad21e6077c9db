"""Frames -> H.264 MP4 (PyAV/libx264), JPEG thumbnail and animated GIF preview (Pillow), and a keyframe stage's
picture -> PNG; metadata read back.

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
# mbtree=0: x264's macroblock-tree rate control (its assembly propagate step) is not reproducible here: the same
# frames gave different bitstreams and pixels in up to a third of encodes run from several threads (asm=0 fixes it
# too, at far more cost); tests/test_mp4_determinism.py. Same seed, same frames, same MP4.
X264_OPTIONS = {"crf": "18", "preset": "veryfast", "x264-params": "mbtree=0"}


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


class PreviewPlan(NamedTuple):
    """What a rung makes of a given video: the GIF is a function of these alone."""

    size: tuple[int, int]
    frame_indices: tuple[int, ...]
    duration_ms: int
    colors: int


def preview_plan(frames: np.ndarray, fps: int, rung: PreviewRung) -> PreviewPlan:
    """Every n-th frame (at most ``max_fps``, PREVIEW_MAX_FRAMES; the middle one for a still), the size."""
    count = len(frames)
    if rung.max_fps <= 0:
        indices, duration_ms = (count // 2,), 1000
    else:
        stride = max(1, -(-int(fps) // int(rung.max_fps)), -(-count // PREVIEW_MAX_FRAMES))
        indices, duration_ms = tuple(range(0, count, stride)), max(20, round(1000 * stride / max(1, fps)))
    size = _preview_size(int(frames.shape[2]), int(frames.shape[1]), rung.max_side)
    return PreviewPlan(size, indices, duration_ms, rung.colors)


def render_preview(frames: np.ndarray, plan: PreviewPlan) -> bytes:
    """A looping GIF of the plan's frames, resized, quantised without dithering to one palette shared by all
    frames (fast octree over all of them: ~15 ms for the demo's 16 frames, median cut took ~150 ms)."""
    images = [Image.fromarray(np.ascontiguousarray(frames[index])) for index in plan.frame_indices]
    if images[0].size != plan.size:
        images = [image.resize(plan.size, Image.Resampling.LANCZOS) for image in images]
    width, height = plan.size
    mosaic = Image.new("RGB", (width, height * len(images)))
    for index, image in enumerate(images):
        mosaic.paste(image, (0, height * index))
    palette = mosaic.quantize(colors=plan.colors, method=Image.Quantize.FASTOCTREE)
    indexed = [image.quantize(palette=palette, dither=Image.Dither.NONE) for image in images]
    buffer = io.BytesIO()
    indexed[0].save(
        buffer, format="GIF", save_all=True, append_images=indexed[1:], duration=plan.duration_ms, loop=0,
        optimize=True,
    )
    return buffer.getvalue()


def preview_gif(frames: np.ndarray, fps: int, rung: PreviewRung) -> bytes:
    """The preview GIF of ``frames`` at one rung."""
    return render_preview(frames, preview_plan(frames, fps, rung))


def preview_budget(mp4_bytes: int) -> int:
    return max(int(PREVIEW_MAX_RATIO * mp4_bytes), PREVIEW_MIN_BUDGET_BYTES)


def write_preview_gif(frames: np.ndarray, fps: int, path: Path, budget_bytes: int | None = None) -> PreviewRung:
    """The first rung of PREVIEW_LADDER within ``budget_bytes`` (None: the first rung), else a still; returns
    the rung written (a rung that would make the same GIF as one before it is skipped)."""
    tried: set[PreviewPlan] = set()  # rungs that make the same GIF (a small video is never upscaled): once
    for rung in (*PREVIEW_LADDER, STILL):
        plan = preview_plan(frames, fps, rung)
        if plan in tried:
            continue
        tried.add(plan)
        data = render_preview(frames, plan)
        if budget_bytes is None or len(data) <= budget_bytes:
            break
    tmp = _tmp(path)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return rung


def write_png(picture: np.ndarray, path: Path) -> None:
    """uint8 [H, W, 3] as a PNG."""
    tmp = _tmp(path)
    try:
        Image.fromarray(np.ascontiguousarray(picture)).save(tmp, format="PNG")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def encode_assets(
    frames: np.ndarray, fps: int, directory: Path, video_id: str, keyframe: np.ndarray | None = None
) -> tuple[VideoAssets, VideoMetadata]:
    directory.mkdir(parents=True, exist_ok=True)
    assets = VideoAssets.of(directory, video_id, keyframe=keyframe is not None)
    try:
        write_mp4(frames, fps, assets.video)
        write_thumbnail(frames, assets.thumbnail)
        write_preview_gif(frames, fps, assets.preview, preview_budget(assets.video.stat().st_size))
        if assets.keyframe is not None:
            write_png(keyframe, assets.keyframe)
        return assets, probe_video(assets.video)
    except BaseException:
        remove_assets(assets)
        raise
