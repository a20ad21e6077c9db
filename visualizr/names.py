"""The tensor and model-name vocabulary shared by export, config.pbtxt rendering, the pipelines and the API.

Tensor, component and model names are spelled only here (or, for the tensors only one model family has, in
that family's ``visualizr.families.<family>.vocabulary``): import them. The model card's parameter names
(``visualizr.model_card``) are the API's words; where one is also a pipeline input (``width``, ``seed``) the
request field and the tensor share the ``IN_*`` constant.

``PIPELINE_INPUTS`` / ``PIPELINE_OUTPUTS`` are THE table of the pipeline models' tensors, names and dtypes: the
rendered config.pbtxt, the request/response code (``visualizr.triton.pipeline_io``) and the table in
docs/ARCHITECTURE.md are derived from it. Each family says which of the inputs it takes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# ---------------------------------------------------------------------------------------------------------------
# Component networks (exported to ONNX; served as Python-backend onnxruntime models on CPU, tensorrt_plan on GPU).
# Every family's denoiser and VAE use these names; a family's own tensors live in its vocabulary module.
# ---------------------------------------------------------------------------------------------------------------

# unet: sample float32 (layout per family), timestep float32 [B], conditioning ... -> noise_pred float32
UNET_SAMPLE: Final = "sample"
UNET_TIMESTEP: Final = "timestep"
UNET_ENCODER_HIDDEN_STATES: Final = "encoder_hidden_states"
UNET_NOISE_PRED: Final = "noise_pred"

# vae_decoder: latent_sample float32 [N, C, h, w] (already divided by the VAE scaling factor)
# -> image float32 [N, 3, 8h, 8w] in [-1, 1]
VAE_LATENT: Final = "latent_sample"
VAE_IMAGE: Final = "image"

# vae_encoder (image conditioning): pixel_values float32 [N, 3, H, W] in [-1, 1]
# -> latent float32 [N, C, H/8, W/8]: the mean (= mode) of the latent distribution, NOT multiplied by the scaling factor
VAE_ENCODER_PIXELS: Final = "pixel_values"
VAE_ENCODER_LATENT: Final = "latent"

# Component names every family uses for its denoiser and VAE (a family may add its own, e.g. an image encoder).
UNET: Final = "unet"
VAE_DECODER: Final = "vae_decoder"
VAE_ENCODER: Final = "vae_encoder"

# text_encoder (CLIP, of every Stable Diffusion-class prompt: AnimateDiff's, SVD's keyframe stage's):
# input_ids int64 [B, L] -> last_hidden_state float32 [B, L, D]
TEXT_ENCODER: Final = "text_encoder"
TEXT_INPUT_IDS: Final = "input_ids"
TEXT_HIDDEN_STATES: Final = "last_hidden_state"
# image_encoder (CLIPVisionModelWithProjection, of Stable Video Diffusion and of AnimateDiff's IP-Adapter):
# pixel_values float32 [B, 3, S, S] (CLIP-normalised) -> image_embeds float32 [B, D]
IMAGE_ENCODER: Final = "image_encoder"
IMAGE_ENCODER_PIXELS: Final = "pixel_values"
IMAGE_EMBEDS: Final = "image_embeds"


# Files of a component model's version folder, and its Triton config parameter for the CPU engine's threads.
ONNX_FILENAME: Final = "model.onnx"
TORCHSCRIPT_FILENAME: Final = "model.torchscript.pt"  # the same wrapper traced by torch.jit (the torch engine's)
INTRA_OP_THREADS_PARAMETER: Final = "intra_op_num_threads"


def component_model_name(model_id: str, component: str) -> str:
    """Triton model name of one component network of a model, e.g. ``animatediff_unet``."""
    if not component or not component.replace("_", "").isalnum():
        raise ValueError(f"invalid component name {component!r}")
    return f"{model_id}_{component}"


# ---------------------------------------------------------------------------------------------------------------
# Pipeline models (decoupled Python backend, BLS). A pipeline model's Triton name is the public model id.
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PipelineTensor:
    """One pipeline tensor. ``dtype`` is a numpy dtype name, or ``bytes`` for Triton's BYTES (UTF-8 text).
    Every input is also the field of ``visualizr.pipeline.GenerationRequest`` of the same name."""

    name: str
    dtype: str
    dims: tuple[int, ...]
    description: str
    requires: str | None = None  # an input that only means something with this other one (sent only with it)


IN_PROMPT: Final = "prompt"
IN_NEGATIVE_PROMPT: Final = "negative_prompt"
IN_WIDTH: Final = "width"
IN_HEIGHT: Final = "height"
IN_NUM_FRAMES: Final = "num_frames"
IN_NUM_INFERENCE_STEPS: Final = "num_inference_steps"
IN_GUIDANCE_SCALE: Final = "guidance_scale"
IN_MIN_GUIDANCE_SCALE: Final = "min_guidance_scale"
IN_SEED: Final = "seed"
IN_IMAGE: Final = "image"
IN_END_IMAGE: Final = "end_image"  # the last frame of a keyframe (first + last frame) video, [H, W, 3] uint8
IN_STRENGTH: Final = "strength"
IN_FPS: Final = "fps"
IN_MOTION_BUCKET_ID: Final = "motion_bucket_id"
IN_NOISE_AUG_STRENGTH: Final = "noise_aug_strength"
# Reserved for the families that take them (added to PIPELINE_INPUTS with the family code that reads them).
IN_IP_ADAPTER_IMAGE: Final = "ip_adapter_image"  # a character's reference picture (IP-Adapter), [H, W, 3] uint8
IN_IP_ADAPTER_SCALE: Final = "ip_adapter_scale"  # the adapter scale, [0, 1]
IN_PREVIEW_EVERY: Final = "preview_every"  # live previews: one every N denoising steps (absent or 0: none)

OUT_STEP: Final = "step"
OUT_TOTAL_STEPS: Final = "total_steps"
OUT_PHASE: Final = "phase"
OUT_FRAMES: Final = "frames"
OUT_KEYFRAME: Final = "keyframe"
OUT_PREVIEW: Final = "preview"

PIPELINE_INPUTS: Final = {
    t.name: t
    for t in (
        PipelineTensor(IN_PROMPT, "bytes", (1,), "the prompt"),
        PipelineTensor(IN_NEGATIVE_PROMPT, "bytes", (1,), "what the video should not show"),
        PipelineTensor(IN_WIDTH, "int32", (1,), "frame width in pixels"),
        PipelineTensor(IN_HEIGHT, "int32", (1,), "frame height in pixels"),
        PipelineTensor(IN_NUM_FRAMES, "int32", (1,), "frames to generate"),
        PipelineTensor(IN_NUM_INFERENCE_STEPS, "int32", (1,), "denoising steps"),
        PipelineTensor(
            IN_GUIDANCE_SCALE, "float32", (1,), "classifier-free guidance scale (of a per-frame ramp: the last frame's)"
        ),
        PipelineTensor(IN_MIN_GUIDANCE_SCALE, "float32", (1,), "guidance scale of the first frame of a per-frame ramp"),
        PipelineTensor(IN_SEED, "int64", (1,), "random seed (absent: a random one)"),
        PipelineTensor(IN_IMAGE, "uint8", (-1, -1, 3), "source image, already [height, width, 3]"),
        PipelineTensor(
            IN_STRENGTH, "float32", (1,), "how far the video may depart from the image, (0, 1]", requires=IN_IMAGE
        ),
        PipelineTensor(
            IN_END_IMAGE, "uint8", (-1, -1, 3), "the video's last frame, [height, width, 3]", requires=IN_IMAGE
        ),
        PipelineTensor(IN_FPS, "int32", (1,), "frame rate the video is conditioned on"),
        PipelineTensor(IN_MOTION_BUCKET_ID, "int32", (1,), "amount of motion the video is conditioned on, [0, 255]"),
        PipelineTensor(IN_NOISE_AUG_STRENGTH, "float32", (1,), "noise added to the conditioning image, >= 0"),
        PipelineTensor(IN_IP_ADAPTER_IMAGE, "uint8", (-1, -1, 3), "IP-Adapter reference picture, [H, W, 3]"),
        PipelineTensor(
            IN_IP_ADAPTER_SCALE, "float32", (1,), "IP-Adapter scale, [0, 1] (absent: 1)", requires=IN_IP_ADAPTER_IMAGE
        ),
        PipelineTensor(IN_PREVIEW_EVERY, "int32", (1,), "a latent preview every N denoising steps (absent, 0: none)"),
    )
}
# Every response carries step, total_steps and phase; the last one (phase done) also carries frames (and the
# keyframe, when a keyframe stage made the first frame from the prompt).
PIPELINE_OUTPUTS: Final = {
    t.name: t
    for t in (
        PipelineTensor(OUT_STEP, "int32", (1,), "denoising steps completed so far"),
        PipelineTensor(OUT_TOTAL_STEPS, "int32", (1,), "denoising steps this request runs"),
        PipelineTensor(OUT_PHASE, "bytes", (1,), "one of PHASES"),
        PipelineTensor(OUT_FRAMES, "uint8", (-1, -1, -1, 3), "the video, [num_frames, height, width, 3]"),
        PipelineTensor(
            OUT_KEYFRAME, "uint8", (-1, -1, 3), "the first frame, made from the prompt (keyframe stage), [H, W, 3]"
        ),
        PipelineTensor(
            OUT_PREVIEW, "uint8", (-1, -1, -1, 3), "a few frames projected from the latents, [F', h, w, 3] (previews)"
        ),
    )
}

PHASE_TEXT_ENCODING: Final = "text_encoding"
PHASE_IMAGE_ENCODING: Final = "image_encoding"
PHASE_KEYFRAME: Final = "keyframe"  # text-to-video on an image-to-video model: the first frame made from the prompt
PHASE_FRAME_GENERATION: Final = "frame_generation"
PHASE_DECODING: Final = "decoding"
PHASE_DONE: Final = "done"
# The API adds one phase of its own after Triton is done: video encoding with PyAV.
PHASE_ENCODING: Final = "encoding"
# The first phase of a generation encodes its conditioning: the prompt or the image, per family.
CONDITIONING_PHASES: Final = (PHASE_TEXT_ENCODING, PHASE_IMAGE_ENCODING)
PHASES: Final = (*CONDITIONING_PHASES, PHASE_KEYFRAME, PHASE_FRAME_GENERATION, PHASE_DECODING, PHASE_DONE)
