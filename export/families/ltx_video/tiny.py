"""The embedded demo model: a tiny, randomly initialised LTX-Video with a fixed seed.

It is saved the way a user's local weights look (an ``LTXPipeline`` folder, like ``Lightricks/LTX-Video-0.9.5``)
and loaded back through the family's loader (``loader.py``), so the demo exercises the same code path as real
weights. Its networks keep the real layouts at the smallest widths: a T5 encoder (2 layers, d_model 16) with a
Unigram tokenizer trained offline (``tokenizer_training``); the transformer with patch size 1, RoPE over
(frame, y, x) and adaptive norms per token (2 blocks of 2 heads x 8); the VAE in the 0.9.5 layout (32 x 32 x 8
compression: patches of 4, downsampling spatial, temporal, spatio-temporal twice; a timestep-conditioned decoder
with residual 2x upsamplers). Its scheduler is configured as LTX-Video ships it (flow matching, dynamic
shifting). The build is cached under ``build/tiny-ltx-video/``, keyed on the sources and corpus.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from visualizr.export.families.animatediff.tokenizer_training import CORPUS_PATH
from visualizr.export.families.ltx_video.tokenizer_training import train_t5_tokenizer
from visualizr.export.family import ensure_cached_build, quiet_libraries, randomise_zero_weights
from visualizr.export.fingerprint import REPO_ROOT, hash_files, hash_json

TINY_SEED: Final = 20241122
LATENT_CHANNELS: Final = 8
TEXT_HIDDEN_SIZE: Final = 16  # T5's d_model == the transformer's caption_channels
DEFAULT_BUILD_DIR: Final = REPO_ROOT / "build" / "tiny-ltx-video"

# Lightricks/LTX-Video(-0.9.5)'s scheduler/scheduler_config.json
SCHEDULER_CONFIG: Final = {
    "base_image_seq_len": 1024,
    "base_shift": 0.95,
    "invert_sigmas": False,
    "max_image_seq_len": 4096,
    "max_shift": 2.05,
    "num_train_timesteps": 1000,
    "shift": 1.0,
    "shift_terminal": 0.1,
    "use_beta_sigmas": False,
    "use_dynamic_shifting": True,
    "use_exponential_sigmas": False,
    "use_karras_sigmas": False,
}


def tiny_build_key() -> str:
    """Changes whenever the tiny weights could change: this module, the tokenizer trainer, the corpus or the
    shared build helpers."""
    here = Path(__file__).resolve().parent
    sources = [Path(__file__), here / "tokenizer_training.py", CORPUS_PATH, here.parent.parent / "family.py"]
    return hash_json({"seed": TINY_SEED, "sources": hash_files(sources)})


def _build_text_encoder(vocab_size: int):
    from transformers import T5Config, T5EncoderModel

    config = T5Config(
        vocab_size=vocab_size,
        d_model=TEXT_HIDDEN_SIZE,
        d_kv=8,
        d_ff=32,
        num_layers=2,
        num_heads=2,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=32,
        feed_forward_proj="gated-gelu",
    )
    return T5EncoderModel(config).eval()


def _build_transformer():
    from diffusers import LTXVideoTransformer3DModel

    return LTXVideoTransformer3DModel(
        in_channels=LATENT_CHANNELS,
        out_channels=LATENT_CHANNELS,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=2,
        attention_head_dim=8,
        cross_attention_dim=16,
        num_layers=2,
        caption_channels=TEXT_HIDDEN_SIZE,
    ).eval()


def _build_vae():
    from diffusers import AutoencoderKLLTXVideo

    return AutoencoderKLLTXVideo(
        latent_channels=LATENT_CHANNELS,
        block_out_channels=(8, 8, 16, 16, 16),
        down_block_types=("LTXVideo095DownBlock3D",) * 4,
        decoder_block_out_channels=(8, 16, 32),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, True, True),
        decoder_spatio_temporal_scaling=(True, True, True),
        decoder_inject_noise=(False, False, False, False),
        downsample_type=("spatial", "temporal", "spatiotemporal", "spatiotemporal"),
        upsample_residual=(True, True, True),
        upsample_factor=(2, 2, 2),
        timestep_conditioning=True,
        patch_size=4,
        patch_size_t=1,
        scaling_factor=1.0,
        encoder_causal=True,
        decoder_causal=False,
        spatial_compression_ratio=32,
        temporal_compression_ratio=8,
    ).eval()


def build_tiny_pipeline(tokenizer_dir: Path):
    """A diffusers LTXPipeline of tiny random networks; same seed -> identical weights."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, LTXPipeline
    from transformers import T5TokenizerFast

    tokenizer = T5TokenizerFast.from_pretrained(str(tokenizer_dir))
    builders = {
        "text_encoder": lambda: _build_text_encoder(len(tokenizer)),
        "transformer": _build_transformer,
        "vae": _build_vae,
    }
    networks = {}
    for offset, (name, build) in enumerate(builders.items()):
        torch.manual_seed(TINY_SEED + offset)  # one seed per network: changing one leaves the others alone
        networks[name] = build()
        randomise_zero_weights(networks[name])
    with torch.no_grad():  # the latents' statistics, as a trained VAE has them (not zeros and ones)
        networks["vae"].latents_mean.uniform_(-0.1, 0.1)
        networks["vae"].latents_std.uniform_(0.8, 1.2)
    scheduler = FlowMatchEulerDiscreteScheduler.from_config(SCHEDULER_CONFIG)
    return LTXPipeline(scheduler=scheduler, tokenizer=tokenizer, **networks)


def save_tiny_weights(output_dir: Path) -> Path:
    """Train the tokenizer, build the pipeline and save it as an LTXPipeline folder; returns the folder."""
    quiet_libraries()
    tokenizer_dir = train_t5_tokenizer(output_dir / "tokenizer")
    build_tiny_pipeline(tokenizer_dir).save_pretrained(str(output_dir))
    return output_dir


def ensure_tiny_weights(build_dir: Path = DEFAULT_BUILD_DIR, force: bool = False) -> Path:
    """The cached tiny weights folder, (re)built when missing or stale."""
    return ensure_cached_build(build_dir, tiny_build_key(), save_tiny_weights, force)
