"""IP-Adapter for AnimateDiff: a local folder in the layout of ``h94/IP-Adapter`` loaded into the UNet the way
diffusers' ``load_ip_adapter`` does, and the tiny demo's adapter saved in that layout.

    <folder>/models/image_encoder/                 a CLIPVisionModelWithProjection (config.json + weights)
    <folder>/models/ip-adapter_sd15.safetensors    keys ``image_proj.*`` and ``ip_adapter.*`` (or the .bin:
                                                   {"image_proj": {...}, "ip_adapter": {...}})

The UNet gets diffusers' ``ImageProjection`` (``encoder_hid_proj``) and ``IPAdapterAttnProcessor2_0`` on every
spatial cross-attention (``UNet2DConditionLoadersMixin._load_ip_adapter_weights``, what ``load_ip_adapter``
calls). The image processor is the one diffusers makes when a pipeline has none: ``CLIPImageProcessor`` at the
encoder's image size. The tiny adapter is built with a fixed seed, cached under ``build/tiny-ip-adapter/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from visualizr.export.family import ensure_cached_build
from visualizr.export.fingerprint import REPO_ROOT, hash_files, hash_json

MODELS_DIRNAME: Final = "models"
IMAGE_ENCODER_DIRNAME: Final = "image_encoder"
WEIGHT_NAMES: Final = ("ip-adapter_sd15.safetensors", "ip-adapter_sd15.bin")
NUM_IMAGE_TOKENS: Final = 4  # what diffusers gives an IP-Adapter whose image_proj has proj.weight
TINY_SEED: Final = 20241217
TINY_IMAGE_SIZE: Final = 32
TINY_IMAGE_EMBED_DIM: Final = 16
DEFAULT_TINY_DIR: Final = REPO_ROOT / "build" / "tiny-ip-adapter"


@dataclass
class IPAdapter:
    image_encoder: Any  # transformers.CLIPVisionModelWithProjection
    image_processor: Any  # transformers.CLIPImageProcessorPil, as diffusers makes it
    state_dict: dict[str, dict[str, Any]]  # {"image_proj": ..., "ip_adapter": ...}

    @property
    def image_size(self) -> int:
        return int(self.image_encoder.config.image_size)

    @property
    def image_embed_dim(self) -> int:
        return int(self.image_encoder.config.projection_dim)


def weights_file(folder: Path) -> Path:
    models = Path(folder) / MODELS_DIRNAME
    for name in WEIGHT_NAMES:
        if (models / name).is_file():
            return models / name
    raise FileNotFoundError(f"{folder} is not an IP-Adapter folder: no {MODELS_DIRNAME}/{' or '.join(WEIGHT_NAMES)}")


def read_state_dict(path: Path) -> dict[str, dict[str, Any]]:
    """The adapter's two state dicts, split by key prefix as diffusers' ``load_ip_adapter`` splits them."""
    import torch
    from safetensors.torch import load_file

    if path.suffix != ".safetensors":
        return torch.load(str(path), map_location="cpu", weights_only=True)
    state_dict: dict[str, dict[str, Any]] = {"image_proj": {}, "ip_adapter": {}}
    for key, tensor in load_file(str(path)).items():
        part, _, rest = key.partition(".")
        if part in state_dict:
            state_dict[part][rest] = tensor
    return state_dict


def load_ip_adapter(folder: Path) -> IPAdapter:
    """A local ``h94/IP-Adapter``-style folder (nothing is downloaded)."""
    from transformers import CLIPImageProcessorPil, CLIPVisionModelWithProjection

    from visualizr.export.family import freeze

    state_dict = read_state_dict(weights_file(folder))
    encoder = CLIPVisionModelWithProjection.from_pretrained(str(Path(folder) / MODELS_DIRNAME / IMAGE_ENCODER_DIRNAME))
    freeze(encoder)
    size = int(encoder.config.image_size)
    return IPAdapter(encoder, CLIPImageProcessorPil(size=size, crop_size=size), state_dict)


def add_ip_adapter(unet: Any, adapter: IPAdapter) -> None:
    """The image projection and decoupled cross-attention into ``unet`` (in place), as ``load_ip_adapter`` does."""
    unet._load_ip_adapter_weights([adapter.state_dict])
    unet.float().eval().requires_grad_(False)


# -- the tiny demo's adapter ---------------------------------------------------------------------------------------


def tiny_ip_adapter_key() -> str:
    here = Path(__file__).resolve().parent
    sources = [Path(__file__), here / "tiny.py", here.parent.parent / "family.py"]
    return hash_json({"seed": TINY_SEED, "sources": hash_files(sources)})


def build_tiny_ip_adapter() -> tuple[Any, dict[str, Any]]:
    """A tiny CLIP image encoder and adapter weights (flat ``image_proj.*`` / ``ip_adapter.*`` keys) for the tiny
    AnimateDiff UNet, with a fixed seed. The adapter's keys are numbered as diffusers reads them: 1, 3, 5, ... per
    spatial cross-attention, in the UNet's processor order."""
    import torch
    from diffusers import UNet2DConditionModel
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from visualizr.export.families.animatediff.tiny import TEXT_HIDDEN_SIZE, ensure_tiny_weights

    torch.manual_seed(TINY_SEED)
    config = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        projection_dim=TINY_IMAGE_EMBED_DIM,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=TINY_IMAGE_SIZE,
        patch_size=8,
        hidden_act="quick_gelu",
    )
    encoder = CLIPVisionModelWithProjection(config).eval()
    weights = {
        "image_proj.proj.weight": torch.randn(NUM_IMAGE_TOKENS * TEXT_HIDDEN_SIZE, TINY_IMAGE_EMBED_DIM) * 0.2,
        "image_proj.proj.bias": torch.randn(NUM_IMAGE_TOKENS * TEXT_HIDDEN_SIZE) * 0.02,
        "image_proj.norm.weight": 1 + torch.randn(TEXT_HIDDEN_SIZE) * 0.02,
        "image_proj.norm.bias": torch.randn(TEXT_HIDDEN_SIZE) * 0.02,
    }
    unet = UNet2DConditionModel.from_pretrained(str(ensure_tiny_weights()[0] / "unet"))
    key_id = 1
    for name in unet.attn_processors:
        if name.endswith("attn2.processor"):
            attention = unet.get_submodule(name.removesuffix(".processor"))
            for projection in ("to_k_ip", "to_v_ip"):
                shape = (attention.to_k.out_features, TEXT_HIDDEN_SIZE)
                weights[f"ip_adapter.{key_id}.{projection}.weight"] = torch.randn(shape) * 0.2
            key_id += 2
    return encoder, {key: tensor.contiguous() for key, tensor in weights.items()}


def save_tiny_ip_adapter(folder: Path) -> None:
    from safetensors.torch import save_file
    from transformers import CLIPImageProcessorPil

    from visualizr.export.family import quiet_libraries

    quiet_libraries()
    encoder, weights = build_tiny_ip_adapter()
    encoder_dir = folder / MODELS_DIRNAME / IMAGE_ENCODER_DIRNAME
    encoder.save_pretrained(str(encoder_dir))
    CLIPImageProcessorPil(size=TINY_IMAGE_SIZE, crop_size=TINY_IMAGE_SIZE).save_pretrained(str(encoder_dir))
    save_file(weights, str(folder / MODELS_DIRNAME / WEIGHT_NAMES[0]))


def ensure_tiny_ip_adapter(build_dir: Path = DEFAULT_TINY_DIR, force: bool = False) -> Path:
    """The cached tiny IP-Adapter folder, (re)built when missing or stale."""
    return ensure_cached_build(build_dir, tiny_ip_adapter_key(), save_tiny_ip_adapter, force)
