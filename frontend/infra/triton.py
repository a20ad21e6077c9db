"""One connection to one Triton server: a tritonclient gRPC aio client shared by the generation streams and the
model repository API (``ModelControl``).

The client is opened lazily, on first use inside the running event loop (a grpc.aio channel binds to the loop it
was created in). ``reset()`` drops it after the server went away, so the next call dials a fresh channel to the
restarted server; ``aclose()`` closes it for good (the app's lifespan).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
from collections.abc import Awaitable, Callable

import grpc
from tritonclient.grpc.aio import InferenceServerClient
from tritonclient.utils import InferenceServerException

from visualizr.frontend.infra.control import ModelControlError, ModelState

logger = logging.getLogger("visualizr.frontend.triton")

# What a tritonclient aio call raises when Triton refuses a request or cannot be reached.
RPC_ERRORS = (InferenceServerException, grpc.aio.AioRpcError, OSError)
READY_TIMEOUT_SECONDS = 2.0
INDEX_TIMEOUT_SECONDS = 5.0
# Loading runs the model's initialisation (the Python backend starts a stub process): give it time.
LOAD_TIMEOUT_SECONDS = 600.0
# A config parameter whose value changes on every reload: Triton reloads a loaded model only when its config
# changed, and an unload of a model whose stub died can hang, so a heal loads it with this parameter bumped.
RELOAD_PARAMETER = "visualizr_reload"
_reloads = itertools.count(1)


def control_error(exc: BaseException) -> ModelControlError:
    if isinstance(exc, InferenceServerException):
        status = str(exc.status() or "")
        return ModelControlError(exc.message() or str(exc), unreachable="UNAVAILABLE" in status or "DEADLINE" in status)
    if isinstance(exc, grpc.aio.AioRpcError):
        return ModelControlError(exc.details() or str(exc), unreachable=exc.code() == grpc.StatusCode.UNAVAILABLE)
    return ModelControlError(str(exc), unreachable=True)


class TritonConnection:
    def __init__(self, url: str) -> None:
        self.url = url
        self._client: InferenceServerClient | None = None

    @property
    def client(self) -> InferenceServerClient:
        if self._client is None:
            self._client = InferenceServerClient(url=self.url)
        return self._client

    async def server_live(self) -> bool:
        try:
            return bool(await self.client.is_server_live(client_timeout=READY_TIMEOUT_SECONDS))
        except RPC_ERRORS as exc:
            logger.debug("triton %s readiness check failed: %s", self.url, exc)
            return False

    async def index(self) -> dict[str, ModelState]:
        try:
            body = await self.client.get_model_repository_index(as_json=True, client_timeout=INDEX_TIMEOUT_SECONDS)
        except RPC_ERRORS as exc:
            raise control_error(exc) from None
        return {
            str(m["name"]): ModelState(str(m.get("state", "")), str(m.get("reason", "")))
            for m in body.get("models", [])
        }

    async def _call(self, action: Callable[[], Awaitable[None]]) -> None:
        try:
            await action()
        except RPC_ERRORS as exc:
            raise control_error(exc) from None

    async def load(self, name: str) -> None:
        client = self.client
        await self._call(lambda: client.load_model(name, client_timeout=LOAD_TIMEOUT_SECONDS))

    async def unload(self, name: str) -> None:
        client = self.client
        await self._call(lambda: client.unload_model(name, client_timeout=INDEX_TIMEOUT_SECONDS))

    async def reload(self, name: str) -> None:
        client = self.client
        try:
            body = await client.get_model_config(name, as_json=True, client_timeout=INDEX_TIMEOUT_SECONDS)
        except RPC_ERRORS as exc:
            raise control_error(exc) from None
        config = body.get("config", body)
        config.setdefault("parameters", {})[RELOAD_PARAMETER] = {"string_value": str(next(_reloads))}
        text = json.dumps(config)
        await self._call(lambda: client.load_model(name, config=text, client_timeout=LOAD_TIMEOUT_SECONDS))

    async def reset(self) -> None:
        """Forget the channel (the server went away); the next call dials again."""
        await self.aclose()

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.close()
