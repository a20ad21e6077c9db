"""The prompt's token ids, from the exported ``tokenizer/`` folder, by the ``tokenizers`` library alone.

The export saves transformers' CLIPTokenizer there (``tokenizer.json`` holds its normaliser, pre-tokeniser, BPE model
and post-processor; ``tokenizer_config.json`` its special tokens). Running that file with ``tokenizers``, padded and
truncated as CLIPTokenizer pads and truncates, gives CLIPTokenizer's ids (a test compares them) without importing
transformers into the pipeline model's stub.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

TOKENIZER_FILENAME = "tokenizer.json"
TOKENIZER_CONFIG_FILENAME = "tokenizer_config.json"


@dataclass(frozen=True)
class TokenIds:
    input_ids: np.ndarray  # int64 [len(texts), max_length]
    attention_mask: np.ndarray  # int64 [len(texts), max_length]: 1 for a token, 0 for padding


class ClipTokenizer:
    """Called as the loop calls transformers' CLIPTokenizer: ``tokenizer(texts, padding="max_length",
    max_length=L, truncation=True, return_tensors="np").input_ids``."""

    def __init__(self, tokenizer: Tokenizer, pad_token: str) -> None:
        pad_id = tokenizer.token_to_id(pad_token)
        if pad_id is None:
            raise ValueError(f"the pad token {pad_token!r} is not in the tokenizer's vocabulary")
        self._tokenizer, self._pad_token, self._pad_id = tokenizer, pad_token, pad_id

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> ClipTokenizer:
        directory = Path(directory)
        config = json.loads((directory / TOKENIZER_CONFIG_FILENAME).read_text())
        return cls(Tokenizer.from_file(str(directory / TOKENIZER_FILENAME)), config["pad_token"])

    def __call__(
        self,
        texts: list[str],
        padding: str = "max_length",
        max_length: int = 77,
        truncation: bool = True,
        return_tensors: str = "np",
    ) -> TokenIds:
        if (padding, truncation, return_tensors) != ("max_length", True, "np"):
            raise ValueError("ClipTokenizer pads to max_length and truncates, into numpy arrays")
        self._tokenizer.enable_truncation(max_length)
        self._tokenizer.enable_padding(length=max_length, pad_id=self._pad_id, pad_token=self._pad_token)
        encodings = self._tokenizer.encode_batch(texts)
        return TokenIds(
            np.array([encoding.ids for encoding in encodings], dtype=np.int64),
            np.array([encoding.attention_mask for encoding in encodings], dtype=np.int64),
        )
