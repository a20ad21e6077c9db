"""A quote (POST /api/v1/generate/quote): what a text-to-video request would get if submitted now, without creating
a job. The body is validated by the video route's code, with its 400s, except a parameter beyond the model's range
(its error names ``min``/``max``), which is answered (200) as ``fits: false`` with that field and limit; so is a
request that needs more GPU memory than is free (``gpu_memory``: the route's 507). Otherwise the queue position it
would get (0: a worker here takes it at once), the predicted wait and run (``Standing.quote``), the frames it makes
and whether its model is loaded (else the run includes the load)."""

from __future__ import annotations

from visualizr.frontend.catalog import ModelCatalog
from visualizr.frontend.errors import InsufficientGpuMemoryError, InvalidParametersError
from visualizr.frontend.generation.intake.validation import default_model, validate_request
from visualizr.frontend.generation.reporting.standing import Standing
from visualizr.frontend.generation.running.runner import InferenceGate
from visualizr.frontend.generation.schemas import GenerateVideoRequest, QuoteLimit, QuoteResponse
from visualizr.frontend.jobs.record import KIND_TEXT

GPU_MEMORY_FIELD = "gpu_memory"


def _limit(error: InvalidParametersError) -> QuoteLimit | None:
    """The limit a validation error names (a value beyond the card's range); None for any other error."""
    details = error.details if isinstance(error.details, dict) else {}
    if "max" not in details and "min" not in details:
        return None
    return QuoteLimit(details.get("field"), error.message, details)


async def quote(
    body: GenerateVideoRequest, catalog: ModelCatalog, gate: InferenceGate, standing: Standing
) -> QuoteResponse:
    try:
        request = validate_request(body, catalog)
    except InvalidParametersError as exc:
        limit = _limit(exc)
        if limit is None:
            raise
        model = body.model or default_model(catalog, KIND_TEXT)
        return QuoteResponse(False, model, None, None, None, None, None, None, limit)
    limit = None
    try:
        await gate.check_capacity(request.card, request.parameters)
    except InsufficientGpuMemoryError as exc:
        limit = QuoteLimit(GPU_MEMORY_FIELD, exc.message, dict(exc.details or {}))
    model = request.card.id
    position, wait, run = await standing.quote(model, request.kind, request.parameters)
    loaded = await standing.loaded(model)
    frames = request.parameters.num_frames
    return QuoteResponse(limit is None, model, frames, position, wait, run, wait + run, loaded, limit)
