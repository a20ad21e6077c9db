"""Business-logic scripting: every call from the pipeline model to a component model goes through infer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import triton_python_backend_utils as pb_utils

from visualizr.names import (
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


class BlsError(RuntimeError):
    """A component model answered a BLS request with an error (or without an expected output)."""

    def __init__(self, model_name: str, message: str) -> None:
        super().__init__(f"BLS call to model {model_name!r} failed: {message}")
        self.model_name = model_name


def _to_numpy(tensor: pb_utils.Tensor) -> np.ndarray:
    if tensor.is_cpu():
        return tensor.as_numpy()
    import torch  # GPU outputs (tensorrt_plan on GPU) come back through DLPack

    return torch.from_dlpack(tensor.to_dlpack()).cpu().numpy()


async def infer(
    model_name: str, inputs: Mapping[str, np.ndarray], output_names: Sequence[str]
) -> dict[str, np.ndarray]:
    """One BLS request to ``model_name``; raises BlsError naming the model when it fails."""
    request = pb_utils.InferenceRequest(
        model_name=model_name,
        inputs=[pb_utils.Tensor(name, np.ascontiguousarray(array)) for name, array in inputs.items()],
        requested_output_names=list(output_names),
        preferred_memory=pb_utils.PreferredMemory(pb_utils.TRITONSERVER_MEMORY_CPU, 0),
    )
    response = await request.async_exec()
    if response.has_error():
        raise BlsError(model_name, response.error().message())
    outputs: dict[str, np.ndarray] = {}
    for name in output_names:
        tensor = pb_utils.get_output_tensor_by_name(response, name)
        if tensor is None:
            raise BlsError(model_name, f"response has no output {name!r}")
        outputs[name] = _to_numpy(tensor)
    return outputs


class BlsComponents:
    """The pipeline's Components protocol over BLS calls to ``<family>_text_encoder|unet|vae_decoder|vae_encoder``."""

    def __init__(self, family: str) -> None:
        self.text_encoder = component_model_name(family, "text_encoder")
        self.unet_model = component_model_name(family, "unet")
        self.vae_decoder = component_model_name(family, "vae_decoder")
        self.vae_encoder = component_model_name(family, "vae_encoder")

    async def encode_text(self, input_ids: np.ndarray) -> np.ndarray:
        outputs = await infer(self.text_encoder, {TEXT_INPUT_IDS: input_ids}, [TEXT_HIDDEN_STATES])
        return outputs[TEXT_HIDDEN_STATES]

    async def unet(
        self, sample: np.ndarray, timestep: np.ndarray, encoder_hidden_states: np.ndarray
    ) -> np.ndarray:
        inputs = {
            UNET_SAMPLE: sample,
            # The unet is batched in Triton: its [B] timestep is configured as dims [1] reshaped to [].
            UNET_TIMESTEP: np.reshape(timestep, (-1, 1)),
            UNET_ENCODER_HIDDEN_STATES: encoder_hidden_states,
        }
        return (await infer(self.unet_model, inputs, [UNET_NOISE_PRED]))[UNET_NOISE_PRED]

    async def decode(self, latents: np.ndarray) -> np.ndarray:
        return (await infer(self.vae_decoder, {VAE_LATENT: latents}, [VAE_IMAGE]))[VAE_IMAGE]

    async def encode_image(self, pixels: np.ndarray) -> np.ndarray:
        outputs = await infer(self.vae_encoder, {VAE_ENCODER_PIXELS: pixels}, [VAE_ENCODER_LATENT])
        return outputs[VAE_ENCODER_LATENT]
