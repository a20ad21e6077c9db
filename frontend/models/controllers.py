"""HTTP routes of model management (``/api/v1/models``)."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.status_codes import HTTP_200_OK

from visualizr.frontend.models.schemas import LoadResponse, ModelDetail, ModelList, UnloadResponse
from visualizr.frontend.models.service import ModelService


class ModelsController(Controller):
    path = "/api/v1/models"
    tags = ["models"]

    @get("/")
    async def list_models(self, models: ModelService) -> ModelList:
        """Every model of the repository (its model card) with its live Triton status and measured speed."""
        return await models.list_models()

    @get("/{model_id:str}")
    async def get_model(self, model_id: str, models: ModelService) -> ModelDetail:
        """The model card, live status (and the last load failure) and performance from the job history."""
        return await models.get_model(model_id)

    @post("/{model_id:str}/load", status_code=HTTP_200_OK)
    async def load_model(self, model_id: str, models: ModelService) -> LoadResponse:
        """Load through Triton (components first). Answers within a few seconds: ``loaded``, ``loading`` (still
        running in the background) or 500 MODEL_LOAD_FAILED with Triton's reason."""
        return await models.load(model_id)

    @post("/{model_id:str}/unload", status_code=HTTP_200_OK)
    async def unload_model(self, model_id: str, models: ModelService) -> UnloadResponse:
        """Unload through Triton (pipeline first); ``freed_memory_gb`` measured with NVML."""
        return await models.unload(model_id)
