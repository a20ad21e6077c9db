"""Live previews for WebSocket subscribers that ask for them: the pipeline's latent preview frames (uint8
[F', h, w, 3], ``visualizr.pipeline.previews``) as one small JPEG strip, at most ``PREVIEWS_PER_SECOND`` a job."""

from __future__ import annotations

import base64
import io
import math

import numpy as np
from PIL import Image

from visualizr.frontend.generation.schemas import WsPreview

MAX_PREVIEW_SIDE = 256  # pixels on the long side of a preview picture (the frames side by side)
PREVIEWS_PER_SECOND = 2.0  # per job
JPEG_QUALITY = 70


def preview_picture(frames: np.ndarray) -> tuple[str, int, int]:
    """The frames side by side, scaled to MAX_PREVIEW_SIDE on the long side, as a JPEG data URL, width, height."""
    strip = Image.fromarray(np.ascontiguousarray(np.concatenate(list(frames), axis=1)))
    scale = MAX_PREVIEW_SIDE / max(strip.size)
    size = (max(1, round(strip.width * scale)), max(1, round(strip.height * scale)))
    strip = strip.resize(size, Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    strip.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"), *size


def preview_message(request_id: str, step: int, total_steps: int, frames: np.ndarray) -> WsPreview:
    image, width, height = preview_picture(frames)
    return WsPreview(
        type="preview",
        request_id=request_id,
        step=step,
        total_steps=total_steps,
        image=image,
        width=width,
        height=height,
        frames=len(frames),
    )


class PreviewThrottle:
    """One job's previews: ``due`` at most PREVIEWS_PER_SECOND times a second."""

    def __init__(self, per_second: float = PREVIEWS_PER_SECOND) -> None:
        self.interval = 1.0 / per_second
        self._last = -math.inf

    def due(self, now: float) -> bool:
        if now - self._last < self.interval:
            return False
        self._last = now
        return True
