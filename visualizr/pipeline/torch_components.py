"""Components run in-process by torch, on any device and dtype: the same loop as in Triton, without Triton.

Each component is a torch module whose forward takes the network's inputs in ONNX order and returns its one
output: the export's spec wrappers (``spec.wrapper(network)``), the very modules the ONNX files are traced from.
Used by the GPU benchmark (Visualizr's loop vs diffusers' pipeline on the same weights) and its CPU test.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

StageHook = Callable[[str], Any]  # component -> a context manager timing its call (see benchmarks/gpu.py)


class TorchComponents:
    """The Components protocol over torch modules. ``modules``: component -> (input names in order, module).
    Floating inputs are cast to ``dtype`` (fp16 on a GPU); outputs come back as float32 tensors on ``device``.
    ``stage`` wraps each call (timing)."""

    def __init__(
        self,
        modules: Mapping[str, tuple[Sequence[str], torch.nn.Module]],
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        stage: StageHook | None = None,
    ) -> None:
        self.device, self.dtype, self.stage = torch.device(device), dtype, stage
        self._modules = {
            component: (list(names), module.to(self.device, dtype).eval())
            for component, (names, module) in modules.items()
        }

    @classmethod
    def from_specs(
        cls, specs: Sequence[Any], networks: Mapping[str, torch.nn.Module], **kwargs: Any
    ) -> TorchComponents:
        """From the export's spec objects (``component``, ``input_names``, ``wrapper``) and the torch networks."""
        return cls({s.component: (s.input_names, s.wrapper(networks[s.component])) for s in specs}, **kwargs)

    def _argument(self, value: Any) -> torch.Tensor:
        tensor = torch.from_numpy(np.asarray(value)) if isinstance(value, np.ndarray) else value
        dtype = self.dtype if tensor.is_floating_point() else tensor.dtype
        return tensor.to(self.device, dtype)

    async def run(self, component: str, inputs: dict[str, Any], output: str) -> torch.Tensor:
        names, module = self._modules[component]
        arguments = [self._argument(inputs[name]) for name in names]
        with torch.no_grad(), self.stage(component) if self.stage else contextlib.nullcontext():
            return module(*arguments).float()
