"""Trains a small CLIP-style BPE tokenizer offline (``tokenizers`` normalisation and pre-tokenisation).

The result is saved the way OpenAI's CLIP vocabulary is laid out (256 byte-level symbols, the same 256
with the ``</w>`` end-of-word suffix, the learned merges, then ``<|startoftext|>`` and ``<|endoftext|>``),
so that ``transformers.CLIPTokenizer.from_pretrained(folder)`` loads it like a Stable Diffusion tokenizer.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"
END_OF_WORD = "</w>"
TEXT_MAX_LENGTH = 77
CORPUS_PATH = Path(__file__).resolve().parent / "data" / "corpus.txt"

# CLIP's pre-tokenisation (as transformers' CLIPTokenizer): words, single digits and runs of punctuation.
_CLIP_SPLIT_PATTERN = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


def _clip_pre_tokenizer():
    """CLIP's normalizer and pre-tokenizer, built with ``tokenizers`` as transformers' CLIPTokenizer does."""
    from tokenizers import Regex, normalizers, pre_tokenizers

    normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_CLIP_SPLIT_PATTERN), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    return normalizer, pre_tokenizer


def _word_counts(corpus_path: Path) -> Counter[tuple[str, ...]]:
    """Byte-level words of the corpus as symbol tuples, the last symbol carrying the end-of-word suffix."""
    normalizer, pre_tokenizer = _clip_pre_tokenizer()
    counts: Counter[tuple[str, ...]] = Counter()
    for line in corpus_path.read_text(encoding="utf-8").splitlines():
        for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(line)):
            counts[(*word[:-1], word[-1] + END_OF_WORD)] += 1
    return counts


def _merge_pair(symbols: tuple[str, ...], pair: tuple[str, str]) -> tuple[str, ...]:
    merged, i = [], 0
    while i < len(symbols):
        if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == pair:
            merged.append(symbols[i] + symbols[i + 1])
            i += 2
        else:
            merged.append(symbols[i])
            i += 1
    return tuple(merged)


def _learn_merges(corpus_path: Path, max_merges: int, min_frequency: int = 2) -> list[str]:
    """Classic BPE merge learning. The ``tokenizers`` trainer breaks ties between equally frequent pairs in
    hash order, which differs from run to run; here ties go to the lexicographically smallest pair, so the
    same corpus always gives the same merges (and token ids)."""
    words = _word_counts(corpus_path)
    merges: list[str] = []
    while len(merges) < max_merges:
        pairs: Counter[tuple[str, str]] = Counter()
        for symbols, count in words.items():
            for pair in zip(symbols, symbols[1:], strict=False):
                pairs[pair] += count
        if not pairs:
            break
        best, count = min(pairs.items(), key=lambda item: (-item[1], item[0]))
        if count < min_frequency:
            break
        merges.append(" ".join(best))
        words = Counter({_merge_pair(symbols, best): c for symbols, c in words.items()})
    return merges


def _byte_symbols() -> list[str]:
    """GPT-2/CLIP's reversible byte -> printable unicode mapping, in CLIP's vocabulary order."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return [chr(code) for code in codes]


def train_clip_tokenizer(output_dir: Path, corpus_path: Path = CORPUS_PATH, vocab_size: int = 1024) -> Path:
    """Train on ``corpus_path``; save ``vocab.json``, ``merges.txt`` and the tokenizer config."""
    from transformers import CLIPTokenizer

    symbols = _byte_symbols()
    merges = _learn_merges(corpus_path, vocab_size - 2 * len(symbols) - 2)
    tokens = symbols + [symbol + END_OF_WORD for symbol in symbols] + ["".join(m.split(" ")) for m in merges]
    tokens += [BOS_TOKEN, EOS_TOKEN]
    vocab: dict[str, int] = {}
    for token in tokens:
        vocab.setdefault(token, len(vocab))

    # vocab.json + merges.txt as in a Stable Diffusion folder; save_pretrained adds tokenizer.json + config.
    output_dir.mkdir(parents=True, exist_ok=True)
    vocab_file, merges_file = output_dir / "vocab.json", output_dir / "merges.txt"
    vocab_file.write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    merges_file.write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    tokenizer = CLIPTokenizer(vocab=str(vocab_file), merges=str(merges_file), model_max_length=TEXT_MAX_LENGTH)
    tokenizer.save_pretrained(str(output_dir))
    return output_dir
