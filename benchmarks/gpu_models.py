"""The networks the GPU benchmark times: the published AnimateDiff architecture at its real sizes, randomly
initialised (no weights can be downloaded), or any local weights through the export's loader.

Real sizes (checked by tests/test_benchmark_gpu.py on the meta device): Stable Diffusion 1.5's UNet (859.5 M
parameters) with the AnimateDiff v1.5-2 motion adapter (453.2 M), CLIP ViT-L/14's text encoder (123.1 M) and the
SD VAE (83.7 M). FLOPs are counted on the meta device (no memory, no compute): the UNet with motion modules is
17.75 TFLOP per forward at 16 frames of 512x512, batch 1.

LTX-Video 0.9.5 likewise: T5-XXL's encoder (4.76 B), the transformer (1.92 B) and the 0.9.5 VAE (1.25 B); at 121
frames of 768x512 with guidance (batch 2) 58.2 TFLOP per transformer forward, 60.2 per VAE decode, 2.4 for T5.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from visualizr.export.families.animatediff.loader import AnimateDiffComponents, load_animatediff
from visualizr.export.families.animatediff.tiny import SCHEDULER_CONFIG, ensure_tiny_weights

SD15_UNET = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "layers_per_block": 2,
    "block_out_channels": (320, 640, 1280, 1280),
    "down_block_types": ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    "up_block_types": ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    "cross_attention_dim": 768,
    "attention_head_dim": 8,
}
ANIMATEDIFF_V152_ADAPTER = {
    "block_out_channels": (320, 640, 1280, 1280),
    "motion_layers_per_block": 2,
    "motion_mid_block_layers_per_block": 1,
    "motion_num_attention_heads": 8,
    "motion_norm_num_groups": 32,
    "motion_max_seq_length": 32,
    "use_motion_mid_block": True,
}
CLIP_VIT_L14_TEXT = {
    "vocab_size": 49408,
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "max_position_embeddings": 77,
    "hidden_act": "quick_gelu",
    "projection_dim": 768,
}
SD_VAE = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "block_out_channels": (128, 256, 512, 512),
    "layers_per_block": 2,
    "latent_channels": 4,
    "sample_size": 512,
    "scaling_factor": 0.18215,
}


def real_size_networks(device: str | torch.device = "cpu", seed: int = 0) -> dict[str, torch.nn.Module]:
    """text_encoder, unet (UNetMotionModel), vae at the published sizes, randomly initialised on ``device``
    (``"meta"``: shapes only)."""
    from diffusers import AutoencoderKL, MotionAdapter, UNet2DConditionModel, UNetMotionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    with torch.device(device):
        unet = UNetMotionModel.from_unet2d(UNet2DConditionModel(**SD15_UNET), MotionAdapter(**ANIMATEDIFF_V152_ADAPTER))
        networks = {
            "text_encoder": CLIPTextModel(CLIPTextConfig(**CLIP_VIT_L14_TEXT)),
            "unet": unet,
            "vae": AutoencoderKL(**SD_VAE),
        }
    return {name: network.eval().requires_grad_(False) for name, network in networks.items()}


def real_size_components(device: str | torch.device, seed: int = 0) -> AnimateDiffComponents:
    """The real-size networks with the demo's tokenizer (a CLIP BPE tokenizer trained offline: its ids fit the
    real vocabulary) and AnimateDiff's DDIM schedule."""
    from diffusers import DDIMScheduler
    from transformers import CLIPTokenizer

    sd_dir, _ = ensure_tiny_weights()
    networks = real_size_networks(device, seed)
    return AnimateDiffComponents(
        tokenizer=CLIPTokenizer.from_pretrained(str(sd_dir / "tokenizer")),
        scheduler=DDIMScheduler.from_config(SCHEDULER_CONFIG),
        source_name="random-real-size",
        **networks,
    )


def load_components(size: str, device: str, weights: Path | None = None, adapter: Path | None = None):
    """``weights`` (a local diffusers folder, e.g. one --save-weights wrote), else ``size``: "tiny" (the demo's
    own weights, what `make repository` exports) or "real" (random, published sizes)."""
    if weights is not None:
        return load_animatediff(weights, adapter)
    if size == "tiny":
        return load_animatediff(*ensure_tiny_weights())
    return real_size_components(device)


ANIMATEDIFF_SUBFOLDERS = ("tokenizer", "text_encoder", "unet", "vae", "scheduler")


