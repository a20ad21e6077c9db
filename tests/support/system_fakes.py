"""Fakes for the model / system tests: Triton's repository API (states, loads, unloads, failures) and NVML.

Like the FakeBackend they stand in only in the unit tests of the API's own logic; the real Triton runs in the
integration tests.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from visualizr.frontend.infra.control import READY, UNAVAILABLE, ModelControlError, ModelState
from visualizr.frontend.infra.gpu import GpuDevice, GpuInfo

TRITON_MODELS = ["animatediff_text_encoder", "animatediff_unet", "animatediff_vae_decoder", "animatediff"]


class FakeModelControl:
    def __init__(self, loaded: bool = True, names: list[str] = TRITON_MODELS) -> None:
        state = ModelState(READY) if loaded else ModelState(UNAVAILABLE, "unloaded")
        self.states: dict[str, ModelState] = dict.fromkeys(names, state)
        self.calls: list[tuple[str, str]] = []
        self.failures: dict[str, str] = {}  # Triton model -> Triton's error message
        self.load_delay = 0.0
        self.hold = threading.Event()  # set by default: loads do not wait
        self.hold.set()
        self.reachable = True
        self.on_change: Callable[[str, str], None] | None = None  # (action, name)

    def _check(self) -> None:
        if not self.reachable:
            raise ModelControlError("failed to connect to all addresses", unreachable=True)

    async def server_live(self) -> bool:
        return self.reachable

    async def index(self) -> dict[str, ModelState]:
        self._check()
        return dict(self.states)

    async def load(self, name: str) -> None:
        self._check()
        self.calls.append(("load", name))
        await asyncio.sleep(self.load_delay)
        while not self.hold.is_set():
            await asyncio.sleep(0.005)
        if name in self.failures:
            self.states[name] = ModelState(UNAVAILABLE, self.failures[name])
            raise ModelControlError(self.failures[name])
        if name not in self.states:
            raise ModelControlError(f"failed to load '{name}', failed to poll from model repository")
        self.states[name] = ModelState(READY)
        if self.on_change:
            self.on_change("load", name)

    async def reload(self, name: str) -> None:
        self._check()
        self.calls.append(("reload", name))
        await asyncio.sleep(self.load_delay)
        if name in self.failures:
            raise ModelControlError(self.failures[name])

    async def unload(self, name: str) -> None:
        self._check()
        self.calls.append(("unload", name))
        self.states[name] = ModelState(UNAVAILABLE, "unloaded")
        if self.on_change:
            self.on_change("unload", name)

    async def aclose(self) -> None:
        return None


class FakeGpu:
    """One device whose used memory tests (or a FakeModelControl hook) change."""

    def __init__(self, total_gb: float = 24.0, used_gb: float = 2.0, available: bool = True) -> None:
        self.total_gb = total_gb
        self.used_gb = used_gb
        self.available = available

    async def snapshot(self) -> GpuInfo:
        if not self.available:
            return GpuInfo(available=False, count=0, devices=[])
        device = GpuDevice(
            id=0,
            name="NVIDIA Fake 24GB",
            memory_total_gb=self.total_gb,
            memory_used_gb=self.used_gb,
            memory_free_gb=round(self.total_gb - self.used_gb, 3),
            utilization_percent=42,
            temperature_celsius=55,
        )
        return GpuInfo(available=True, count=1, devices=[device])
