"""Long clips from Stable Video Diffusion: a clip longer than one pass makes (the model's native window, the frame
count its UNet was made for) is generated as segments of that window that overlap by a few frames. Each segment
after the first is conditioned on the frame where it begins (the previous segment's frame at ``stride``), the
overlapping frames are cross-faded from the earlier segment to the later one, and the last segment is trimmed to
the requested count::

    segment 0   frames  0 .. 13              (window 14, overlap 2: stride 12)
    segment 1   frames         12 .. 25      conditioned on segment 0's frame 12; frames 12, 13 cross-faded
    segment 2   frames                24 .. 37 ...

Frame k of the clip is segment s's frame k - start(s), or a mix of two segments' frames where they overlap, so no
frame is repeated or dropped at a border.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from visualizr.pipeline.request import MAX_SEED

DEFAULT_OVERLAP = 2  # frames consecutive segments share


@dataclass(frozen=True)
class SegmentPlan:
    num_frames: int  # frames of the clip
    window: int  # frames per segment: the native window, or num_frames when one pass makes the clip
    overlap: int = 0  # frames consecutive segments share

    @classmethod
    def of(cls, num_frames: int, native_num_frames: int, overlap: int = DEFAULT_OVERLAP) -> SegmentPlan:
        """One segment when the clip fits the native window (or the model has none: 0), else windows of it."""
        if native_num_frames <= 0 or num_frames <= native_num_frames:
            return cls(num_frames, num_frames)
        if not 0 < overlap < native_num_frames:
            raise ValueError(f"segment overlap must be in (0, {native_num_frames}), got {overlap}")
        return cls(num_frames, native_num_frames, overlap)

    @property
    def stride(self) -> int:
        """Frames between the starts of consecutive segments; also the frame of a segment the next one begins at."""
        return self.window - self.overlap

    @property
    def count(self) -> int:
        return 1 + max(0, math.ceil((self.num_frames - self.window) / self.stride))

    @property
    def starts(self) -> tuple[int, ...]:
        return tuple(index * self.stride for index in range(self.count))


def segment_seed(seed: int, index: int) -> int:
    """Segment ``index``'s seed: the request's for the first (so that a clip of one segment is exactly SVD's), then
    the next ones."""
    return (seed + index) % (MAX_SEED + 1)


@dataclass
class ClipStitcher:
    """Assembles the clip while segments arrive in order (uint8 [window, H, W, 3] each); ``video`` is
    [num_frames, H, W, 3] once the last one is added."""

    plan: SegmentPlan
    video: np.ndarray | None = None
    added: int = field(default=0, init=False)

    def add(self, frames: np.ndarray) -> None:
        plan = self.plan
        if self.added >= plan.count or len(frames) != plan.window:
            raise ValueError(f"segment {self.added} of {plan.count}: expected {plan.window} frames, got {len(frames)}")
        if self.video is None:
            self.video = np.empty((plan.num_frames, *frames.shape[1:]), dtype=np.uint8)
        start = plan.starts[self.added]
        kept = frames[: min(plan.window, plan.num_frames - start)]
        shared = 0 if self.added == 0 else min(plan.overlap, len(kept))
        if shared:  # the later segment's share grows linearly across the overlap: 1/(o+1), ..., o/(o+1)
            later = (np.arange(1, shared + 1, dtype=np.float32) / (plan.overlap + 1)).reshape(-1, 1, 1, 1)
            earlier = self.video[start : start + shared].astype(np.float32)
            mixed = (1.0 - later) * earlier + later * kept[:shared].astype(np.float32)
            self.video[start : start + shared] = np.clip(np.round(mixed), 0, 255).astype(np.uint8)
        self.video[start + shared : start + len(kept)] = kept[shared:]
        self.added += 1
