"""diffusers' own AnimateDiffPipeline on the tiny demo's weights, and its frames for a GenerationRequest: the
reference the AnimateDiff parity tests hold the loop to."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from visualizr.pipeline import GenerationRequest


def diffusers_animatediff() -> Any:
    """diffusers' AnimateDiffPipeline on its own copy of the tiny weights (saved and loaded back)."""
    from diffusers import AnimateDiffPipeline, MotionAdapter

    from visualizr.export.families.animatediff.loader import load_animatediff
    from visualizr.export.families.animatediff.tiny import ensure_tiny_weights

    sd_dir, adapter_dir = ensure_tiny_weights()
    weights = load_animatediff(sd_dir, adapter_dir)
    pipe = AnimateDiffPipeline(
        vae=weights.vae,
        text_encoder=weights.text_encoder,
        tokenizer=weights.tokenizer,
        unet=weights.unet,
        motion_adapter=MotionAdapter.from_pretrained(str(adapter_dir)),
        scheduler=type(weights.scheduler).from_config(weights.scheduler.config),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def diffusers_frames(pipe: Any, request: GenerationRequest, decode_chunk_size: int, **extra: Any) -> np.ndarray:
    """uint8 frames [F, H, W, 3] of ``pipe`` for ``request`` (same seed, CPU generator); ``extra``: more call
    arguments (``ip_adapter_image=``)."""
    output = pipe(
        prompt=request.prompt,
        negative_prompt=request.negative_prompt,
        num_frames=request.num_frames,
        height=request.height,
        width=request.width,
        num_inference_steps=request.num_inference_steps,
        guidance_scale=request.guidance_scale,
        generator=torch.Generator().manual_seed(request.seed),
        decode_chunk_size=decode_chunk_size,
        output_type="np",
        **extra,
    )
    return (np.asarray(output.frames[0]) * 255).round().astype(np.uint8)
