"""A CLIP prompt as a Stable Diffusion-class loop encodes it (diffusers' ``encode_prompt``): AnimateDiff's loop and
the text-to-image keyframe stage (``visualizr.pipeline.text_to_image``) share it."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from visualizr import names
from visualizr.pipeline.components import Components
from visualizr.pipeline.tensors import TensorPlacement


class PromptEncoding:
    """Mixed into a ``DiffusionPipeline`` whose config has ``text_max_length``; ``tokenizer`` is a
    ``visualizr.pipeline.tokenizer.ClipTokenizer`` or anything called like it (transformers' CLIPTokenizer)."""

    tokenizer: Any
    config: Any
    placement: TensorPlacement

    def tokenize(self, prompt: str, negative_prompt: str, do_classifier_free_guidance: bool) -> np.ndarray:
        """int64 [B, text_max_length]: [negative, prompt] with guidance, else [prompt]."""
        texts = [negative_prompt, prompt] if do_classifier_free_guidance else [prompt]
        encoded = self.tokenizer(
            texts,
            padding="max_length",
            max_length=self.config.text_max_length,
            truncation=True,
            return_tensors="np",
        )
        return np.ascontiguousarray(encoded.input_ids, dtype=np.int64)

    async def encode_prompt(
        self, components: Components, prompt: str, negative_prompt: str, do_classifier_free_guidance: bool
    ) -> torch.Tensor:
        """One text-encoder call (batch 2 with guidance: [uncond, cond]) -> float32 [B, L, D] on the device."""
        input_ids = self.tokenize(prompt, negative_prompt, do_classifier_free_guidance)
        input_ids = self.placement.to_network(input_ids, torch.int64)
        inputs = {names.TEXT_INPUT_IDS: input_ids}
        hidden = await components.run(names.TEXT_ENCODER, inputs, names.TEXT_HIDDEN_STATES)
        return self.placement.from_network(hidden)
