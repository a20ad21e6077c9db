"""This machine as an engine sees it: the TensorRT version and the GPUs (no hard dependency on either).

GPUs come from NVML (what CUDA_VISIBLE_DEVICES leaves visible), never from a CUDA context. Inside NVIDIA's
Triton image the ``tensorrt`` Python module is usually absent but ``libnvinfer`` is there:
its ``getInferLibVersion()`` gives the version the tensorrt_plan backend deserialises with.
"""

from __future__ import annotations

import ctypes
import os
from typing import Final

import msgspec

from visualizr.engines.manifest import Gpu

LIBNVINFER_NAMES: Final = ("libnvinfer.so.10", "libnvinfer.so.8", "libnvinfer.so")


class Environment(msgspec.Struct, frozen=True):
    tensorrt_version: str | None  # major.minor.patch; None without TensorRT
    gpus: tuple[Gpu, ...]  # the visible GPUs, in CUDA order

    def problems(self, tensorrt_version: str, gpu: Gpu) -> list[str]:
        """Why an engine built by ``tensorrt_version`` on ``gpu`` cannot run here; empty when it can."""
        found = []
        if self.tensorrt_version is not None and self.tensorrt_version != tensorrt_version:
            found.append(f"built by TensorRT {tensorrt_version}, this server has TensorRT {self.tensorrt_version}")
        if not self.gpus:
            found.append(f"built on {gpu}, this server has no GPU")
        for index, here in enumerate(self.gpus):
            if here != gpu:
                found.append(f"built on {gpu}, GPU {index} here is {here}")
        return found


def normalise_version(version: str) -> str:
    """``10.3.0.26`` -> ``10.3.0``: engines are tied to major.minor.patch."""
    return ".".join(version.split(".")[:3])


def decode_lib_version(value: int) -> str:
    """``getInferLibVersion()``: MAJOR*10000 + MINOR*100 + PATCH from TensorRT 10, MAJOR*1000 + ... before."""
    if value >= 10000:
        return f"{value // 10000}.{value % 10000 // 100}.{value % 100}"
    return f"{value // 1000}.{value % 1000 // 100}.{value % 100}"


def tensorrt_version() -> str | None:
    try:
        import tensorrt

        return normalise_version(tensorrt.__version__)
    except ImportError:
        pass
    for name in LIBNVINFER_NAMES:
        try:
            library = ctypes.CDLL(name)
        except OSError:
            continue
        library.getInferLibVersion.restype = ctypes.c_int32
        return decode_lib_version(int(library.getInferLibVersion()))
    return None


def _nvml_handles(pynvml, visible: str | None) -> list:
    """NVML handles of the GPUs CUDA would see: CUDA_VISIBLE_DEVICES (indices or UUIDs) when set, else all."""
    if visible is None:
        return [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
    handles = []
    for entry in (e.strip() for e in visible.split(",")):
        if not entry:
            continue
        if not entry.isdigit():  # GPU-<uuid> (or MIG-<uuid>)
            handles.append(pynvml.nvmlDeviceGetHandleByUUID(entry))
        elif int(entry) < pynvml.nvmlDeviceGetCount():
            handles.append(pynvml.nvmlDeviceGetHandleByIndex(int(entry)))
        else:
            break  # CUDA stops at the first invalid entry
    return handles


def visible_gpus(visible: str | None = None) -> tuple[Gpu, ...]:
    """Name and compute capability of every GPU CUDA would see (NVML, so no CUDA context is created);
    ``visible`` defaults to CUDA_VISIBLE_DEVICES. Empty without a driver or GPU."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # no driver, no library: no GPU
        return ()
    try:
        gpus = []
        for handle in _nvml_handles(pynvml, os.environ.get("CUDA_VISIBLE_DEVICES") if visible is None else visible):
            name = pynvml.nvmlDeviceGetName(handle)
            major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
            gpus.append(Gpu(name.decode() if isinstance(name, bytes) else name, f"{major}.{minor}"))
        return tuple(gpus)
    finally:
        pynvml.nvmlShutdown()


def probe() -> Environment:
    return Environment(tensorrt_version(), visible_gpus())
