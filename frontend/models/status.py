"""A model's status from Triton's repository index: on one endpoint, and over every endpoint (pure functions).

On one endpoint: ``loading`` while a load of ours runs there; ``unknown`` when it cannot be reached; ``loaded`` when
every Triton model of the card is READY; else ``loading`` / ``unloading`` when Triton says so for one of them,
``failed`` when our last load failed or Triton reports one UNAVAILABLE for another reason than "unloaded", else
``unloaded``. Over every endpoint: ``loading`` while a load of ours runs anywhere, ``loaded`` when it is loaded
somewhere, else the first of loading, unloading, failed, unloaded found, else ``unknown``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from visualizr.frontend.errors import MODEL_LOAD_FAILED, ErrorInfo, ModelLoadFailedError
from visualizr.frontend.infra.control import LOADING, READY, UNAVAILABLE, UNLOADING, ModelState
from visualizr.frontend.models import schemas as s
from visualizr.model_card import ModelCard

TRITON_UNLOADED_REASON = "unloaded"
Index = dict[str, ModelState]


@dataclass
class LoadFailure:
    message: str
    details: dict[str, Any]
    at: float

    def error(self) -> ErrorInfo:
        return ErrorInfo(code=MODEL_LOAD_FAILED, message=self.message, details=self.details)

    def exception(self) -> ModelLoadFailedError:
        return ModelLoadFailedError(self.message, self.details)


@dataclass
class LoadTask:
    task: asyncio.Task[None]
    started_at: float


def card_states(card: ModelCard, index: Index) -> list[ModelState]:
    return [index.get(name, ModelState(UNAVAILABLE, "not in the model repository")) for name in card.triton_models]


def all_ready(card: ModelCard, index: Index) -> bool:
    return all(st.state == READY for st in card_states(card, index))


def status_on_endpoint(
    card: ModelCard, index: Index | None, loading: bool, failure: LoadFailure | None
) -> tuple[str, ErrorInfo | None]:
    if loading:
        return s.LOADING, None
    if index is None:
        return s.UNKNOWN, None
    states = card_states(card, index)
    if all(st.state == READY for st in states):
        return s.LOADED, None
    if any(st.state == LOADING for st in states):
        return s.LOADING, None
    if any(st.state == UNLOADING for st in states):
        return s.UNLOADING, None
    if failure is not None:
        return s.LOAD_FAILED, failure.error()
    for name, st in zip(card.triton_models, states, strict=True):
        if st.state == UNAVAILABLE and st.reason and st.reason != TRITON_UNLOADED_REASON:
            details = {"triton_model": name, "reason": st.reason}
            return s.LOAD_FAILED, ErrorInfo(MODEL_LOAD_FAILED, f"Triton could not load {name!r}", details)
    return s.UNLOADED, None


def overall_status(per_endpoint: list[tuple[str, ErrorInfo | None]], loading: bool) -> tuple[str, ErrorInfo | None]:
    found = {status for status, _ in per_endpoint}
    if loading:
        status = s.LOADING
    elif s.LOADED in found:
        status = s.LOADED
    else:
        status = next((st for st in (s.LOADING, s.UNLOADING, s.LOAD_FAILED, s.UNLOADED) if st in found), s.UNKNOWN)
    return status, next((err for st, err in per_endpoint if st == status and err is not None), None)
