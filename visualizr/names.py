"""One tensor-name and model-name vocabulary shared by export, config.pbtxt rendering, the pipeline and the API.

Nothing else in the project spells these strings: import them from here.
"""

from __future__ import annotations

from typing import Final

# ---------------------------------------------------------------------------------------------------------------
# Component networks (exported to ONNX; served as Python-backend onnxruntime models on CPU, tensorrt_plan on GPU)
# ---------------------------------------------------------------------------------------------------------------

# text_encoder: input_ids int64 [B, 77] -> last_hidden_state float32 [B, 77, D]
TEXT_INPUT_IDS: Final = "input_ids"
TEXT_HIDDEN_STATES: Final = "last_hidden_state"

# unet (UNetMotionModel): sample float32 [B, 4, F, h, w], timestep float32 [B],
# encoder_hidden_states float32 [B, 77, D] -> noise_pred float32 [B, 4, F, h, w]
UNET_SAMPLE: Final = "sample"
UNET_TIMESTEP: Final = "timestep"
UNET_ENCODER_HIDDEN_STATES: Final = "encoder_hidden_states"
UNET_NOISE_PRED: Final = "noise_pred"

# vae_decoder: latent_sample float32 [N, 4, h, w] (already divided by the VAE scaling factor)
# -> image float32 [N, 3, 8h, 8w] in [-1, 1]
VAE_LATENT: Final = "latent_sample"
VAE_IMAGE: Final = "image"

# vae_encoder (image-to-video): pixel_values float32 [N, 3, H, W] in [-1, 1]
# -> latent float32 [N, 4, H/8, W/8]: the mean of the latent distribution, NOT yet multiplied by the scaling factor
VAE_ENCODER_PIXELS: Final = "pixel_values"
VAE_ENCODER_LATENT: Final = "latent"

# Every component network of a model family, in the order their Triton models are loaded.
COMPONENTS: Final = ("text_encoder", "unet", "vae_decoder", "vae_encoder")


def component_model_name(family: str, component: str) -> str:
    """Triton model name of one component network of a model family, e.g. ``animatediff_unet``."""
    if component not in COMPONENTS:
        raise ValueError(f"unknown component {component!r}; expected one of {COMPONENTS}")
    return f"{family}_{component}"


# ---------------------------------------------------------------------------------------------------------------
# Pipeline model (decoupled Python backend, BLS). Its Triton model name is the public model id, e.g. "animatediff".
# ---------------------------------------------------------------------------------------------------------------

# Inputs, each of shape [1]
IN_PROMPT: Final = "prompt"  # BYTES
IN_NEGATIVE_PROMPT: Final = "negative_prompt"  # BYTES (optional)
IN_WIDTH: Final = "width"  # INT32
IN_HEIGHT: Final = "height"  # INT32
IN_NUM_FRAMES: Final = "num_frames"  # INT32
IN_NUM_INFERENCE_STEPS: Final = "num_inference_steps"  # INT32
IN_GUIDANCE_SCALE: Final = "guidance_scale"  # FP32
IN_SEED: Final = "seed"  # INT64
# Image-to-video (optional): the source image, already resized by the API to [height, width, 3], and how far the
# video may depart from it (diffusers' img2img "strength": 0 keeps the image, 1 ignores it).
IN_IMAGE: Final = "image"  # UINT8 [H, W, 3]
IN_STRENGTH: Final = "strength"  # FP32 [1]

# Outputs. Every response carries STEP, TOTAL_STEPS and PHASE; the last one also carries FRAMES.
OUT_STEP: Final = "step"  # INT32 [1]: denoising steps completed so far
OUT_TOTAL_STEPS: Final = "total_steps"  # INT32 [1]
OUT_PHASE: Final = "phase"  # BYTES [1]: one of PHASES
OUT_FRAMES: Final = "frames"  # UINT8 [F, H, W, 3]

PHASE_TEXT_ENCODING: Final = "text_encoding"
PHASE_FRAME_GENERATION: Final = "frame_generation"
PHASE_DECODING: Final = "decoding"
PHASE_DONE: Final = "done"
# The API adds one phase of its own after Triton is done: video encoding with PyAV.
PHASE_ENCODING: Final = "encoding"
PHASES: Final = (PHASE_TEXT_ENCODING, PHASE_FRAME_GENERATION, PHASE_DECODING, PHASE_DONE)
