"""A job's files: its asset files (video, thumbnail, preview, and the keyframe of a job that had one) and the
source image of an image-to-video job, kept in the object store (``JobFiles``); the blocking helpers below it run
through ``asyncio.to_thread``."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from pathlib import Path

import av
import msgspec
import numpy as np
from PIL import Image

from visualizr.frontend.infra.objects import ObjectStore, ObjectStoreError, unlink_all
from visualizr.frontend.jobs.naming import ASSETS_KEY_PREFIX, asset_key, asset_names, end_input_path, keyframe_name
from visualizr.frontend.jobs.record import VideoMetadata

logger = logging.getLogger("visualizr.frontend.jobs")
PROBE_TIMEOUT_S = 5.0  # a health probe of the store waits no longer
WORK_DIR = "work"  # under the data folder: where videos are encoded when the objects live elsewhere (S3)


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


def probe_video(source: Path | bytes) -> VideoMetadata:
    """Metadata read back from the written file or its bytes (not from the request)."""
    size = len(source) if isinstance(source, bytes) else source.stat().st_size
    with av.open(io.BytesIO(source) if isinstance(source, bytes) else str(source)) as container:
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
        file_size_bytes=size,
        format=fmt,
        codec=codec,
        num_frames=num_frames,
    )


def _probe_file(path: Path) -> VideoMetadata | None:
    return probe_video(path) if path.is_file() else None


def remove_assets(assets: VideoAssets) -> int:
    """Delete the files (missing ones are skipped); returns the bytes freed by the files actually removed."""
    return unlink_all(assets.files)


def bitrate_kbps(metadata: VideoMetadata) -> int:
    """Average bitrate of a probed file: its bits over its duration, in kilobits (1000 bits) per second."""
    if metadata.duration_seconds <= 0:
        return 0
    return round(metadata.file_size_bytes * 8 / metadata.duration_seconds / 1000)


def decode_input(key: str, png: bytes, width: int, height: int) -> np.ndarray:
    """A stored source image as uint8 [height, width, 3]; ValueError when it is not a picture of that size."""
    try:
        with Image.open(io.BytesIO(png)) as image:
            pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (OSError, SyntaxError) as exc:
        raise ValueError(f"the source image {key} cannot be read: {exc}") from None
    if pixels.shape != (height, width, 3):
        raise ValueError(f"the source image {key} is {list(pixels.shape)}, expected {[height, width, 3]}")
    return np.ascontiguousarray(pixels)


class JobFiles:
    """A job's files in the object store (docs/ARCHITECTURE.md, "Files in the object store"). Outputs are encoded
    into ``encode_dir`` (the store's own folder when it is the data folder, else a local work folder), then
    published whole, the MP4 last; source images are put at submission and read back by whichever replica runs
    the job."""

    def __init__(self, store: ObjectStore, work_dir: Path) -> None:
        self.store = store
        own = store.folder(ASSETS_KEY_PREFIX)
        self.in_place = own is not None  # encoded where the objects live: publishing renames nothing more
        self.encode_dir = own if own is not None else Path(work_dir)
        self._background: set[asyncio.Task[object]] = set()
        self.outage: str | None = None  # why the store failed last; jobs wait while set, cleared when it answers

    def outputs_of(self, video_id: str, keyframe: bool = True) -> VideoAssets:
        return VideoAssets.of(self.encode_dir, video_id, keyframe)

    async def publish(self, assets: VideoAssets) -> None:
        """Each encoded file made an object (the MP4 last: its object means the others exist); on a failure the
        ones published are deleted. The local copies are gone afterwards unless they are the objects."""
        try:
            for path in sorted(assets.files, key=lambda p: p == assets.video):
                await self.store.publish(asset_key(path.name), path)
        except BaseException as exc:
            if isinstance(exc, ObjectStoreError):
                self.outage = exc.message
            with contextlib.suppress(Exception):
                await self.discard(assets)
            raise
        finally:
            if not self.in_place:
                await asyncio.to_thread(remove_assets, assets)

    async def discard(self, assets: VideoAssets) -> int:
        """Delete a video's objects (and any local copy); returns the bytes the objects held."""
        freed = await self.store.delete(asset_key(path.name) for path in assets.files)
        if not self.in_place:
            await asyncio.to_thread(remove_assets, assets)
        return freed

    async def probe(self, file_name: str, stored: VideoMetadata | None = None) -> VideoMetadata | None:
        """A published video's metadata; None when it is gone. The data folder probes the file; S3 checks that
        the object is there (HEAD) and answers ``stored`` (probed from the same bytes when the job completed: no
        download), probing the object's bytes only for a job that has none."""
        own = self.store.folder(ASSETS_KEY_PREFIX)
        if own is not None:
            return await asyncio.to_thread(_probe_file, own / file_name)
        key = asset_key(file_name)
        found = await self.store.info(key)
        if found is None:
            return None
        if stored is not None:
            return msgspec.structs.replace(stored, file_size_bytes=found.size)
        data = await self.store.get_bytes(key)
        return None if data is None else await asyncio.to_thread(probe_video, data)

    async def put_input(self, key: str, png: bytes) -> None:
        await self.store.put_bytes(key, png)

    async def load_input(self, key: str, width: int, height: int) -> np.ndarray:
        """The stored source image, uint8 [H, W, 3]; ValueError when it is gone or not that size."""
        try:
            png = await self.store.get_bytes(key)
        except ObjectStoreError as exc:
            self.outage = exc.message
            raise
        if png is None:
            raise ValueError(f"the source image {key} cannot be read: it is gone")
        return await asyncio.to_thread(decode_input, key, png, width, height)

    async def remove_input(self, key: str) -> None:
        """Delete a job's source image (and its end image, if it has one)."""
        await self.store.delete([key, end_input_path(key)])

    def drop_input(self, key: str) -> None:
        """Forget a retired job's source image (and end image) now: a file of the data folder is unlinked inline
        (small), an object is deleted in the background (a failure is logged; the object stays)."""
        folder, _, name = key.rpartition("/")
        own = self.store.folder(folder)
        if own is not None:
            for path in (own / name, own / end_input_path(name)):
                with contextlib.suppress(OSError):
                    path.unlink(missing_ok=True)
            return
        task = asyncio.get_running_loop().create_task(self._delete_logged(key))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        """Wait for the background deletes (at shutdown)."""
        await asyncio.gather(*self._background)

    async def _delete_logged(self, key: str) -> None:
        try:
            await self.store.delete([key, end_input_path(key)])
        except Exception as exc:
            logger.warning("could not delete %s from %s: %s", key, self.store.describe(), exc)

    async def problem(self) -> str | None:
        """Why the store cannot be used now (health); None when it can. Ends or starts an outage."""
        try:
            self.outage = await asyncio.wait_for(self.store.problem(), PROBE_TIMEOUT_S)
        except TimeoutError:
            self.outage = f"the object store {self.store.describe()} did not answer in {PROBE_TIMEOUT_S:.0f} s"
        return self.outage

    async def check(self) -> None:
        """ObjectStoreError (503) when the store cannot be used now."""
        reason = await self.problem()
        if reason is not None:
            raise ObjectStoreError(reason)
