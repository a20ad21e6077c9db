"""Stand-ins for the denoising loop's collaborators (tokenizer, components), a tiny pipeline config and request:
pure logic, no ONNX, no Triton."""

from __future__ import annotations

from types import SimpleNamespace

import msgspec
import numpy as np
from diffusers import DDIMScheduler

from visualizr.pipeline import GenerationRequest
from visualizr.pipeline.loop import TextToVideoPipeline
from visualizr.pipeline_config import PipelineConfig

CONFIG = PipelineConfig(
    model_id="tiny",
    family="tiny",
    text_max_length=8,
    text_hidden_size=6,
    latent_channels=4,
    vae_scale_factor=8,
    vae_scaling_factor=0.5,
    decode_chunk_size=2,
)


class FakeTokenizer:
    def __call__(self, texts, padding, max_length, truncation, return_tensors):
        assert padding == "max_length" and truncation and return_tensors == "np"
        ids = np.zeros((len(texts), max_length), dtype=np.int64)
        for row, text in enumerate(texts):
            codes = [ord(c) % 97 + 1 for c in text][:max_length]
            ids[row, : len(codes)] = codes
        return SimpleNamespace(input_ids=ids)


class FakeComponents:
    """Deterministic stand-ins that record every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[int, ...]]] = []
        self.unet_timesteps: list[np.ndarray] = []
        self.text_ids: list[np.ndarray] = []
        self.decoded: list[np.ndarray] = []
        self.encoded: list[np.ndarray] = []

    async def encode_text(self, input_ids: np.ndarray) -> np.ndarray:
        self.calls.append(("text", input_ids.shape))
        self.text_ids.append(input_ids)
        base = input_ids.astype(np.float32)[:, :, None] / 100.0
        return np.repeat(base, CONFIG.text_hidden_size, axis=2)

    async def unet(self, sample: np.ndarray, timestep: np.ndarray, hidden: np.ndarray) -> np.ndarray:
        assert sample.dtype == np.float32 and timestep.dtype == np.float32 and hidden.dtype == np.float32
        assert timestep.shape == (sample.shape[0],) and hidden.shape[0] == sample.shape[0]
        self.calls.append(("unet", sample.shape))
        self.unet_timesteps.append(timestep)
        return 0.1 * sample + hidden.mean(axis=(1, 2)).reshape(-1, 1, 1, 1, 1)

    async def decode(self, latents: np.ndarray) -> np.ndarray:
        self.calls.append(("decode", latents.shape))
        self.decoded.append(latents)
        image = np.tanh(latents[:, :3])
        return image.repeat(8, axis=2).repeat(8, axis=3)

    async def encode_image(self, pixels: np.ndarray) -> np.ndarray:
        assert pixels.dtype == np.float32 and pixels.ndim == 4 and pixels.shape[1] == 3
        self.calls.append(("encode_image", pixels.shape))
        self.encoded.append(pixels)
        n, _, height, width = pixels.shape
        cells = pixels.reshape(n, 3, height // 8, 8, width // 8, 8).mean(axis=(3, 5))  # 8x8 average pooling
        return np.concatenate([cells, cells.mean(axis=1, keepdims=True)], axis=1)  # 4 latent channels


def make_pipeline(scheduler_class=DDIMScheduler, **config) -> TextToVideoPipeline:
    scheduler_config = scheduler_class().config
    return TextToVideoPipeline(
        msgspec.structs.replace(CONFIG, **config),
        FakeTokenizer(),
        lambda: scheduler_class.from_config(scheduler_config),
    )


def make_request(**overrides) -> GenerationRequest:
    values = dict(
        prompt="a cat",
        negative_prompt="blurry",
        width=32,
        height=16,
        num_frames=3,
        num_inference_steps=4,
        guidance_scale=7.5,
        seed=42,
    )
    return GenerationRequest(**{**values, **overrides})
