"""Progress of a running job: the pipeline's phases mapped onto percent bands, as the status and WebSocket show it
(text_encoding or image_encoding 5, then 5-90 by the steps done of all steps: keyframe and frame_generation steps
alike, so that a job of two stages or several segments moves forward only (a segment's decoding before the next
segment's steps keeps its steps' share); decoding 90, encoding 95, done 100)."""

from __future__ import annotations

from visualizr import names

TEXT_ENCODING_DONE = 5
FRAME_GENERATION_DONE = 90
DECODING_DONE = 95


def progress_of(phase: str, step: int, total_steps: int) -> tuple[int, str]:
    """(progress percent, current_step) after a pipeline response of ``phase``."""
    mid_clip = phase == names.PHASE_DECODING and step < total_steps  # a segment's, before the next one's steps
    if phase in (*names.CONDITIONING_PHASES, names.PHASE_KEYFRAME, names.PHASE_FRAME_GENERATION) or mid_clip:
        # text_encoding / image_encoding (after the keyframe's steps, for text-to-video through a keyframe), steps
        fraction = min(max(step / total_steps, 0.0), 1.0) if total_steps > 0 else 0.0
        span = FRAME_GENERATION_DONE - TEXT_ENCODING_DONE
        return TEXT_ENCODING_DONE + int(span * fraction), phase
    if phase == names.PHASE_DECODING:
        return FRAME_GENERATION_DONE, names.PHASE_DECODING
    if phase == names.PHASE_DONE:
        return DECODING_DONE, names.PHASE_ENCODING
    return 0, phase
