"""Torch modules whose forward takes a network's ONNX inputs in order and returns its single output: the ones
every family shares (a family's own are in ``export/families/<family>/wrappers.py``)."""

from __future__ import annotations

import torch


class VAEEncoderWrapper(torch.nn.Module):
    """The mean (= mode) of the latent distribution; the pipeline multiplies it by the scaling factor where
    its family does."""

    def __init__(self, vae: torch.nn.Module) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.vae.encode(pixel_values, return_dict=True).latent_dist.mean


class ImageEncoderWrapper(torch.nn.Module):
    def __init__(self, image_encoder: torch.nn.Module) -> None:
        super().__init__()
        self.image_encoder = image_encoder

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.image_encoder(pixel_values=pixel_values, return_dict=True).image_embeds
