"""The API's one connection to Triton: a tritonclient gRPC aio client shared by the generation streams and the
model repository API.

The client is opened lazily, on first use inside the running event loop (a grpc.aio channel binds to the loop
it was created in), and closed once by the app's lifespan.
"""

from __future__ import annotations

import contextlib
import logging

import grpc
from tritonclient.grpc.aio import InferenceServerClient
from tritonclient.utils import InferenceServerException

logger = logging.getLogger("visualizr.frontend.triton")

# What a tritonclient aio call raises when Triton refuses a request or cannot be reached.
RPC_ERRORS = (InferenceServerException, grpc.aio.AioRpcError, OSError)
READY_TIMEOUT_SECONDS = 2.0


class TritonConnection:
    def __init__(self, url: str) -> None:
        self.url = url
        self._client: InferenceServerClient | None = None

    @property
    def client(self) -> InferenceServerClient:
        if self._client is None:
            self._client = InferenceServerClient(url=self.url)
        return self._client

    async def server_ready(self) -> bool:
        try:
            return bool(await self.client.is_server_ready(client_timeout=READY_TIMEOUT_SECONDS))
        except RPC_ERRORS as exc:
            logger.debug("triton readiness check failed: %s", exc)
            return False

    async def model_ready(self, model: str) -> bool:
        try:
            return bool(await self.client.is_model_ready(model, client_timeout=READY_TIMEOUT_SECONDS))
        except RPC_ERRORS as exc:
            logger.debug("triton model readiness check failed: %s", exc)
            return False

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.close()
