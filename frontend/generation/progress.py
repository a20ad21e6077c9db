"""Progress of a running job: the pipeline's phases mapped onto percent bands, as the status and WebSocket show it
(text_encoding or image_encoding 5, frame_generation 5-90 by step, decoding 90, encoding 95, done 100)."""

from __future__ import annotations

from visualizr import names

TEXT_ENCODING_DONE = 5
FRAME_GENERATION_DONE = 90
DECODING_DONE = 95


def progress_of(phase: str, step: int, total_steps: int) -> tuple[int, str]:
    """(progress percent, current_step) after a pipeline response of ``phase``."""
    if phase in names.CONDITIONING_PHASES:  # text_encoding, or image_encoding (image-only families)
        return TEXT_ENCODING_DONE, phase
    if phase == names.PHASE_FRAME_GENERATION:
        fraction = min(max(step / total_steps, 0.0), 1.0) if total_steps > 0 else 0.0
        span = FRAME_GENERATION_DONE - TEXT_ENCODING_DONE
        return TEXT_ENCODING_DONE + int(span * fraction), names.PHASE_FRAME_GENERATION
    if phase == names.PHASE_DECODING:
        return FRAME_GENERATION_DONE, names.PHASE_DECODING
    if phase == names.PHASE_DONE:
        return DECODING_DONE, names.PHASE_ENCODING
    return 0, phase
