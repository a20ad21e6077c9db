"""Unloading a model from one endpoint: the pipeline first, then its components, except those another model
loaded there needs too; then waiting until Triton no longer reports them READY."""

from __future__ import annotations

import asyncio
import logging
import time

from visualizr.frontend.infra.control import LOADING, READY, UNLOADING, ModelState
from visualizr.frontend.infra.endpoints import Endpoint
from visualizr.frontend.models.status import Index, all_ready
from visualizr.model_card import ModelCard

logger = logging.getLogger("visualizr.frontend.models")

UNLOAD_WAIT_SECONDS = 15.0  # then the answer is "unloading": Triton 2.51 can take minutes to let go of a
# decoupled pipeline model whose client went away mid-request
POLL_SECONDS = 0.1


def shared_models(card: ModelCard, index: Index, cards: list[ModelCard]) -> set[str]:
    """Triton models of ``card`` that another card loaded on the same endpoint needs too."""
    others = [o for o in cards if o.id != card.id and all_ready(o, index)]
    return {name for other in others for name in other.triton_models}


async def unload_on(card: ModelCard, endpoint: Endpoint, index: Index, cards: list[ModelCard]) -> bool:
    """Unload ``card`` from ``endpoint``; True once Triton no longer reports its models, False when it still does
    after ``UNLOAD_WAIT_SECONDS`` (the unload goes on in Triton)."""
    shared = shared_models(card, index, cards)
    names = [
        n
        for n in reversed(card.triton_models)
        if n not in shared and index.get(n, ModelState("")).state in (READY, LOADING)
    ]
    for name in names:
        logger.info("unloading triton model %s (for %s) on %s", name, card.id, endpoint.url)
        await endpoint.control.unload(name)
    deadline = time.monotonic() + UNLOAD_WAIT_SECONDS
    while time.monotonic() < deadline:
        index = await endpoint.control.index()
        if all(index.get(n, ModelState("")).state not in (READY, UNLOADING) for n in names):
            return True
        await asyncio.sleep(POLL_SECONDS)
    logger.warning("%s still reports %s after %.0f s", endpoint.url, names, UNLOAD_WAIT_SECONDS)
    return False
