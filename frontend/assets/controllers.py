"""HTTP routes of asset management (``/api/v1/assets``) and the asset files (``/assets/video``)."""

from __future__ import annotations

from litestar import Controller, delete, get
from litestar.params import Parameter
from litestar.status_codes import HTTP_200_OK

from visualizr.frontend.assets.filters import parse_list_query
from visualizr.frontend.assets.schemas import DeleteVideoResponse, VideoDetails, VideoList
from visualizr.frontend.assets.service import AssetService


class AssetsController(Controller):
    path = "/api/v1/assets/videos"
    tags = ["assets"]

    @get("/")
    async def list_videos(
        self,
        assets: AssetService,
        limit: str | None = Parameter(query="limit", default=None, description="1..100, default 50"),
        offset: str | None = Parameter(query="offset", default=None, description=">= 0, default 0"),
        model: str | None = Parameter(query="model", default=None),
        start_date: str | None = Parameter(query="start_date", default=None, description="ISO 8601"),
        end_date: str | None = Parameter(query="end_date", default=None, description="ISO 8601"),
    ) -> VideoList:
        """Completed videos whose files exist, newest first. Query values are parsed by us, so each error
        names its field (400 INVALID_PARAMETERS)."""
        return await assets.list_videos(parse_list_query(limit, offset, model, start_date, end_date))

    @get("/{video_id:str}")
    async def get_video(self, video_id: str, assets: AssetService) -> VideoDetails:
        return await assets.get_video(video_id)

    @delete("/{video_id:str}", status_code=HTTP_200_OK)
    async def delete_video(self, video_id: str, assets: AssetService) -> DeleteVideoResponse:
        return await assets.delete_video(video_id)
