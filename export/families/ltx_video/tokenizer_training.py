"""Trains a small T5-style Unigram tokenizer offline, on the same corpus as the tiny CLIP tokenizer.

T5's tokenizer is a SentencePiece Unigram model: words are split at spaces, each word gets the ``▁`` prefix
(``Metaspace``), and the pieces are scored by log-probability. Here the pieces are the corpus's words (as
``▁word``) and its single characters, scored by their counts, with T5's special tokens
first (``<pad>`` 0, ``</s>`` 1, ``<unk>`` 2) and ``</s>`` appended to every text. Counting is deterministic, so
the same corpus always gives the same ids. Saved through ``transformers.T5TokenizerFast`` (``tokenizer.json``),
as an LTX-Video folder's ``tokenizer/`` is; the loop reads that file with ``tokenizers`` alone.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Final

from visualizr.export.families.animatediff.tokenizer_training import CORPUS_PATH

PAD_TOKEN: Final = "<pad>"
EOS_TOKEN: Final = "</s>"
UNK_TOKEN: Final = "<unk>"
WORD_PREFIX: Final = "\u2581"  # SentencePiece's "▁"
TEXT_MAX_LENGTH: Final = 128  # LTXPipeline's max_sequence_length


def _pieces(corpus_path: Path) -> list[tuple[str, float]]:
    """``▁word`` pieces of the corpus's words, then every single character, scored by log frequency."""
    words: Counter[str] = Counter()
    for line in corpus_path.read_text(encoding="utf-8").splitlines():
        words.update(line.split())
    characters: Counter[str] = Counter()
    for word, count in words.items():
        for character in WORD_PREFIX + word:
            characters[character] += count
    total = sum(words.values()) + sum(characters.values())
    ranked = sorted(words, key=lambda w: (-words[w], w))
    pieces = [(WORD_PREFIX + word, math.log(words[word] / total)) for word in ranked]
    # single characters score lower than any word, so that whole words win
    pieces += [(ch, math.log(characters[ch] / total) - 10.0) for ch in sorted(characters)]
    return pieces


def build_t5_tokenizer(corpus_path: Path = CORPUS_PATH):
    """The ``tokenizers.Tokenizer`` of the corpus (T5's pipeline: Metaspace, Unigram, ``$A </s>``)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    vocab = [(PAD_TOKEN, 0.0), (EOS_TOKEN, 0.0), (UNK_TOKEN, 0.0), *_pieces(corpus_path)]
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=2))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement=WORD_PREFIX, prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement=WORD_PREFIX, prepend_scheme="always")
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"$A {EOS_TOKEN}", pair=f"$A {EOS_TOKEN} $B {EOS_TOKEN}", special_tokens=[(EOS_TOKEN, 1)]
    )
    return tokenizer


def train_t5_tokenizer(output_dir: Path, corpus_path: Path = CORPUS_PATH) -> Path:
    """Build the tokenizer and save it as a ``T5TokenizerFast`` folder; returns the folder."""
    from transformers import T5TokenizerFast

    tokenizer = T5TokenizerFast(
        tokenizer_object=build_t5_tokenizer(corpus_path),
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        unk_token=UNK_TOKEN,
        extra_ids=0,
        model_max_length=TEXT_MAX_LENGTH,
    )
    output_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(output_dir))
    return output_dir
