"""FreeNoise long clips (diffusers' ``AnimateDiffFreeNoiseMixin.enable_free_noise``): the context-window settings
and the seeded initial noise.

The motion modules attend over frames in sliding windows of ``length`` frames, ``stride`` apart, and blend the
windows' outputs with per-frame ``weighting``; the exported UNet does that inside its graph (the stand-in of
diffusers' ``FreeNoiseTransformerBlock`` in ``export/families/animatediff/wrappers.py``). The loop draws the
initial noise as diffusers does (``noise``: ``shuffle_context`` repeats shuffled copies of earlier frames' noise,
``random`` leaves it as drawn). A clip of at most ``length`` frames is one window: exactly the plain AnimateDiff.
"""

from __future__ import annotations

import msgspec
import torch

WEIGHTINGS = ("flat", "pyramid", "delayed_reverse_sawtooth")
NOISE_TYPES = ("shuffle_context", "random")


class ContextWindows(msgspec.Struct, frozen=True, kw_only=True):
    """diffusers' defaults; ``length`` is the model card's ``native_num_frames``."""

    length: int = 16  # frames per window (the motion adapter's training length)
    stride: int = 4  # frames between window starts
    weighting: str = "pyramid"  # how overlapping windows are averaged (WEIGHTINGS)
    noise: str = "shuffle_context"  # how the initial noise of frames past the first window is drawn (NOISE_TYPES)

    def __post_init__(self) -> None:
        if not 0 < self.stride <= self.length:
            raise ValueError(f"context stride must be in [1, length={self.length}], got {self.stride}")
        if self.weighting not in WEIGHTINGS or self.noise not in NOISE_TYPES:
            raise ValueError(f"weighting must be one of {WEIGHTINGS} and noise one of {NOISE_TYPES}")
        if self.weighting == "delayed_reverse_sawtooth" and self.length % 2:
            raise ValueError("delayed_reverse_sawtooth needs an even length (diffusers makes length + 1 weights)")

    def weights(self) -> list[float]:
        """Per-position weights of a window (diffusers' ``FreeNoiseTransformerBlock._get_frame_weights``)."""
        n = self.length
        if self.weighting == "flat":
            return [1.0] * n
        if n % 2 == 0:  # 4 -> pyramid [1, 2, 2, 1], sawtooth [0.01, 2, 2, 1]
            mid = n // 2
            pyramid = [*range(1, mid + 1), *range(mid, 0, -1)]
            sawtooth = [0.01] * (mid - 1) + [mid, *range(mid, 0, -1)]
        else:  # 5 -> pyramid [1, 2, 3, 2, 1], sawtooth [0.01, 0.01, 0.01, 3, 2, 1] (sic: refused above)
            mid = (n + 1) // 2
            pyramid = [*range(1, mid), mid, *range(mid - 1, 0, -1)]
            sawtooth = [0.01] * mid + [*range(mid, 0, -1)]
        return [float(w) for w in (pyramid if self.weighting == "pyramid" else sawtooth)]


def shuffle_context(latents: torch.Tensor, windows: ContextWindows, generator: torch.Generator) -> torch.Tensor:
    """diffusers' ``_prepare_latents_free_noise`` with ``shuffle_context`` on noise already drawn ([B, C, F, h, w]):
    from frame ``length`` on, every ``stride`` frames repeat the ``stride`` frames one window earlier in a seeded
    random order (``torch.randperm`` with the CPU generator, in diffusers' order). In place; returns ``latents``."""
    frames = latents.shape[2]
    for start in range(windows.length, frames, windows.stride):
        source = start - windows.length
        count = min(frames, source + windows.stride) - source
        order = torch.arange(source, source + count)[torch.randperm(count, generator=generator)]
        end = min(frames, start + count)
        latents[:, :, start:end] = latents[:, :, order[: end - start].to(latents.device)]
    return latents
