"""A stand-in ``tensorrt`` module for unit tests of the engine build around it (TensorRT itself only exists on
GPU machines). It records what the build asked for and "serialises" an engine as JSON of exactly that, so a
test can read back the profile, flags and ONNX an engine was built from."""

from __future__ import annotations

import hashlib
import importlib.machinery
import json
import sys
import types
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class FakeTensorRT(types.ModuleType):
    def __init__(self, version: str = "10.3.0.26") -> None:
        super().__init__("tensorrt")
        self.__spec__ = importlib.machinery.ModuleSpec("tensorrt", None)  # find_spec("tensorrt") works
        self.__version__ = version
        self.builds: list[dict[str, Any]] = []
        module = self

        class Logger:
            WARNING = 2

            def __init__(self, level: int) -> None:
                self.level = level

        class BuilderFlag:
            FP16, BF16, FP8 = "FP16", "BF16", "FP8"

        class MemoryPoolType:
            WORKSPACE = "WORKSPACE"

        class TimingCache:
            def __init__(self, data: bytes) -> None:
                self.data = data

            def serialize(self) -> bytes:
                return self.data + b"timed;"

        class Profile:
            def __init__(self) -> None:
                self.shapes: dict[str, list[list[int]]] = {}

            def set_shape(self, name: str, low, opt, high) -> None:
                self.shapes[name] = [list(low), list(opt), list(high)]

        class Config:
            def __init__(self) -> None:
                self.flags: list[str] = []
                self.pools: dict[str, int] = {}
                self.profiles: list[Profile] = []
                self.cache: TimingCache | None = None

            def set_memory_pool_limit(self, pool: str, size: int) -> None:
                self.pools[pool] = size

            def set_flag(self, flag: str) -> None:
                self.flags.append(flag)

            def create_timing_cache(self, data: bytes) -> TimingCache:
                return TimingCache(bytes(data))

            def set_timing_cache(self, cache: TimingCache, ignore_mismatch: bool) -> bool:
                self.cache = cache
                return True

            def get_timing_cache(self) -> TimingCache:
                assert self.cache is not None
                return self.cache

            def add_optimization_profile(self, profile: Profile) -> int:
                self.profiles.append(profile)
                return len(self.profiles) - 1

        class Network:
            onnx: str | None = None

        class Builder:
            def __init__(self, logger: Logger) -> None:
                self.logger = logger

            def create_network(self, flags: int) -> Network:
                return Network()

            def create_builder_config(self) -> Config:
                return Config()

            def create_optimization_profile(self) -> Profile:
                return Profile()

            def build_serialized_network(self, network: Network, config: Config) -> bytes:
                build = {
                    "onnx_sha256": network.onnx,
                    "flags": config.flags,
                    "workspace": config.pools.get("WORKSPACE"),
                    "profiles": [p.shapes for p in config.profiles],
                    "timing_cache_in": config.cache.data.decode() if config.cache else None,
                }
                module.builds.append(build)
                return json.dumps(build).encode()

        class OnnxParser:
            def __init__(self, network: Network, logger: Logger) -> None:
                self.network = network
                self.num_errors = 0

            def parse_from_file(self, path: str) -> bool:
                self.network.onnx = hashlib.sha256(Path(path).read_bytes()).hexdigest()
                return True

        self.Logger, self.BuilderFlag, self.MemoryPoolType = Logger, BuilderFlag, MemoryPoolType
        self.Builder, self.OnnxParser = Builder, OnnxParser


@contextmanager
def fake_tensorrt(version: str = "10.3.0.26"):
    """``import tensorrt`` gives a FakeTensorRT inside the block."""
    module = FakeTensorRT(version)
    previous = sys.modules.get("tensorrt")
    sys.modules["tensorrt"] = module
    try:
        yield module
    finally:
        if previous is None:
            sys.modules.pop("tensorrt", None)
        else:
            sys.modules["tensorrt"] = previous


def read_fake_engine(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_bytes())
