"""The embedded demo model: a tiny, randomly initialised AnimateDiff with a fixed seed.

It is saved the way a user's local weights look (a Stable Diffusion 1.5 diffusers folder plus a separate
motion adapter folder) and loaded back through the family's loader (``loader.py``), so the demo exercises the
same code path as real weights. The build is cached under ``build/tiny-animatediff/``, keyed on the sources and corpus.

Shaped to stay cheap at the largest size its card accepts (1024x1024, a latent of 128x128, and up to 120 frames):
attention, spatial and temporal, only where the latent is small (the UNet's cross-attention blocks and motion
transformers at 1/4 and 1/8 of the latent; the two top levels' motion modules have no transformer layers), few
channels at full resolution, and a VAE without mid-block attention and with one resnet per decoder level. The
``stable-diffusion/`` folder stays a valid Stable Diffusion 1.5 folder (a text-to-image model of its own).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

from visualizr.export.families.animatediff.tokenizer_training import CORPUS_PATH, TEXT_MAX_LENGTH, train_clip_tokenizer
from visualizr.export.family import ensure_cached_build, randomise_zero_weights
from visualizr.export.fingerprint import REPO_ROOT, hash_files, hash_json

TINY_SEED: Final = 20240611
TEXT_HIDDEN_SIZE: Final = 32
UNET_BLOCK_OUT_CHANNELS: Final = (4, 8, 16, 32)  # latent, 1/2, 1/4, 1/8 of it
UNET_DOWN_BLOCKS: Final = ("DownBlock2D", "DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D")
UNET_UP_BLOCKS: Final = ("CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D", "UpBlock2D")
MOTION_TRANSFORMER_LAYERS: Final = (0, 0, 1, 1)  # per UNet level: temporal attention at 1/4 and 1/8 only
NORM_GROUPS: Final = 4
VAE_BLOCK_OUT_CHANNELS: Final = (4, 4, 4, 4)  # four blocks: 2**3 = 8 pixels per latent cell, as in SD1.5
LATENT_CHANNELS: Final = 4
MOTION_MAX_FRAMES: Final = 32
VAE_SCALING_FACTOR: Final = 0.18215
# Frames per vae_decoder call: onnxruntime's CPU arena keeps ~0.5 GB per 1024x1024 frame of the call at its peak,
# while the time per frame hardly depends on the chunk (measured: chunks of 8, 4, 2 peak at 3.9, 2.0, 1.0 GB).
DECODE_CHUNK_SIZE: Final = 2
TOKENIZER_VOCAB_SIZE: Final = 1024

SD_DIRNAME: Final = "stable-diffusion"
MOTION_ADAPTER_DIRNAME: Final = "motion-adapter"
DEFAULT_BUILD_DIR: Final = REPO_ROOT / "build" / "tiny-animatediff"

# AnimateDiff's recommended scheduler settings on top of the SD1.5 noise schedule.
SCHEDULER_CONFIG: Final = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "linear",
    "clip_sample": False,
    "set_alpha_to_one": False,
    "steps_offset": 1,
    "timestep_spacing": "linspace",
    "prediction_type": "epsilon",
}


def tiny_build_key() -> str:
    """Changes whenever the tiny weights could change: this module, the tokenizer trainer, the corpus or the
    shared build helpers."""
    here = Path(__file__).resolve().parent
    sources = [Path(__file__), here / "tokenizer_training.py", CORPUS_PATH, here.parent.parent / "family.py"]
    return hash_json({"seed": TINY_SEED, "sources": hash_files(sources)})


def _build_text_encoder(tokenizer):
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=TEXT_HIDDEN_SIZE,
        intermediate_size=2 * TEXT_HIDDEN_SIZE,
        projection_dim=TEXT_HIDDEN_SIZE,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=TEXT_MAX_LENGTH,
        hidden_act="quick_gelu",
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return CLIPTextModel(config).eval()


def _build_unet():
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=32,
        in_channels=LATENT_CHANNELS,
        out_channels=LATENT_CHANNELS,
        down_block_types=UNET_DOWN_BLOCKS,
        up_block_types=UNET_UP_BLOCKS,
        block_out_channels=UNET_BLOCK_OUT_CHANNELS,
        layers_per_block=1,
        attention_head_dim=4,
        norm_num_groups=NORM_GROUPS,
        cross_attention_dim=TEXT_HIDDEN_SIZE,
    ).eval()


def _build_motion_adapter():
    from diffusers import MotionAdapter

    return MotionAdapter(
        block_out_channels=UNET_BLOCK_OUT_CHANNELS,
        motion_layers_per_block=1,
        motion_transformer_layers_per_block=MOTION_TRANSFORMER_LAYERS,
        motion_num_attention_heads=2,
        motion_norm_num_groups=NORM_GROUPS,
        motion_max_seq_length=MOTION_MAX_FRAMES,
        use_motion_mid_block=True,
    ).eval()


def _build_vae():
    from diffusers import AutoencoderKL

    blocks = len(VAE_BLOCK_OUT_CHANNELS)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * blocks,
        up_block_types=("UpDecoderBlock2D",) * blocks,
        block_out_channels=VAE_BLOCK_OUT_CHANNELS,
        layers_per_block=0,  # one resnet per decoder level (layers_per_block + 1); needs equal channels
        latent_channels=LATENT_CHANNELS,
        norm_num_groups=NORM_GROUPS,
        mid_block_add_attention=False,
        sample_size=256,
        scaling_factor=VAE_SCALING_FACTOR,
    ).eval()


def build_tiny_components(tokenizer_dir: Path) -> dict[str, object]:
    """Build every network with a fixed seed (same seed -> identical weights). ``tokenizer_dir`` must hold the
    trained tokenizer; its vocabulary size and special ids shape the text encoder."""
    import torch
    from diffusers import DDIMScheduler
    from transformers import CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(str(tokenizer_dir))
    builders = {
        "text_encoder": lambda: _build_text_encoder(tokenizer),
        "unet": _build_unet,
        "motion_adapter": _build_motion_adapter,
        "vae": _build_vae,
    }
    networks = {}
    for offset, (name, build) in enumerate(builders.items()):
        torch.manual_seed(TINY_SEED + offset)  # one seed per network: changing one leaves the others alone
        networks[name] = build()
    randomise_zero_weights(networks["motion_adapter"])
    return {"tokenizer": tokenizer, **networks, "scheduler": DDIMScheduler.from_config(SCHEDULER_CONFIG)}


def _model_index() -> dict[str, object]:
    import diffusers

    return {
        "_class_name": "StableDiffusionPipeline",
        "_diffusers_version": diffusers.__version__,
        "feature_extractor": [None, None],
        "requires_safety_checker": False,
        "safety_checker": [None, None],
        "scheduler": ["diffusers", "DDIMScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }


def save_tiny_weights(output_dir: Path) -> tuple[Path, Path]:
    """Train the tokenizer, build the networks and save them as ``stable-diffusion/`` (SD1.5 diffusers
    layout) and ``motion-adapter/``. Returns both folders."""
    from visualizr.export.family import quiet_libraries

    quiet_libraries()
    sd_dir, adapter_dir = output_dir / SD_DIRNAME, output_dir / MOTION_ADAPTER_DIRNAME
    train_clip_tokenizer(sd_dir / "tokenizer", vocab_size=TOKENIZER_VOCAB_SIZE)
    components = build_tiny_components(sd_dir / "tokenizer")
    for name in ("text_encoder", "unet", "vae", "scheduler"):
        components[name].save_pretrained(str(sd_dir / name))
    components["motion_adapter"].save_pretrained(str(adapter_dir))
    (sd_dir / "model_index.json").write_text(json.dumps(_model_index(), indent=2) + "\n")
    return sd_dir, adapter_dir


def ensure_tiny_weights(build_dir: Path = DEFAULT_BUILD_DIR, force: bool = False) -> tuple[Path, Path]:
    """The cached tiny weights folders, (re)built when missing or stale."""
    ensure_cached_build(build_dir, tiny_build_key(), save_tiny_weights, force)
    return build_dir / SD_DIRNAME, build_dir / MOTION_ADAPTER_DIRNAME
