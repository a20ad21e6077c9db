"""GPU facts from NVML (``pynvml`` of nvidia-ml-py), and the GPU-memory rules built on them.

* ``NvmlReader.snapshot()``: every device's memory, utilisation and temperature. NVML calls are fast but are
  run in a thread anyway. Without a driver (``NVMLError_LibraryNotFound`` and friends) the answer is
  ``available: false, count: 0, devices: []``; NVML is initialised once and retried at most every
  ``RETRY_SECONDS`` after a failure.
* ``required_memory_gb`` / ``check_fits``: a request is refused with INSUFFICIENT_GPU_MEMORY (507) when the
  memory it needs (the card's resident weights unless the model is loaded, plus working memory that scales
  with frames x width x height) exceeds the most free memory of any device. Without a GPU nothing is refused.
* ``is_out_of_memory``: a backend error text that means the GPU ran out of memory (the failed job's error then
  carries INSUFFICIENT_GPU_MEMORY instead of GENERATION_FAILED).
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from typing import Any, Protocol, runtime_checkable

import msgspec

from visualizr.frontend.errors import InsufficientGpuMemoryError
from visualizr.model_card import ModelCard

logger = logging.getLogger("visualizr.frontend.gpu")

GIB = 1024**3
RETRY_SECONDS = 60.0
_OOM_RE = re.compile(r"out of memory|\bOOM\b|CUDNN_STATUS_ALLOC_FAILED|failed to allocate", re.IGNORECASE)


class GpuDevice(msgspec.Struct):
    id: int
    name: str
    memory_total_gb: float
    memory_used_gb: float
    memory_free_gb: float
    utilization_percent: int | None
    temperature_celsius: int | None


class GpuInfo(msgspec.Struct):
    available: bool
    count: int
    devices: list[GpuDevice]

    @property
    def used_gb(self) -> float:
        return sum(d.memory_used_gb for d in self.devices)

    @property
    def max_free_gb(self) -> float | None:
        """The most free memory of any one device (a model runs on one); None without a GPU."""
        return max((d.memory_free_gb for d in self.devices), default=None)


NO_GPU = GpuInfo(available=False, count=0, devices=[])


@runtime_checkable
class GpuReader(Protocol):
    async def snapshot(self) -> GpuInfo: ...


def _gb(n_bytes: int) -> float:
    return round(n_bytes / GIB, 3)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class NvmlReader:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._initialised = False
        self._failed_at: float | None = None

    def _init(self, pynvml: Any) -> bool:
        if self._initialised:
            return True
        if self._failed_at is not None and time.monotonic() - self._failed_at < RETRY_SECONDS:
            return False
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            if self._failed_at is None:
                logger.info("no GPU: NVML unavailable (%s)", exc)
            self._failed_at = time.monotonic()
            return False
        self._initialised = True
        return True

    def read(self) -> GpuInfo:
        try:
            import pynvml
        except ImportError:  # nvidia-ml-py is a dependency; stay up without it anyway
            return NO_GPU
        with self._lock:
            if not self._init(pynvml):
                return NO_GPU
            try:
                devices = [self._device(pynvml, i) for i in range(pynvml.nvmlDeviceGetCount())]
            except pynvml.NVMLError as exc:
                logger.warning("NVML query failed: %s", exc)
                return NO_GPU
        return GpuInfo(available=bool(devices), count=len(devices), devices=devices)

    @staticmethod
    def _device(pynvml: Any, index: int) -> GpuDevice:
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
        utilization: int | None
        temperature: int | None
        try:
            utilization = int(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
        except pynvml.NVMLError:
            utilization = None
        try:
            temperature = int(pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU))
        except pynvml.NVMLError:
            temperature = None
        return GpuDevice(
            id=index,
            name=_text(pynvml.nvmlDeviceGetName(handle)),
            memory_total_gb=_gb(memory.total),
            memory_used_gb=_gb(memory.used),
            memory_free_gb=_gb(memory.free),
            utilization_percent=utilization,
            temperature_celsius=temperature,
        )

    async def snapshot(self) -> GpuInfo:
        return await asyncio.to_thread(self.read)


def _pixels(resolution: str) -> int:
    width, _, height = resolution.lower().partition("x")
    return int(width) * int(height)


def required_memory_gb(card: ModelCard, width: int, height: int, num_frames: int, loaded: bool) -> float:
    """GPU memory one request needs. The card's ``vram_usage_gb`` is the resident weights and
    ``gpu_memory_gb`` what a request of the card's largest size (max resolution x max frames) needs in all; the
    working part in between scales linearly with frames x width x height (the latents and activations)."""
    req = card.requirements
    working_at_max = max(0.0, req.gpu_memory_gb - req.vram_usage_gb)
    max_frames = card.parameters["num_frames"].max if "num_frames" in card.parameters else num_frames
    largest = max(1, _pixels(card.capabilities.max_resolution) * int(max_frames))
    working = working_at_max * (width * height * num_frames) / largest
    return round(working + (0.0 if loaded else req.vram_usage_gb), 3)


def check_fits(gpu: GpuInfo, required_gb: float) -> None:
    """INSUFFICIENT_GPU_MEMORY when ``required_gb`` exceeds every device's free memory (never without a GPU)."""
    free = gpu.max_free_gb
    if free is None or required_gb <= free:
        return
    raise InsufficientGpuMemoryError(
        f"Not enough GPU memory available: the request needs about {required_gb:.2f} GB, "
        f"the GPU has {free:.2f} GB free",
        {"required_gb": required_gb, "available_gb": free},
    )


def is_out_of_memory(text: str | None) -> bool:
    return bool(text) and _OOM_RE.search(text or "") is not None
