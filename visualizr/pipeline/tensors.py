"""Where the loop's tensors live and how they cross a component call (the loop's only device logic).

The loop keeps latents, conditioning, scheduler state and network outputs as torch tensors on ``device``; each
component call goes through ``to_network`` (inputs) and ``from_network`` (its output):

* numpy I/O (``tensors=False``, the default on the CPU: onnxruntime in-process or the Python-backend models of
  CPU Triton): inputs are contiguous numpy arrays sharing the tensors' memory, outputs ``torch.from_numpy``
  views; the arrays the loop always sent.
* tensor I/O (``tensors=True``, the default on a GPU: TensorRT models through BLS, torch in-process): inputs stay
  contiguous torch tensors on the device (BLS hands them to ``pb_utils.Tensor`` through DLPack) and outputs come
  back as device tensors, so nothing crosses to the host per step: the scheduler step and the classifier-free
  guidance arithmetic run on the device, and only the final uint8 frames are copied to the host.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import torch

NetworkArray = Any  # np.ndarray with numpy I/O, torch.Tensor with tensor I/O


class TensorPlacement:
    def __init__(self, device: str | torch.device = "cpu", tensors: bool | None = None) -> None:
        self.device = torch.device(device)
        self.tensors = self.device.type != "cpu" if tensors is None else tensors

    def __repr__(self) -> str:
        return f"TensorPlacement({str(self.device)!r}, tensors={self.tensors})"

    def to_network(self, value: torch.Tensor | np.ndarray, dtype: torch.dtype = torch.float32) -> NetworkArray:
        """A network input of ``dtype``: a contiguous tensor on the device, or numpy with numpy I/O."""
        tensor = torch.from_numpy(np.asarray(value)) if isinstance(value, np.ndarray) else value
        tensor = tensor.to(self.device, dtype).contiguous()
        return tensor if self.tensors else tensor.numpy()

    def from_network(self, value: NetworkArray) -> torch.Tensor:
        """A network output (numpy, or a tensor on any device) as a float32 tensor on the device."""
        if isinstance(value, np.ndarray):
            value = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
        return value.to(self.device, torch.float32)

    def full(self, size: int, value: float) -> NetworkArray:
        """A float32 network input [size] filled with ``value`` (the unet's timestep over its batch)."""
        return self.to_network(torch.full((size,), float(value), dtype=torch.float32))


# Threads of a CPU pipeline instance's own torch work (guidance, scheduler step, frame conversion: element-wise): the
# component stubs own the cores, and torch's OpenMP threads waiting for busy cores made the frame conversion ~400x
# slower on a loaded 2-core machine (176 ms vs 0.4 ms for two 128x128 frames).
CPU_LOOP_THREADS: Final = 1


def instance_gpu(kind: str | None, device_id: str | int | None) -> int | None:
    """The GPU a Triton model instance keeps its tensors on: its device for a KIND_GPU instance (the TensorRT
    deployment) when torch can use CUDA, else None (the CPU)."""
    if kind != "GPU" or device_id is None or not torch.cuda.is_available():
        return None
    return int(device_id)


def to_uint8_frames(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """float [N, 3, H, W] in [-1, 1] (on any device) -> uint8 [N, H, W, 3] on the host, rounded like diffusers'
    numpy_to_pil; the conversion runs where the images are, so a GPU copies uint8 (a quarter of the bytes)."""
    images = torch.as_tensor(images, dtype=torch.float32)
    frames = ((images / 2.0 + 0.5).clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)
    return np.ascontiguousarray(frames.permute(0, 2, 3, 1).cpu().numpy())
