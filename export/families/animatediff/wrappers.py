"""AnimateDiff's torch wrappers: forward takes a network's ONNX inputs in order and returns its single output.

The UNet's motion modules attend over frames in FreeNoise context windows (``ContextWindowedBlock``), so one
exported graph makes clips of any length: diffusers' ``FreeNoiseTransformerBlock`` loops over the windows in
Python, which the legacy ONNX exporter would trace as constants of the traced frame count.
"""

from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass

import torch

from visualizr.families.animatediff.context import ContextWindows


class TextEncoderWrapper(torch.nn.Module):
    def __init__(self, text_encoder: torch.nn.Module) -> None:
        super().__init__()
        self.text_encoder = text_encoder

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.text_encoder(input_ids=input_ids, return_dict=True).last_hidden_state


class UNetWrapper(torch.nn.Module):
    """``unet`` (a UNetMotionModel, left as it is) with its motion modules windowed (``with_context_windows``)."""

    def __init__(self, unet: torch.nn.Module, windows: ContextWindows) -> None:
        super().__init__()
        self.unet = with_context_windows(unet, windows)

    def forward(
        self, sample: torch.Tensor, timestep: torch.Tensor, encoder_hidden_states: torch.Tensor
    ) -> torch.Tensor:
        # UNetMotionModel wants one text embedding per frame ([B*F, 77, D]); the contract passes [B, 77, D].
        per_frame = encoder_hidden_states.repeat_interleave(sample.shape[2], dim=0)
        return self.unet(sample, timestep, per_frame, return_dict=True).sample


class IPAdapterUNetWrapper(UNetWrapper):
    """A UNet with an IP-Adapter (``ip_adapter.add_ip_adapter``): the image embeds go through the UNet's image
    projection; its decoupled cross-attentions add their output times ``ip_adapter_scale`` per sample
    (``RequestScaledIPAdapterProcessor``), so the scale is an input, not a constant of the graph."""

    def __init__(self, unet: torch.nn.Module, windows: ContextWindows) -> None:
        super().__init__(unet, windows)
        from diffusers.models.attention_processor import IPAdapterAttnProcessor2_0

        processors = self.unet.attn_processors  # the windowed copy's: the caller's unet keeps diffusers' own
        self.unet.set_attn_processor(
            {
                name: RequestScaledIPAdapterProcessor(p) if isinstance(p, IPAdapterAttnProcessor2_0) else p
                for name, p in processors.items()
            }
        )

    def forward(  # type: ignore[override]
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        image_embeds: torch.Tensor,
        ip_adapter_scale: torch.Tensor,
    ) -> torch.Tensor:
        frames = sample.shape[2]
        per_frame = encoder_hidden_states.repeat_interleave(frames, dim=0)
        scale = ip_adapter_scale.repeat_interleave(frames)[:, None, None]  # [B * F, 1, 1], like the hidden states
        return self.unet(
            sample,
            timestep,
            per_frame,
            added_cond_kwargs={"image_embeds": [image_embeds[:, None]]},  # one image per sample, as diffusers'
            cross_attention_kwargs={"ip_adapter_scale": scale},
            return_dict=True,
        ).sample


