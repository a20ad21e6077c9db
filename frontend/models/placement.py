"""Where a job runs: the generation runner's ``InferenceGate`` over the endpoint pool, the model service and the
healer.

* ``acquire``: among the up endpoints where none of the model's Triton models is healing or given up on, the least
  busy one that has the model loaded, else the least busy one (the model is loaded there on demand). No such
  endpoint: a retryable BackendError, so the job waits in the queue.
* ``report``: a run failed on the infrastructure. An unreachable endpoint is marked down (drained, probed with
  backoff); a dead stub is healed (reloaded) on that endpoint.
* ``check_capacity``: INSUFFICIENT_GPU_MEMORY when the request cannot fit the GPU's free memory (NVML of this
  host; never without a GPU).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from visualizr.frontend.catalog import ModelCatalog
from visualizr.frontend.errors import VisualizrError
from visualizr.frontend.infra.endpoints import Endpoint, EndpointPool
from visualizr.frontend.infra.failures import UNHEALTHY_MODEL, UNREACHABLE, BackendError
from visualizr.frontend.infra.gpu import GpuReader, check_fits, required_memory_gb
from visualizr.frontend.jobs.record import GenerationParameters
from visualizr.frontend.models.healing import Healer
from visualizr.frontend.models.service import ModelService, all_ready
from visualizr.model_card import ModelCard

logger = logging.getLogger("visualizr.frontend.models")

NO_ENDPOINT_MESSAGE = "No inference server can take the job now"


class Placement:
    def __init__(
        self, catalog: ModelCatalog, pool: EndpointPool, models: ModelService, healer: Healer, gpu: GpuReader
    ) -> None:
        self.catalog, self.pool, self.models, self.healer, self.gpu = catalog, pool, models, healer, gpu
        self._listeners: list[Callable[[], None]] = []
        self._outages = {e.url: e.outages for e in pool.endpoints}
        pool.on_change(self._endpoints_changed)
        healer.on_change(self.changed)

    def on_change(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def changed(self) -> None:
        """Something that decides where jobs can run changed (an endpoint, a heal): tell the listeners."""
        for listener in list(self._listeners):
            listener()

    def _endpoints_changed(self) -> None:
        for endpoint in self.pool.up():
            if self._outages.get(endpoint.url) != endpoint.outages:  # back from an outage: a fresh server
                self._outages[endpoint.url] = endpoint.outages
                self.healer.forget(endpoint)
        self.changed()

    def _triton_models(self, model_id: str) -> list[str]:
        try:
            return self.catalog.get(model_id).triton_models
        except Exception:  # an unreadable card: the run itself fails with the reason
            return []

    def _usable(self, model_id: str) -> list[Endpoint]:
        names = self._triton_models(model_id)
        return [e for e in self.pool.up() if self.healer.sickness(e, names) is None]

    def blocked_reason(self, model_id: str) -> str | None:
        if self._usable(model_id):
            return None
        if not self.pool.any_up:
            return f"no inference server is reachable: {self.pool.down_reasons()}"
        names = self._triton_models(model_id)
        return "; ".join(filter(None, (self.healer.sickness(e, names) for e in self.pool.up())))

    async def loaded(self, model_id: str) -> bool:
        try:
            card = self.catalog.get(model_id)
        except VisualizrError:  # its card is gone: its job fails without loading anything
            return True
        indices = [await self.models.index_of(e) for e in self._usable(model_id)]
        return any(index is not None and all_ready(card, index) for index in indices)

    async def acquire(self, model_id: str, on_loading: Callable[[], Awaitable[None]]) -> Endpoint:
        card = self.catalog.get(model_id)
        candidates = [(e, await self.models.index_of(e)) for e in self._usable(model_id)]
        reachable = [(e, index) for e, index in candidates if index is not None]
        loaded = [e for e, index in reachable if all_ready(card, index)]
        endpoint = self.pool.least_busy(loaded) or self.pool.least_busy(e for e, _ in reachable)
        if endpoint is None:
            raise BackendError(NO_ENDPOINT_MESSAGE, self.blocked_reason(model_id) or NO_ENDPOINT_MESSAGE, UNREACHABLE)
        endpoint.in_flight += 1
        try:
            index = next(index for e, index in reachable if e is endpoint)
            await self.models.ensure_loaded(card, endpoint, index, on_loading)
        except BaseException:
            endpoint.in_flight -= 1
            raise
        return endpoint

    def release(self, endpoint: Endpoint) -> None:
        endpoint.in_flight = max(0, endpoint.in_flight - 1)

    def report(self, endpoint: Endpoint, model_id: str, error: BackendError) -> None:
        logger.info("run of %s on %s failed (%s): %s", model_id, endpoint.url, error.kind, error.details)
        if error.kind == UNREACHABLE:
            self.pool.mark_down(endpoint, error.details or error.message)
        elif error.kind == UNHEALTHY_MODEL and error.triton_model:
            self.healer.heal(endpoint, error.triton_model, error.details)

    async def check_capacity(self, card: ModelCard, parameters: GenerationParameters) -> None:
        gpu = await self.gpu.snapshot()
        if not gpu.available:
            return
        indices = [index for _, index in await self.models.indices() if index is not None]
        loaded = not indices or any(all_ready(card, index) for index in indices)
        need = required_memory_gb(card, parameters.width, parameters.height, parameters.num_frames, loaded)
        check_fits(gpu, need)
