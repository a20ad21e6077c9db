"""Progress events the denoising loop yields, one per milestone."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from visualizr.names import PHASE_DONE


@dataclass(frozen=True)
class ProgressEvent:
    """``step`` counts denoising steps completed so far; the last (phase ``done``) carries ``frames``, and the
    ``keyframe`` uint8 [H, W, 3] when a keyframe stage made the first frame from the prompt; a denoising step's
    event may carry a ``preview`` uint8 [F', h, w, 3] (requests with ``preview_every``)."""

    phase: str
    step: int
    total_steps: int
    frames: np.ndarray | None = None
    keyframe: np.ndarray | None = None
    preview: np.ndarray | None = None

    @property
    def is_final(self) -> bool:
        return self.phase == PHASE_DONE
