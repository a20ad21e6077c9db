"""Triton's model repository API (explicit model-control mode) over the gRPC aio client, never blocking the loop.

``ModelControl`` is what the model service needs: server readiness, the repository index (every model of the
repository with its state: READY, LOADING, UNLOADING, UNAVAILABLE + reason), load and unload of one Triton
model. ``load`` returns when Triton has finished loading (or raises with Triton's reason); ``unload`` returns
when Triton accepted the request (the model leaves READY once its in-flight requests are done).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

import grpc
import msgspec
from tritonclient.utils import InferenceServerException

from visualizr.frontend.triton_connection import RPC_ERRORS, TritonConnection

READY = "READY"
LOADING = "LOADING"
UNLOADING = "UNLOADING"
UNAVAILABLE = "UNAVAILABLE"
INDEX_TIMEOUT_SECONDS = 5.0
# Loading runs the model's initialisation (the Python backend starts a stub process): give it time.
LOAD_TIMEOUT_SECONDS = 600.0


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
    async def server_ready(self) -> bool: ...

    async def index(self) -> dict[str, ModelState]: ...

    async def load(self, name: str) -> None: ...

    async def unload(self, name: str) -> None: ...

    async def aclose(self) -> None: ...


def _reason(exc: BaseException) -> ModelControlError:
    if isinstance(exc, InferenceServerException):
        message = exc.message() or str(exc)
        status = str(exc.status() or "")
        return ModelControlError(message, unreachable="UNAVAILABLE" in status or "DEADLINE" in status)
    if isinstance(exc, grpc.aio.AioRpcError):
        return ModelControlError(exc.details() or str(exc), unreachable=exc.code() == grpc.StatusCode.UNAVAILABLE)
    return ModelControlError(str(exc), unreachable=True)


class TritonModelControl:
    def __init__(self, connection: TritonConnection) -> None:
        self._connection = connection

    async def server_ready(self) -> bool:
        return await self._connection.server_ready()

    async def index(self) -> dict[str, ModelState]:
        try:
            body = await self._connection.client.get_model_repository_index(
                as_json=True, client_timeout=INDEX_TIMEOUT_SECONDS
            )
        except RPC_ERRORS as exc:
            raise _reason(exc) from None
        return {
            str(m["name"]): ModelState(str(m.get("state", "")), str(m.get("reason", "")))
            for m in body.get("models", [])
        }

    async def _call(self, action: Callable[[], Awaitable[None]]) -> None:
        try:
            await action()
        except RPC_ERRORS as exc:
            raise _reason(exc) from None

    async def load(self, name: str) -> None:
        client = self._connection.client
        await self._call(lambda: client.load_model(name, client_timeout=LOAD_TIMEOUT_SECONDS))

    async def unload(self, name: str) -> None:
        client = self._connection.client
        await self._call(lambda: client.unload_model(name, client_timeout=INDEX_TIMEOUT_SECONDS))

    async def aclose(self) -> None:
        await self._connection.aclose()


class BackendReadiness:
    """ModelControl for an injected GenerationBackend that has no repository API: every Triton model of a card
    is READY exactly when ``backend.ready(card.id)``; load and unload are refused (MODEL_LOAD_FAILED)."""

    def __init__(self, ready: Callable[[str], Awaitable[bool]], cards: Callable[[], dict[str, list[str]]]) -> None:
        self._ready = ready
        self._cards = cards  # card id -> its triton_models

    async def server_ready(self) -> bool:
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

    async def aclose(self) -> None:
        return None
