"""LTX-Video's torch wrappers: forward takes a network's ONNX inputs in order, returns its output.

Parts of LTX have no translation in the legacy ONNX exporter, or one that is wrong, so the wrappers trace
stand-ins that compute the same numbers (``tests/test_ltx_video_export.py`` holds each to the original, and the
wrappers to the networks, bit for bit):

* ``torch.nn.RMSNorm`` (``aten::rms_norm``, the attention's q/k norms): ``DecomposedRMSNorm``;
* diffusers' ``Timesteps`` of the flattened per-token timesteps (the exporter writes its ``cat(dim=-1)`` on a
  wrong axis): ``TokenTimesteps`` embeds the timesteps [B, S] as they are, on axis 2 ([B, S, C]);
* the attention's ``unflatten``/``view`` with a -1 (heads, the text mask) and RoPE's pairs (``unbind(-1)``,
  ``stack(dim=-1)``), exported on wrong axes or to wrong constants: ``AttentionProcessor``;
* the transformer's and its blocks' ``view``/``reshape`` of the time embeddings by ``size()``, exported to wrong
  constants: ``TransformerWrapper`` and ``TransformerBlock`` spell their forwards out with explicit sizes;
* ``Tensor.movedim(1, -1)`` around the VAE's per-channel norms, which exports as a Transpose with an invalid
  permutation: ``permuted_movedim`` (the same permutation, spelled out) while the decoder or encoder is traced.

RoPE is built from Python integers (frames, height, width) in diffusers, which a trace would freeze; the
transformer takes the tokens' coordinates as its ``video_coords`` input instead (diffusers' own path for it).
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterator

import torch


class DecomposedRMSNorm(torch.nn.Module):
    """``torch.nn.RMSNorm`` in elementary ops: x * rsqrt(mean(x^2) + eps) * weight."""

    def __init__(self, norm: torch.nn.RMSNorm) -> None:
        super().__init__()
        self.eps = norm.eps if norm.eps is not None else torch.finfo(torch.float32).eps
        self.weight = norm.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normed = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return normed * self.weight if self.weight is not None else normed


class TokenTimesteps(torch.nn.Module):
    """diffusers' ``Timesteps`` (``get_timestep_embedding``) of per-token timesteps [B, S] -> [B, S, C]: what
    diffusers computes on the flattened timesteps, with the token axis kept and every axis spelled positive."""

    def __init__(self, timesteps: torch.nn.Module) -> None:
        super().__init__()
        self.num_channels, self.flip_sin_to_cos = timesteps.num_channels, timesteps.flip_sin_to_cos
        self.downscale_freq_shift, self.scale = timesteps.downscale_freq_shift, timesteps.scale

    def forward(self, timesteps: torch.Tensor) -> torch.Tensor:
        half_dim = self.num_channels // 2
        exponent = -math.log(10000) * torch.arange(start=0, end=half_dim, dtype=torch.float32)
        exponent = exponent / (half_dim - self.downscale_freq_shift)
        emb = timesteps[:, :, None].float() * torch.exp(exponent)[None, None, :]
        emb = self.scale * emb
        emb = torch.cat([torch.sin(emb), torch.cos(emb)], dim=2)
        if self.flip_sin_to_cos:
            emb = torch.cat([emb[:, :, half_dim:], emb[:, :, :half_dim]], dim=2)
        if self.num_channels % 2 == 1:
            emb = torch.nn.functional.pad(emb, (0, 1, 0, 0, 0, 0))
        return emb


def rotary_by_positive_axes(x: torch.Tensor, freqs: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """diffusers' LTX ``apply_rotary_emb`` on [B, S, C] with its axes spelled positive: the pairs
    (x_2i, x_2i+1) rotated to (-x_2i+1, x_2i)."""
    cos, sin = freqs
    pairs = x.reshape(x.shape[0], x.shape[1], x.shape[2] // 2, 2)
    rotated = torch.stack([-pairs[:, :, :, 1], pairs[:, :, :, 0]], dim=3).reshape(x.shape)
    return (x.float() * cos + rotated.float() * sin).to(x.dtype)


class AttentionProcessor:
    """diffusers' ``LTXVideoAttnProcessor`` with every axis and size spelled out: q/k norms, RoPE
    (``rotary_by_positive_axes``), heads split to [B, H, S, D] and joined back by the head size, and the text
    mask (already additive) [B, 1, L] broadcast as [B, 1, 1, L] (diffusers repeats it per head: the same sums)."""

    def __call__(
        self,
        attn: torch.nn.Module,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        image_rotary_emb: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        query = attn.norm_q(attn.to_q(hidden_states))
        key = attn.norm_k(attn.to_k(context))
        value = attn.to_v(context)
        if image_rotary_emb is not None:
            query = rotary_by_positive_axes(query, image_rotary_emb)
            key = rotary_by_positive_axes(key, image_rotary_emb)
        heads = attn.heads
        head_size = attn.to_q.out_features // heads

        def split(x: torch.Tensor) -> torch.Tensor:
            return x.reshape(x.shape[0], x.shape[1], heads, head_size).transpose(1, 2)

        mask = None if attention_mask is None else attention_mask.unsqueeze(1)
        out = torch.nn.functional.scaled_dot_product_attention(split(query), split(key), split(value), attn_mask=mask)
        out = out.transpose(1, 2).reshape(out.shape[0], out.shape[2], heads * head_size).to(query.dtype)
        return attn.to_out[1](attn.to_out[0](out))


def traceable(network: torch.nn.Module) -> torch.nn.Module:
    """A weight-sharing copy of ``network`` whose ``torch.nn.RMSNorm`` and ``Timesteps`` modules are the
    stand-ins above, and whose attention modules use ``AttentionProcessor``."""
    from diffusers.models.embeddings import Timesteps

    stand_ins = {torch.nn.RMSNorm: DecomposedRMSNorm, Timesteps: TokenTimesteps}
    network = copy.copy(network)
    network._modules = dict(network._modules)
    if hasattr(network, "processor"):
        network.processor = AttentionProcessor()
    for name, child in network._modules.items():
        if type(child) in stand_ins:
            network._modules[name] = stand_ins[type(child)](child)
        elif child is not None:
            network._modules[name] = traceable(child)
    return network


def _movedim(self: torch.Tensor, source: int, destination: int) -> torch.Tensor:
    order = list(range(self.dim()))
    order.insert(destination % self.dim(), order.pop(source % self.dim()))
    return self.permute(order)


@contextlib.contextmanager
def permuted_movedim() -> Iterator[None]:
    """``Tensor.movedim`` as the permute it is, while the VAE is traced."""
    original = torch.Tensor.movedim
    torch.Tensor.movedim = _movedim
    try:
        yield
    finally:
        torch.Tensor.movedim = original


class TransformerBlock(torch.nn.Module):
    """``LTXVideoTransformerBlock.forward`` with its adaptive-norm values split to the sizes of its table (diffusers'
    ``temb.reshape(batch, temb.size(1), 6, -1)`` exports with a wrong constant for the -1)."""

    def __init__(self, block: torch.nn.Module) -> None:
        super().__init__()
        self.block = block

    def forward(
        self,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        temb: torch.Tensor,
        image_rotary_emb: tuple[torch.Tensor, torch.Tensor],
        encoder_attention_mask: torch.Tensor,
    ) -> torch.Tensor:
        block = self.block
        table = block.scale_shift_table
        ada = table[None, None] + temb.unflatten(2, tuple(table.shape))  # sizes of a parameter: constants
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = ada.unbind(dim=2)
        normed = block.norm1(hidden_states) * (1 + scale_msa) + shift_msa
        attended = block.attn1(hidden_states=normed, encoder_hidden_states=None, image_rotary_emb=image_rotary_emb)
        hidden_states = hidden_states + attended * gate_msa
        hidden_states = hidden_states + block.attn2(
            hidden_states, encoder_hidden_states=encoder_hidden_states, attention_mask=encoder_attention_mask
        )
        normed = block.norm2(hidden_states) * (1 + scale_mlp) + shift_mlp
        return hidden_states + block.ff(normed) * gate_mlp


class TransformerWrapper(torch.nn.Module):
    """``LTXVideoTransformer3DModel.forward`` spelled out on its own modules: RoPE from ``video_coords``, the time
    embeddings of per-token timesteps [B, S] (image-to-video's first frame is at 0) made [B, S, D] without the
    flatten and view diffusers does, ``TransformerBlock``s."""

    def __init__(self, transformer: torch.nn.Module) -> None:
        super().__init__()
        self.transformer = traceable(transformer)
        self.blocks = torch.nn.ModuleList(TransformerBlock(block) for block in self.transformer.transformer_blocks)

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        encoder_attention_mask: torch.Tensor,
        video_coords: torch.Tensor,
    ) -> torch.Tensor:
        model = self.transformer
        rotary = model.rope(sample, video_coords=video_coords)
        mask = ((1 - encoder_attention_mask.to(sample.dtype)) * -10000.0).unsqueeze(1)
        hidden = model.proj_in(sample)
        temb, embedded = model.time_embed(timestep, batch_size=sample.shape[0], hidden_dtype=hidden.dtype)
        text = model.caption_projection(encoder_hidden_states)
        for block in self.blocks:
            hidden = block(hidden, text, temb, rotary, mask)
        scale_shift = model.scale_shift_table[None, None] + embedded[:, :, None]
        shift, scale = scale_shift[:, :, 0], scale_shift[:, :, 1]
        return model.proj_out(model.norm_out(hidden) * (1 + scale) + shift)


class VAEDecoderWrapper(torch.nn.Module):
    """The whole clip in one call, conditioned on the decode timestep."""

    def __init__(self, vae: torch.nn.Module) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, latent_sample: torch.Tensor, decode_timestep: torch.Tensor) -> torch.Tensor:
        with permuted_movedim():
            return self.vae.decode(latent_sample, decode_timestep, return_dict=True).sample


class VAEEncoderWrapper(torch.nn.Module):
    """An image as a one-frame clip -> its latent distribution's mean and standard deviation, stacked on the
    channel axis: [B, 2C, h, w]."""

    def __init__(self, vae: torch.nn.Module) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        with permuted_movedim():
            distribution = self.vae.encode(pixel_values.unsqueeze(2), return_dict=True).latent_dist
        return torch.cat([distribution.mean, distribution.std], dim=1)[:, :, 0]


class T5Wrapper(torch.nn.Module):
    """T5's last hidden states, its attention mask an input."""

    def __init__(self, text_encoder: torch.nn.Module) -> None:
        super().__init__()
        self.text_encoder = text_encoder

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.text_encoder(input_ids=input_ids, attention_mask=attention_mask, return_dict=True).last_hidden_state