class RequestScaledIPAdapterProcessor(torch.nn.Module):
    """diffusers' ``IPAdapterAttnProcessor2_0`` for one adapter without masks (what ``AnimateDiffPipeline`` runs),
    the same operations in the same order, with the scale a tensor given per call: the text attention plus
    ``ip_adapter_scale`` times the image attention (0: exactly the text attention, as diffusers' skip gives)."""

    def __init__(self, processor: torch.nn.Module) -> None:
        super().__init__()
        if len(processor.to_k_ip) != 1:
            raise ValueError("one IP-Adapter at a time")
        self.to_k_ip, self.to_v_ip = processor.to_k_ip[0], processor.to_v_ip[0]

    def __call__(
        self,
        attn: torch.nn.Module,
        hidden_states: torch.Tensor,
        encoder_hidden_states: tuple[torch.Tensor, list[torch.Tensor]],
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        ip_adapter_scale: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if hidden_states.ndim != 3 or attention_mask is not None or attn.spatial_norm is not None:
            raise ValueError("a UNet's spatial cross-attention: [B, N, C] tokens, no mask, no spatial norm")
        text, (image,) = encoder_hidden_states
        residual = hidden_states
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        query = attn.to_q(hidden_states)
        if attn.norm_cross:
            text = attn.norm_encoder_hidden_states(text)
        out = _attention(attn, query, attn.to_k(text), attn.to_v(text))
        out = out + ip_adapter_scale * _attention(attn, query, self.to_k_ip(image), self.to_v_ip(image))
        out = attn.to_out[1](attn.to_out[0](out))
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor


def _attention(attn: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """Multi-head scaled dot-product attention, shaped as diffusers' processors shape it."""
    batch, heads = query.shape[0], attn.heads
    head_dim = key.shape[-1] // heads
    query, key, value = (t.view(batch, -1, heads, head_dim).transpose(1, 2) for t in (query, key, value))
    out = torch.nn.functional.scaled_dot_product_attention(query, key, value, dropout_p=0.0, is_causal=False)
    return out.transpose(1, 2).reshape(batch, -1, heads * head_dim).to(query.dtype)


class VAEDecoderWrapper(torch.nn.Module):
    """The pipeline divides the latents by the VAE scaling factor before calling the decoder."""

    def __init__(self, vae: torch.nn.Module) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, latent_sample: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(latent_sample, return_dict=True).sample


def with_context_windows(unet: torch.nn.Module, windows: ContextWindows) -> torch.nn.Module:
    """A copy of ``unet`` sharing its weights whose motion modules' transformer blocks are ``ContextWindowedBlock``s
    (diffusers' ``enable_free_noise`` swaps the blocks of the unet itself)."""
    from diffusers.models.unets.unet_motion_model import AnimateDiffTransformer3D

    shared = {id(tensor): tensor for tensor in itertools.chain(unet.parameters(), unet.buffers())}
    windowed = copy.deepcopy(unet, memo=shared)
    for module in windowed.modules():
        if isinstance(module, AnimateDiffTransformer3D):
            blocks = (ContextWindowedBlock(block, windows) for block in module.transformer_blocks)
            module.transformer_blocks = torch.nn.ModuleList(blocks)
    return windowed


@dataclass(frozen=True)
class WindowPlan:
    """Where a clip's context windows are, as tensors computed from its frame count F (traced, so the ONNX graph
    takes any F). Windows of ``min(F, length)`` frames start every ``stride`` frames while they fit; when the last
    one ends before F, one more ends at F and gives only the frames past the others (diffusers'
    ``last_frame_batch_length``). A clip of at most ``length`` frames is one window."""

    gather: torch.Tensor  # int64 [W, window length]: the frame at each position of each window
    sources: tuple[torch.Tensor, ...]  # int64 [F] each: a position in the flattened windows, per frame
    weights: tuple[torch.Tensor, ...]  # float [F] each: its weight there (0: the frame is not in that window)
    totals: torch.Tensor  # float [F]: what diffusers divides each frame's weighted sum by


def window_plan(frames: torch.Tensor, windows: ContextWindows, window_weights: torch.Tensor) -> WindowPlan:
    """``frames``: int64 scalar tensor. Every frame's contributions come in diffusers' order (earliest window
    first), so the blend adds the same numbers in the same order as ``FreeNoiseTransformerBlock``."""
    length, stride = windows.length, windows.stride
    span = frames.clamp(max=length)  # window length
    full = (frames - span) // stride + 1  # windows [k * stride, k * stride + span)
    tail = frames - ((full - 1) * stride + span)  # frames after the last of them
    count = full + (tail > 0).long()
    starts = torch.minimum(torch.arange(count) * stride, frames - span)
    gather = starts[:, None] + torch.arange(span)[None, :]
    # One window: weights 1, so the block is exactly the plain one (no x * w / w rounding).
    weights = torch.where(frames > length, window_weights, torch.ones_like(window_weights))[:span]
    frame = torch.arange(frames)
    sources, contributions = [], []
    for cover in reversed(range(math.ceil(length / stride))):  # the windows holding a frame, earliest first
        window = frame // stride - cover
        position = frame - window * stride
        inside = (window >= 0) & (window < full) & (position < span)
        position = position.clamp(max=span - 1)
        sources.append(torch.minimum(window.clamp(min=0), full - 1) * span + position)
        contributions.append(torch.where(inside, weights[position], torch.zeros_like(weights[position])))
    totals = sum(contributions)
    # The extra last window: its weighted outputs, but (diffusers' quirk) each frame's total grows by the one
    # weight at the window's first new position, weights[span - tail], not by the frame's own weight.
    position = (frame - (frames - span)).clamp(min=0)
    extra = frame >= frames - tail
    sources.append((count - 1) * span + position)
    contributions.append(torch.where(extra, weights[position], torch.zeros_like(weights[position])))
    first_new = weights[(span - tail).clamp(max=span - 1)]
    totals = totals + torch.where(extra, first_new, torch.zeros_like(first_new))
    return WindowPlan(gather, tuple(sources), tuple(contributions), totals)


class ContextWindowedBlock(torch.nn.Module):
    """A motion module's BasicTransformerBlock computing what diffusers' ``FreeNoiseTransformerBlock`` computes,
    in tensor ops: every window gathered into the batch, both attentions run on all of them at once, the outputs
    weighted and summed back per frame, divided by the frame's total weight, then the feed-forward on the whole
    clip. Up to ``windows.length`` frames it is the plain block, bit for bit."""

    def __init__(self, block: torch.nn.Module, windows: ContextWindows) -> None:
        super().__init__()
        if block.norm_type != "layer_norm" or block._chunk_size is not None:
            raise ValueError("context windows need a layer-norm motion block without chunked feed-forward")
        self.block, self.windows = block, windows
        self.register_buffer("window_weights", torch.tensor(windows.weights()), persistent=False)

    def forward(
        self, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None, **_: object
    ) -> torch.Tensor:
        # hidden_states [N, F, C] (N = batch x height x width); motion modules attend over frames only.
        if encoder_hidden_states is not None:
            raise ValueError("motion modules take no encoder_hidden_states")
        block = self.block
        frames = torch.as_tensor(hidden_states.shape[1])
        plan = window_plan(frames, self.windows, self.window_weights.to(hidden_states.dtype))
        batch, channels = hidden_states.shape[0], hidden_states.shape[2]
        chunk = hidden_states[:, plan.gather].flatten(0, 1)  # [N * W, window length, C]
        for norm, attention in ((block.norm1, block.attn1), (block.norm2, block.attn2)):
            if attention is None:
                continue
            normed = norm(chunk)
            normed = block.pos_embed(normed) if block.pos_embed is not None else normed
            chunk = attention(normed) + chunk
        outputs = chunk.reshape(batch, -1, channels)  # [N, W * window length, C]
        blended = None
        for source, weight in zip(plan.sources, plan.weights, strict=True):
            term = outputs.index_select(1, source) * weight[:, None]
            blended = term if blended is None else blended + term
        blended = blended / plan.totals[:, None]
        return block.ff(block.norm3(blended)) + blended
