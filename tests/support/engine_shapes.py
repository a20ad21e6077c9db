"""An AnimateDiff configuration with SD 1.5's text length (77 tokens) and a tiny card: the shapes the TensorRT
profile and config tests check, without building a model."""

from __future__ import annotations

from visualizr.export.families.animatediff.cards import tiny_model_card
from visualizr.export.families.animatediff.specs import AnimateDiffDims
from visualizr.export.model_cards import shape_limits
from visualizr.families.animatediff.loop import AnimateDiffConfig

DIMS = AnimateDiffDims(text_max_length=77, text_hidden_size=32, latent_channels=4)
CONFIG = AnimateDiffConfig(
    model_id="animatediff",
    family="animatediff",
    text_max_length=DIMS.text_max_length,
    text_hidden_size=DIMS.text_hidden_size,
    latent_channels=DIMS.latent_channels,
    vae_scale_factor=8,
    vae_scaling_factor=0.18215,
)
CARD = tiny_model_card("animatediff", [], multiple_of=8, native_frames=16)
LIMITS = shape_limits(CARD, CONFIG)
