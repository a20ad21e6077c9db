"""The embedded demo model: a tiny, randomly initialised Stable Video Diffusion with a fixed seed.

It is saved the way a user's local weights look (a ``StableVideoDiffusionPipeline`` folder, like
``stable-video-diffusion-img2vid``) and loaded back through the family's loader (``loader.py``), so the demo
exercises the same code path as real weights. Its scheduler is configured as SVD ships it: EulerDiscrete,
v-prediction, Karras sigmas from 0.002 to 700, continuous timesteps. The build is cached under
``build/tiny-stable-video-diffusion/``, keyed on the sources.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from visualizr.export.family import ensure_cached_build, quiet_libraries, randomise_zero_weights
from visualizr.export.fingerprint import REPO_ROOT, hash_files, hash_json

TINY_SEED: Final = 20240612
IMAGE_SIZE: Final = 224  # the image encoder's input, as SVD's CLIP ViT-H/14 (diffusers resizes to 224)
IMAGE_EMBED_DIM: Final = 32
# Cheap at 1024 x 1024 (128 x 128 latent cells x 14 frames x 2 for guidance): the fewest channels the classes allow
# at the two largest levels (their GroupNorms have 32 groups) and no resnet on the way down there (only the up
# path's one, which merges the skip connection); attention (spatial and temporal) only at the smallest level, 1/8
# of the latent, and in the mid block. More channels down there cost nothing at any size and keep each GroupNorm
# group large enough at the smallest sizes (64 px: one latent cell), where two values per group made the network
# chaotic (a 1e-6 change of the input moved its output by 0.1). ~1.7-2.4 s per unet call at 1024 x 1024 (README).
UNET_BLOCK_OUT_CHANNELS: Final = (32, 32, 64, 128)
UNET_LAYERS_PER_BLOCK: Final = (0, 0, 1, 1)
UNET_DOWN_BLOCKS: Final = ("DownBlockSpatioTemporal",) * 3 + ("CrossAttnDownBlockSpatioTemporal",)
# Four blocks: 2**3 = 8 pixels per latent cell, as in SVD. The temporal decoder's norms need multiples of 32, and
# its mid block always has attention at the latent's size: decoded a frame at a time at 1024 x 1024
# (``cards.TINY_DECODE_MAX_CELLS``).
VAE_BLOCK_OUT_CHANNELS: Final = (32, 32, 32, 32)
LATENT_CHANNELS: Final = 4
NUM_FRAMES: Final = 14  # the frame count the UNet "was trained on", as stable-video-diffusion-img2vid
VAE_SCALING_FACTOR: Final = 0.18215
DEFAULT_BUILD_DIR: Final = REPO_ROOT / "build" / "tiny-stable-video-diffusion"

# stable-video-diffusion-img2vid(-xt)'s scheduler_config.json
SCHEDULER_CONFIG: Final = {
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "interpolation_type": "linear",
    "num_train_timesteps": 1000,
    "prediction_type": "v_prediction",
    "sigma_max": 700.0,
    "sigma_min": 0.002,
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "timestep_type": "continuous",
    "trained_betas": None,
    "use_karras_sigmas": True,
}


def tiny_build_key() -> str:
    """Changes whenever the tiny weights could change: this module or the shared build helpers."""
    sources = [Path(__file__), Path(__file__).resolve().parent.parent.parent / "family.py"]
    return hash_json({"seed": TINY_SEED, "sources": hash_files(sources)})


def _build_image_encoder():
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    config = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        projection_dim=IMAGE_EMBED_DIM,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=IMAGE_SIZE,
        patch_size=32,
        hidden_act="gelu",
    )
    return CLIPVisionModelWithProjection(config).eval()


def _build_unet():
    from diffusers import UNetSpatioTemporalConditionModel

    time_embed_dim = 8
    return UNetSpatioTemporalConditionModel(
        sample_size=16,
        in_channels=2 * LATENT_CHANNELS,
        out_channels=LATENT_CHANNELS,
        down_block_types=UNET_DOWN_BLOCKS,
        up_block_types=tuple(block.replace("Down", "Up") for block in reversed(UNET_DOWN_BLOCKS)),
        block_out_channels=UNET_BLOCK_OUT_CHANNELS,
        addition_time_embed_dim=time_embed_dim,
        projection_class_embeddings_input_dim=3 * time_embed_dim,  # fps, motion bucket, noise augmentation
        layers_per_block=UNET_LAYERS_PER_BLOCK,
        cross_attention_dim=IMAGE_EMBED_DIM,
        num_attention_heads=(2, 2, 4, 8),
        num_frames=NUM_FRAMES,
    ).eval()


def _build_vae():
    from diffusers import AutoencoderKLTemporalDecoder

    return AutoencoderKLTemporalDecoder(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * len(VAE_BLOCK_OUT_CHANNELS),
        block_out_channels=VAE_BLOCK_OUT_CHANNELS,
        layers_per_block=1,
        latent_channels=LATENT_CHANNELS,
        sample_size=256,
        scaling_factor=VAE_SCALING_FACTOR,
    ).eval()


def build_tiny_pipeline():
    """A diffusers StableVideoDiffusionPipeline of tiny random networks; same seed -> identical weights."""
    import torch
    from diffusers import EulerDiscreteScheduler, StableVideoDiffusionPipeline
    from transformers import CLIPImageProcessor

    builders = {"image_encoder": _build_image_encoder, "unet": _build_unet, "vae": _build_vae}
    networks = {}
    for offset, (name, build) in enumerate(builders.items()):
        torch.manual_seed(TINY_SEED + offset)  # one seed per network: changing one leaves the others alone
        networks[name] = build()
        randomise_zero_weights(networks[name])
    feature_extractor = CLIPImageProcessor(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    )
    scheduler = EulerDiscreteScheduler.from_config(SCHEDULER_CONFIG)
    return StableVideoDiffusionPipeline(feature_extractor=feature_extractor, scheduler=scheduler, **networks)


def save_tiny_weights(output_dir: Path) -> Path:
    """Build the pipeline and save it as a StableVideoDiffusionPipeline folder; returns the folder."""
    quiet_libraries()
    build_tiny_pipeline().save_pretrained(str(output_dir))
    return output_dir


def ensure_tiny_weights(build_dir: Path = DEFAULT_BUILD_DIR, force: bool = False) -> Path:
    """The cached tiny weights folder, (re)built when missing or stale."""
    return ensure_cached_build(build_dir, tiny_build_key(), save_tiny_weights, force)
