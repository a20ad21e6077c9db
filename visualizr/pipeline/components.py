"""The networks a denoising loop calls, behind one async protocol (in-process onnxruntime or torch, or Triton BLS).

Arrays are numpy on the CPU; with tensor I/O on a GPU they are torch tensors on the device
(``visualizr.pipeline.tensors``). The annotations name the numpy case."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Components(Protocol):
    async def run(self, component: str, inputs: dict[str, np.ndarray], output: str) -> np.ndarray:
        """Call the network ``component`` (a name of the family's networks) with ``inputs`` (tensor names of
        ``visualizr.names`` or the family's vocabulary, shapes as in ONNX) and return its output ``output``."""
        ...


class StageComponents:
    """The Components of one stage of a model, whose networks are its owner's ``<prefix><component>`` (Stable
    Video Diffusion's keyframe stage calls ``unet``, which is the model's ``keyframe_unet``)."""

    def __init__(self, components: Components, prefix: str) -> None:
        self.components, self.prefix = components, prefix

    async def run(self, component: str, inputs: dict[str, np.ndarray], output: str) -> np.ndarray:
        return await self.components.run(self.prefix + component, inputs, output)
