"""Components run in-process by onnxruntime over the exported ONNX files of a model repository.

Used by tests and by the benchmark that compares the Triton pipeline with the same loop run in-process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import onnxruntime as ort

from visualizr.names import (
    COMPONENTS,
    TEXT_HIDDEN_STATES,
    TEXT_INPUT_IDS,
    UNET_ENCODER_HIDDEN_STATES,
    UNET_NOISE_PRED,
    UNET_SAMPLE,
    UNET_TIMESTEP,
    VAE_ENCODER_LATENT,
    VAE_ENCODER_PIXELS,
    VAE_IMAGE,
    VAE_LATENT,
    component_model_name,
)

ONNX_FILENAME = "model.onnx"


def component_onnx_path(model_repository: Path, family: str, component: str, version: int | str = 1) -> Path:
    """``<repository>/<family>_<component>/<version>/model.onnx``."""
    return Path(model_repository) / component_model_name(family, component) / str(version) / ONNX_FILENAME


def open_session(path: Path, intra_op_num_threads: int = 0) -> ort.InferenceSession:
    """A CPU onnxruntime session; 0 threads lets onnxruntime choose."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"ONNX model not found: {path}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_num_threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


class OnnxComponents:
    """The Components protocol over one onnxruntime session per component (runs each call in a worker thread)."""

    def __init__(self, sessions: Mapping[str, ort.InferenceSession]) -> None:
        self._text_encoder = sessions["text_encoder"]
        self._unet = sessions["unet"]
        self._vae_decoder = sessions["vae_decoder"]
        self._vae_encoder = sessions["vae_encoder"]

    @classmethod
    def from_repository(
        cls, model_repository: Path, family: str, intra_op_num_threads: int = 0
    ) -> OnnxComponents:
        return cls(
            {
                component: open_session(
                    component_onnx_path(model_repository, family, component), intra_op_num_threads
                )
                for component in COMPONENTS
            }
        )

    @staticmethod
    async def _run(session: ort.InferenceSession, output: str, feeds: dict[str, np.ndarray]) -> np.ndarray:
        (result,) = await asyncio.to_thread(session.run, [output], feeds)
        return result

    async def encode_text(self, input_ids: np.ndarray) -> np.ndarray:
        return await self._run(self._text_encoder, TEXT_HIDDEN_STATES, {TEXT_INPUT_IDS: input_ids})

    async def unet(
        self, sample: np.ndarray, timestep: np.ndarray, encoder_hidden_states: np.ndarray
    ) -> np.ndarray:
        feeds = {
            UNET_SAMPLE: sample,
            UNET_TIMESTEP: timestep,
            UNET_ENCODER_HIDDEN_STATES: encoder_hidden_states,
        }
        return await self._run(self._unet, UNET_NOISE_PRED, feeds)

    async def decode(self, latents: np.ndarray) -> np.ndarray:
        return await self._run(self._vae_decoder, VAE_IMAGE, {VAE_LATENT: latents})

    async def encode_image(self, pixels: np.ndarray) -> np.ndarray:
        return await self._run(self._vae_encoder, VAE_ENCODER_LATENT, {VAE_ENCODER_PIXELS: pixels})