def save_components(components: Any, folder: Path, subfolders: tuple[str, ...] = ANIMATEDIFF_SUBFOLDERS) -> Path:
    """A diffusers folder that `python -m visualizr.export --weights` loads (AnimateDiff's unet/ holds the
    UNetMotionModel)."""
    for name in subfolders:
        getattr(components, name).save_pretrained(str(folder / name))
    return folder


def meta_copy(network: torch.nn.Module) -> torch.nn.Module:
    """The same architecture with shape-only parameters (diffusers models from their config, transformers too)."""
    with torch.device("meta"):
        if hasattr(network, "from_config"):
            return type(network).from_config(network.config).eval()
        return type(network)(network.config).eval()


def count_flops(call: Any, *inputs: torch.Tensor) -> int:
    """FLOPs of ``call(*inputs)`` with every tensor on the meta device."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        call(*inputs)
    return counter.get_total_flops()


def stage_flops(components: AnimateDiffComponents, batch: int, frames: int, height: int, width: int) -> dict[str, int]:
    """FLOPs of one text-encoder call (``batch`` prompts), one UNet forward (``batch`` samples) and the VAE
    decode of ``frames`` frames, at ``height`` x ``width`` pixels."""
    factor = components.vae_scale_factor
    latent = (components.latent_channels, frames, height // factor, width // factor)
    length, hidden = components.text_max_length, components.text_hidden_size
    text_encoder, unet, vae = (meta_copy(n) for n in (components.text_encoder, components.unet, components.vae))
    with torch.device("meta"):
        return {
            "text_encoder": count_flops(text_encoder, torch.zeros(batch, length, dtype=torch.long)),
            "unet": count_flops(
                unet, torch.empty(batch, *latent), torch.ones(batch), torch.empty(batch * frames, length, hidden)
            ),
            "vae_decoder": count_flops(vae.decode, torch.empty(frames, latent[0], *latent[2:])),
        }


# LTX-Video 0.9.5's transformer (Lightricks/LTX-Video-0.9.5 transformer/config.json): 28 blocks of 32 heads x 64,
# T5-XXL captions (4096), 128 latent channels, patch size 1.
LTX_VIDEO_TRANSFORMER = {
    "in_channels": 128,
    "out_channels": 128,
    "patch_size": 1,
    "patch_size_t": 1,
    "num_attention_heads": 32,
    "attention_head_dim": 64,
    "cross_attention_dim": 2048,
    "num_layers": 28,
    "caption_channels": 4096,
}
LTX_TEXT_LENGTH = 128
# T5 v1.1 XXL's encoder (LTX-Video's text_encoder/config.json): 4.76 B parameters.
T5_XXL_ENCODER = {
    "vocab_size": 32128,
    "d_model": 4096,
    "d_kv": 64,
    "d_ff": 10240,
    "num_layers": 24,
    "num_heads": 64,
    "relative_attention_num_buckets": 32,
    "relative_attention_max_distance": 128,
    "feed_forward_proj": "gated-gelu",
}
# LTX-Video 0.9.5's VAE (vae/config.json): 32 x 32 x 8 compression to 128 channels, timestep-conditioned decoder.
LTX_095_VAE = {
    "latent_channels": 128,
    "block_out_channels": (128, 256, 512, 1024, 2048),
    "down_block_types": ("LTXVideo095DownBlock3D",) * 4,
    "decoder_block_out_channels": (256, 512, 1024),
    "layers_per_block": (4, 6, 6, 2, 2),
    "decoder_layers_per_block": (5, 5, 5, 5),
    "spatio_temporal_scaling": (True, True, True, True),
    "decoder_spatio_temporal_scaling": (True, True, True),
    "decoder_inject_noise": (False, False, False, False),
    "downsample_type": ("spatial", "temporal", "spatiotemporal", "spatiotemporal"),
    "upsample_residual": (True, True, True),
    "upsample_factor": (2, 2, 2),
    "timestep_conditioning": True,
    "patch_size": 4,
    "patch_size_t": 1,
    "resnet_norm_eps": 1e-6,
    "scaling_factor": 1.0,
    "encoder_causal": True,
    "decoder_causal": False,
    "spatial_compression_ratio": 32,
    "temporal_compression_ratio": 8,
}


def real_size_ltx_networks(
    device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, seed: int = 0
) -> dict[str, torch.nn.Module]:
    """text_encoder (T5-XXL's encoder), transformer, vae of LTX-Video 0.9.5 at their published sizes, randomly
    initialised on ``device`` (``"meta"``: shapes only), each cast to ``dtype`` before the next is made (T5 alone
    is 19 GB in float32)."""
    from diffusers import AutoencoderKLLTXVideo, LTXVideoTransformer3DModel
    from transformers import T5Config, T5EncoderModel

    builders = {
        "text_encoder": lambda: T5EncoderModel(T5Config(**T5_XXL_ENCODER)),
        "transformer": lambda: LTXVideoTransformer3DModel(**LTX_VIDEO_TRANSFORMER),
        "vae": lambda: AutoencoderKLLTXVideo(**LTX_095_VAE),
    }
    torch.manual_seed(seed)
    with torch.device(device):
        return {name: build().to(dtype).eval().requires_grad_(False) for name, build in builders.items()}


def load_ltx_components(size: str, device: str, dtype: torch.dtype, weights: Path | None = None):
    """``weights`` (a local LTXPipeline folder), else ``size``: "tiny" (the demo's own weights) or "real" (random,
    published sizes, with the demo's T5 tokenizer, whose ids fit T5's vocabulary, and LTX's shipped scheduler);
    the networks on ``device`` in ``dtype`` (the export's description runs the VAE where it is)."""
    from diffusers import FlowMatchEulerDiscreteScheduler
    from transformers import T5TokenizerFast

    from visualizr.export.families.ltx_video.loader import LTXVideoComponents, load_ltx_video
    from visualizr.export.families.ltx_video.tiny import SCHEDULER_CONFIG as LTX_SCHEDULER
    from visualizr.export.families.ltx_video.tiny import ensure_tiny_weights as ensure_tiny_ltx

    if weights is not None or size == "tiny":
        components = load_ltx_video(weights or ensure_tiny_ltx())
        for network in (components.text_encoder, components.transformer, components.vae):
            network.to(device, dtype)
        return components
    return LTXVideoComponents(
        tokenizer=T5TokenizerFast.from_pretrained(str(ensure_tiny_ltx() / "tokenizer")),
        scheduler=FlowMatchEulerDiscreteScheduler.from_config(LTX_SCHEDULER),
        source_name="random-real-size",
        **real_size_ltx_networks(device, dtype),
    )


def ltx_transformer_flops(
    batch: int, frames: int, height: int, width: int, config: Any = None, text_length: int = LTX_TEXT_LENGTH
) -> int:
    """FLOPs of one LTX-Video transformer forward (``batch`` samples) for a clip of ``frames`` (8k + 1) frames of
    ``height`` x ``width`` pixels (32 x 32 x 8 latent compression), counted on the meta device: the FLOP floor of
    the GPU benchmark's LTX case (768 x 512, 121 frames: 16 x 16 x 24 = 6144 tokens). ``config``: the
    transformer's (default 0.9.5's)."""
    from diffusers import LTXVideoTransformer3DModel

    shape = ((frames - 1) // 8 + 1, height // 32, width // 32)
    tokens = shape[0] * shape[1] * shape[2]
    with torch.device("meta"):
        transformer = LTXVideoTransformer3DModel.from_config(config or LTX_VIDEO_TRANSFORMER).eval()
        inputs = (
            torch.empty(batch, tokens, transformer.config.in_channels),
            torch.empty(batch, text_length, transformer.config.caption_channels),
            torch.ones(batch),
            torch.ones(batch, text_length),
        )
        return count_flops(lambda *x: transformer(*x, *shape, (8 / 25, 32, 32), return_dict=False), *inputs)


def ltx_stage_flops(components: Any, batch: int, frames: int, height: int, width: int) -> dict[str, int]:
    """FLOPs of one T5 call (``batch`` prompts), one transformer forward (``batch`` samples) and the VAE's decode of
    the whole clip (``frames`` frames of ``height`` x ``width``), on the meta device."""
    factor, temporal = components.vae_scale_factor, components.vae_temporal_scale_factor
    latent = (components.latent_channels, (frames - 1) // temporal + 1, height // factor, width // factor)
    length = components.text_max_length
    text_encoder, vae = meta_copy(components.text_encoder), meta_copy(components.vae)
    with torch.device("meta"):
        return {
            "text_encoder": count_flops(text_encoder, torch.zeros(batch, length, dtype=torch.long)),
            "transformer": ltx_transformer_flops(
                batch, frames, height, width, components.transformer.config, length
            ),
            "vae_decoder": count_flops(lambda z, t: vae.decode(z, t), torch.empty(1, *latent), torch.ones(1)),
        }


