"""List, describe and delete video assets: completed jobs (the job database) whose MP4 is in the object store.

* The list reads the stored metadata (cheap); with the data folder it keeps the jobs whose MP4 is on disk (one
  directory read); with S3 the database is the truth, and pages it (no bucket listing).
* The details read the file back with PyAV (what is stored; S3: a HEAD, and the metadata probed from the same
  bytes when the job completed).
* A job that is queued, running, failed or cancelled is not an asset: 404 here, like an unknown id.
* Delete removes the job's row first (atomically: of two concurrent deletes one wins, the other gets 404), then
  its objects (video, thumbnail, preview, keyframe); ``freed_space_bytes`` counts only the objects actually
  removed. A completed job whose files are already gone can still be deleted (its row is cleaned up; 0 bytes
  freed). A store that is down answers 503 OBJECT_STORE_UNAVAILABLE before anything is deleted.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable

from visualizr.frontend import clock
from visualizr.frontend.assets.schemas import (
    DeleteVideoResponse,
    GenerationInfo,
    ListedVideo,
    ListedVideoMetadata,
    VideoDetails,
    VideoFileMetadata,
    VideoList,
)
from visualizr.frontend.errors import RequestNotFoundError
from visualizr.frontend.infra.objects import ObjectStoreError
from visualizr.frontend.jobs.files import JobFiles, bitrate_kbps
from visualizr.frontend.jobs.listing import (
    ListedRow,
    ListQuery,
    completed_ids,
    completed_page,
    delete_completed,
    listed_rows,
)
from visualizr.frontend.jobs.naming import asset_names, asset_url, request_id_of, shown, video_id_of
from visualizr.frontend.jobs.record import COMPLETED, JobRecord, VideoMetadata
from visualizr.frontend.jobs.store import JobStore

logger = logging.getLogger("visualizr.frontend.assets")

DELETED = "deleted"


def video_not_found(video_id: str) -> RequestNotFoundError:
    # The reference has no asset-specific error code; REQUEST_NOT_FOUND is the closest of its eight.
    return RequestNotFoundError(
        f"Video {shown(video_id)!r} not found: no completed generation with this id has its video on disk",
        {"video_id": shown(video_id)},
    )


def _listed_metadata(metadata: VideoMetadata | None) -> ListedVideoMetadata:
    if metadata is None:
        return ListedVideoMetadata(duration_seconds=0.0, resolution="0x0", fps=0, file_size_bytes=0)
    return ListedVideoMetadata(
        duration_seconds=metadata.duration_seconds,
        resolution=metadata.resolution,
        fps=metadata.fps,
        file_size_bytes=metadata.file_size_bytes,
    )


class AssetService:
    def __init__(self, store: JobStore, files: JobFiles, *, now: Callable[[], float] = clock.now) -> None:
        self.store = store
        self.files = files
        self._now = now

    def _with_video_stored(self, request_ids: list[str]) -> list[str]:
        """The ids whose MP4 is in the data folder (one directory read, not one stat per job)."""
        try:
            names = set(os.listdir(self.files.encode_dir))
        except FileNotFoundError:
            return []
        return [rid for rid in request_ids if asset_names(video_id_of(rid))[0] in names]

    # ------------------------------------------------------------------ list

    async def list_videos(self, query: ListQuery) -> VideoList:
        if self.files.in_place:
            candidates = await self.store.run(lambda conn: completed_ids(conn, query))
            present = await asyncio.to_thread(self._with_video_stored, candidates)
            page, total = present[query.offset : query.offset + query.limit], len(present)
        else:  # the table is the truth: paginated by the database
            page, total = await self.store.run(lambda conn: completed_page(conn, query))
        rows = await self.store.run(lambda conn: listed_rows(conn, page))
        videos = [self._listed(rows[rid]) for rid in page if rid in rows]  # a row may go between the reads
        return VideoList(videos=videos, total_count=total, has_more=query.offset + len(page) < total)

    @staticmethod
    def _listed(row: ListedRow) -> ListedVideo:
        video_id = video_id_of(row.request_id)
        video, thumbnail, _ = asset_names(video_id)
        return ListedVideo(
            id=video_id,
            url=asset_url(video),
            thumbnail_url=asset_url(thumbnail),
            prompt=row.prompt,
            model=row.model,
            metadata=_listed_metadata(row.metadata),
            created_at=clock.iso(row.completed_at) or "",
        )

    # ------------------------------------------------------------------ details

    async def _completed_record(self, video_id: str) -> JobRecord:
        request_id = request_id_of(video_id)
        record = None if request_id is None else await self.store.get(request_id)
        if record is None or record.status != COMPLETED:
            raise video_not_found(video_id)
        return record

    async def _probe(self, record: JobRecord, file_name: str) -> VideoMetadata | None:
        """The file's own metadata; None when it is gone. A file PyAV cannot read falls back to the stored
        metadata (logged), so one damaged file does not turn its details into a 500."""
        try:
            return await self.files.probe(file_name, record.metadata)
        except FileNotFoundError:
            return None
        except ObjectStoreError:
            raise
        except Exception:
            logger.warning("could not probe %s; answering its stored metadata", file_name, exc_info=True)
            return record.metadata or VideoMetadata(0.0, 0, "0x0", 0, "mp4", "h264")

    async def get_video(self, video_id: str) -> VideoDetails:
        record = await self._completed_record(video_id)
        video, thumbnail, preview = asset_names(video_id)
        metadata = await self._probe(record, video)
        if metadata is None:
            raise video_not_found(video_id)
        return VideoDetails(
            id=video_id,
            url=asset_url(video),
            thumbnail_url=asset_url(thumbnail),
            preview_gif_url=asset_url(preview),
            prompt=record.prompt,
            negative_prompt=record.negative_prompt,
            style=record.style,
            model=record.model,
            parameters=record.parameters,
            metadata=VideoFileMetadata(
                duration_seconds=metadata.duration_seconds,
                resolution=metadata.resolution,
                fps=metadata.fps,
                file_size_bytes=metadata.file_size_bytes,
                format=metadata.format,
                codec=metadata.codec,
                bitrate_kbps=bitrate_kbps(metadata),
            ),
            generation_info=GenerationInfo(
                request_id=record.request_id,
                processing_time_seconds=round(record.processing_time_seconds or 0.0, 3),
                gpu_memory_used_gb=None,
            ),
            created_at=clock.iso(record.completed_at) or "",
            keyframe_url=asset_url(record.keyframe_path) if record.keyframe_path else None,
            character_id=record.character_id,
        )

    # ------------------------------------------------------------------ delete

    async def delete_video(self, video_id: str) -> DeleteVideoResponse:
        request_id = request_id_of(video_id)
        if request_id is None:
            raise video_not_found(video_id)
        await self.files.check()  # a store that is down: 503 before the row goes, so nothing is left behind
        if not await self.store.run(lambda conn: delete_completed(conn, request_id)):
            raise video_not_found(video_id)
        try:
            freed = await self.files.discard(self.files.outputs_of(video_id))
        except ObjectStoreError:
            logger.warning("deleted %s, but its objects were left in the store", video_id)
            raise
        logger.info("deleted %s (%d bytes freed)", video_id, freed)
        return DeleteVideoResponse(
            video_id=video_id, status=DELETED, freed_space_bytes=freed, deleted_at=clock.iso(self._now()) or ""
        )
