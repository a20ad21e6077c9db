"""Fakes for unit tests of the denoising loops (pure logic: no ONNX, no Triton): a tokenizer and deterministic
stand-ins for each family's networks behind the Components protocol, recording every call."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import msgspec
import numpy as np
from diffusers import DDIMScheduler

from visualizr import names
from visualizr.families.animatediff.loop import AnimateDiffConfig, AnimateDiffPipeline
from visualizr.families.animatediff.vocabulary import TEXT_INPUT_IDS
from visualizr.families.stable_video_diffusion.clip_image import ClipNormalization
from visualizr.families.stable_video_diffusion.loop import StableVideoDiffusionConfig, StableVideoDiffusionPipeline
from visualizr.families.stable_video_diffusion.vocabulary import (
    IMAGE_ENCODER_PIXELS,
    UNET_ADDED_TIME_IDS,
)
from visualizr.pipeline import GenerationRequest
from visualizr.pipeline.text_to_image import TextToImageConfig, TextToImagePipeline

CONFIG = AnimateDiffConfig(
    model_id="tiny",
    family="animatediff",
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


def fake_encode_image(pixels: np.ndarray) -> np.ndarray:
    """float32 [N, 3, H, W] -> [N, 4, H/8, W/8]: 8x8 average pooling, plus the channel mean as a 4th channel."""
    n, _, height, width = pixels.shape
    cells = pixels.reshape(n, 3, height // 8, 8, width // 8, 8).mean(axis=(3, 5))
    return np.concatenate([cells, cells.mean(axis=1, keepdims=True)], axis=1)


def fake_decode(latents: np.ndarray) -> np.ndarray:
    """[N, C, h, w] -> [N, 3, 8h, 8w] in (-1, 1)."""
    return np.tanh(latents[:, :3]).repeat(8, axis=2).repeat(8, axis=3)


class FakeComponents:
    """AnimateDiff's networks as deterministic functions; ``calls`` lists (kind, shape) in call order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[int, ...]]] = []
        self.unet_timesteps: list[np.ndarray] = []
        self.text_ids: list[np.ndarray] = []
        self.decoded: list[np.ndarray] = []
        self.encoded: list[np.ndarray] = []

    async def run(self, component: str, inputs: dict[str, np.ndarray], output: str) -> np.ndarray:
        return await getattr(self, component)(inputs)

    async def text_encoder(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        input_ids = inputs[TEXT_INPUT_IDS]
        self.calls.append(("text", input_ids.shape))
        self.text_ids.append(input_ids)
        base = input_ids.astype(np.float32)[:, :, None] / 100.0
        return np.repeat(base, CONFIG.text_hidden_size, axis=2)

    async def unet(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        sample, timestep = inputs[names.UNET_SAMPLE], inputs[names.UNET_TIMESTEP]
        hidden = inputs[names.UNET_ENCODER_HIDDEN_STATES]
        assert sample.dtype == np.float32 and timestep.dtype == np.float32 and hidden.dtype == np.float32
        assert timestep.shape == (sample.shape[0],) and hidden.shape[0] == sample.shape[0]
        self.calls.append(("unet", sample.shape))
        self.unet_timesteps.append(timestep)
        return 0.1 * sample + hidden.mean(axis=(1, 2)).reshape(-1, 1, 1, 1, 1)

    async def vae_decoder(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        latents = inputs[names.VAE_LATENT]
        self.calls.append(("decode", latents.shape))
        self.decoded.append(latents)
        return fake_decode(latents)

    async def vae_encoder(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        pixels = inputs[names.VAE_ENCODER_PIXELS]
        assert pixels.dtype == np.float32 and pixels.ndim == 4 and pixels.shape[1] == 3
        self.calls.append(("encode_image", pixels.shape))
        self.encoded.append(pixels)
        return fake_encode_image(pixels)


def make_pipeline(scheduler_class=DDIMScheduler, **config) -> AnimateDiffPipeline:
    scheduler_config = scheduler_class().config
    return AnimateDiffPipeline(
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


# -- Stable Video Diffusion --
SVD_CONFIG = StableVideoDiffusionConfig(
    model_id="tiny-svd",
    family="stable-video-diffusion",
    image_size=16,
    latent_channels=4,
    vae_scale_factor=8,
    vae_scaling_factor=0.5,
    decode_chunk_size=2,
)
SVD_EMBED_DIM = 6


class FakeSvdComponents:
    """Stable Video Diffusion's networks (and its keyframe stage's, AnimateDiff's fakes' 2D counterparts) as
    deterministic functions; ``calls`` lists (kind, shape), ``outputs`` what each call returned."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[int, ...]]] = []
        self.inputs: dict[str, list[dict[str, np.ndarray]]] = {}
        self.outputs: dict[str, list[np.ndarray]] = {}

    async def run(self, component: str, inputs: dict[str, np.ndarray], output: str) -> np.ndarray:
        self.inputs.setdefault(component, []).append(inputs)
        first = next(iter(inputs.values()))
        self.calls.append((component, first.shape))
        result = await getattr(self, component)(inputs)
        self.outputs.setdefault(component, []).append(result)
        return result

    async def keyframe_text_encoder(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        base = inputs[TEXT_INPUT_IDS].astype(np.float32)[:, :, None] / 100.0
        return np.repeat(base, KEYFRAME_CONFIG.text_hidden_size, axis=2)

    async def keyframe_unet(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        sample, hidden = inputs[names.UNET_SAMPLE], inputs[names.UNET_ENCODER_HIDDEN_STATES]
        assert sample.ndim == 4 and inputs[names.UNET_TIMESTEP].shape == (sample.shape[0],)
        return (0.1 * sample + hidden.mean(axis=(1, 2)).reshape(-1, 1, 1, 1)).astype(np.float32)

    async def keyframe_vae_decoder(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        return fake_decode(inputs[names.VAE_LATENT])

    async def image_encoder(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        pixels = inputs[IMAGE_ENCODER_PIXELS]
        assert pixels.dtype == np.float32 and pixels.shape[1:] == (3, SVD_CONFIG.image_size, SVD_CONFIG.image_size)
        return np.repeat(pixels.mean(axis=(2, 3)), 2, axis=1)  # [B, 6]

    async def vae_encoder(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        return fake_encode_image(inputs[names.VAE_ENCODER_PIXELS])

    async def unet(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        sample, timestep = inputs[names.UNET_SAMPLE], inputs[names.UNET_TIMESTEP]
        hidden, time_ids = inputs[names.UNET_ENCODER_HIDDEN_STATES], inputs[UNET_ADDED_TIME_IDS]
        batch, _, channels, _, _ = sample.shape
        assert timestep.shape == (batch,) and hidden.shape == (batch, 1, SVD_EMBED_DIM) and time_ids.shape == (batch, 3)
        noisy, image = sample[:, :, : channels // 2], sample[:, :, channels // 2 :]
        shift = (hidden.mean(axis=(1, 2)) + time_ids @ np.array([0.01, 0.001, 1.0], dtype=np.float32))
        return (0.1 * noisy + 0.2 * image + shift.reshape(-1, 1, 1, 1, 1)).astype(np.float32)

    async def vae_decoder(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        assert set(inputs) == {names.VAE_LATENT}  # one clip per call: its length is the latents' first axis
        return fake_decode(inputs[names.VAE_LATENT])


KEYFRAME_CONFIG = TextToImageConfig(
    latent_channels=4, vae_scale_factor=8, vae_scaling_factor=0.5, text_max_length=8, text_hidden_size=6
)


def make_svd_pipeline(keyframe: bool = False, **config) -> StableVideoDiffusionPipeline:
    """A Stable Video Diffusion loop over the fakes above; ``keyframe``: with a keyframe stage (DDIM, the fake
    tokenizer)."""
    from diffusers import EulerDiscreteScheduler
    from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

    from visualizr.export.families.stable_video_diffusion.tiny import SCHEDULER_CONFIG

    stage = None
    if keyframe:
        scheduler_config = DDIMScheduler().config
        stage = TextToImagePipeline(
            KEYFRAME_CONFIG, FakeTokenizer(), lambda: DDIMScheduler.from_config(scheduler_config)
        )
    return StableVideoDiffusionPipeline(
        msgspec.structs.replace(SVD_CONFIG, keyframe=KEYFRAME_CONFIG if keyframe else None, **config),
        ClipNormalization(tuple(OPENAI_CLIP_MEAN), tuple(OPENAI_CLIP_STD)),
        lambda: EulerDiscreteScheduler.from_config(SCHEDULER_CONFIG),
        keyframe=stage,
    )


SVD_IMAGE = (np.arange(16 * 32 * 3) % 251).astype(np.uint8).reshape(16, 32, 3)


def make_svd_request(**overrides) -> GenerationRequest:
    values = dict(
        prompt="",
        width=32,
        height=16,
        num_frames=3,
        num_inference_steps=4,
        guidance_scale=3.0,
        seed=42,
        image=SVD_IMAGE,
        fps=7,
    )
    return GenerationRequest(**{**values, **overrides})


def run(coro):
    """Run a coroutine to its end (the loops are async)."""
    return asyncio.run(coro)


async def collect(pipeline, request, components, is_cancelled=None):
    """Every event a pipeline's ``generate`` yields."""
    return [event async for event in pipeline.generate(request, components, is_cancelled)]
