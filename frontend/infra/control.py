"""What the API needs of one inference server's model repository (explicit model-control mode): readiness, the
repository index (every model with its state: READY, LOADING, UNLOADING, UNAVAILABLE + reason), load and unload
of one Triton model. ``TritonConnection`` implements it over gRPC; ``BackendReadiness`` stands in for a
generation backend that has no repository API.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

import msgspec

READY = "READY"
LOADING = "LOADING"
UNLOADING = "UNLOADING"
UNAVAILABLE = "UNAVAILABLE"


class ModelState(msgspec.Struct, frozen=True):
    state: str  # READY | LOADING | UNLOADING | UNAVAILABLE ("" when Triton never tried it)
    reason: str = ""


class ModelControlError(Exception):
    """Triton refused a repository request or could not be reached; ``reason`` is Triton's own message."""

    def __init__(self, reason: str, unreachable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unreachable = unreachable


class ModelControl(Protocol):
    async def server_live(self) -> bool: ...

    async def index(self) -> dict[str, ModelState]: ...

    async def load(self, name: str) -> None:
        """Load (or reload, when it is loaded) one Triton model; returns when Triton has finished."""

    async def unload(self, name: str) -> None:
        """Returns when Triton accepted the request (the model leaves READY once its requests are done)."""

    async def reload(self, name: str) -> None:
        """Load a loaded model again with fresh instances (heals a dead stub); returns when Triton is done."""

    async def aclose(self) -> None: ...


class BackendReadiness:
    """ModelControl for a generation backend without a repository API: every Triton model of a card is READY
    exactly when ``ready(card_id)``; load and unload are refused."""

    def __init__(self, ready: Callable[[str], Awaitable[bool]], cards: Callable[[], dict[str, list[str]]]) -> None:
        self._ready = ready
        self._cards = cards  # card id -> its triton_models

    async def server_live(self) -> bool:
        return any([await self._ready(model_id) for model_id in self._cards()])

    async def index(self) -> dict[str, ModelState]:
        states: dict[str, ModelState] = {}
        for model_id, names in self._cards().items():
            state = ModelState(READY) if await self._ready(model_id) else ModelState(UNAVAILABLE, "not ready")
            states.update(dict.fromkeys(names, state))
        return states

    async def load(self, name: str) -> None:
        raise ModelControlError("this generation backend has no model-control API")

    async def unload(self, name: str) -> None:
        raise ModelControlError("this generation backend has no model-control API")

    async def reload(self, name: str) -> None:
        raise ModelControlError("this generation backend has no model-control API")

    async def aclose(self) -> None:
        return None
