"""The loops' preprocessing, written without transformers (so that a pipeline model's stub does not import it),
against the transformers and diffusers code it stands in for: the same numbers, bit for bit."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from visualizr.export.families.animatediff.tokenizer_training import CORPUS_PATH
from visualizr.families.stable_video_diffusion.clip_image import ClipNormalization, resize_with_antialiasing
from visualizr.pipeline.tokenizer import ClipTokenizer
from visualizr.pipeline_config import FEATURE_EXTRACTOR_DIRNAME, TOKENIZER_DIRNAME, assets_dir

TRICKY_PROMPTS = [
    "",
    " ",
    "a cat",
    "A Red FOX, running!",
    "<|startoftext|> special <|endoftext|> tokens typed in",
    "tabs\tnew\nlines   and  runs of   spaces",
    "accents: café cafe\u0301 ñ, ligatures ﬁ, numerals Ⅻ 3.14 -5e10 123456",
    "日本語のプロンプト 😀🎬 emoji",
    "it's what we'll've done'd",
    "word " * 100,  # past 77 tokens: truncated, the end token kept
    "x" * 500,
]


def random_prompts(count: int, seed: int = 0) -> list[str]:
    """Prompts of 0 to 120 words: mostly words of the tokenizer's corpus, some random unicode."""
    rng = random.Random(seed)
    words = CORPUS_PATH.read_text(encoding="utf-8").split()

    def word() -> str:
        if rng.random() < 0.7:
            return rng.choice(words)
        return "".join(chr(rng.randint(32, 0x2FFF)) for _ in range(rng.randint(1, 6)))

    return [" ".join(word() for _ in range(rng.randint(0, 120))) for _ in range(count)]


@pytest.mark.parametrize("max_length", [77, 8])
def test_clip_tokenizer_gives_transformers_ids(model_repository: Path, max_length: int) -> None:
    from transformers import CLIPTokenizer

    folder = assets_dir(model_repository / "animatediff") / TOKENIZER_DIRNAME
    ours, reference = ClipTokenizer.from_pretrained(folder), CLIPTokenizer.from_pretrained(str(folder))
    prompts = TRICKY_PROMPTS + random_prompts(200)
    for batch in [prompts[i : i + 2] for i in range(0, len(prompts), 2)] + [[p] for p in TRICKY_PROMPTS]:
        expected = reference(batch, padding="max_length", max_length=max_length, truncation=True, return_tensors="np")
        got = ours(batch, padding="max_length", max_length=max_length, truncation=True, return_tensors="np")
        assert got.input_ids.dtype == np.int64 and got.input_ids.shape == (len(batch), max_length)
        np.testing.assert_array_equal(got.input_ids, expected.input_ids, err_msg=repr(batch))


@pytest.mark.parametrize(
    ("shape", "size"),
    [
        ((1, 3, 576, 1024), (224, 224)),  # SVD's own resolution, down to the CLIP encoder's square
        ((1, 3, 32, 64), (224, 224)),  # the demo's: up
        ((2, 3, 300, 200), (16, 16)),
        ((1, 3, 1000, 37), (224, 224)),
        ((1, 3, 224, 224), (224, 224)),
    ],
)
def test_resize_with_antialiasing_is_diffusers(shape: tuple[int, ...], size: tuple[int, int]) -> None:
    from diffusers.pipelines.stable_video_diffusion.pipeline_stable_video_diffusion import _resize_with_antialiasing

    images = torch.rand(shape, generator=torch.Generator().manual_seed(sum(shape))) * 2 - 1
    expected = _resize_with_antialiasing(images, size)
    assert torch.equal(resize_with_antialiasing(images, size), expected)


def test_clip_normalization_is_the_exported_image_processor(model_repository: Path) -> None:
    from transformers import CLIPImageProcessorPil

    folder = assets_dir(model_repository / "stable-video-diffusion") / FEATURE_EXTRACTOR_DIRNAME
    ours, processor = ClipNormalization.from_pretrained(folder), CLIPImageProcessorPil.from_pretrained(str(folder))
    generator = torch.Generator().manual_seed(0)
    for size in (224, 16):
        images = torch.rand((1, 3, size, size), generator=generator) * 1.2 - 0.1  # a bicubic resize overshoots
        expected = processor(
            images=images, do_normalize=True, do_center_crop=False, do_resize=False, do_rescale=False,
            return_tensors="pt",
        ).pixel_values
        assert torch.equal(ours(images), expected.to(torch.float32))


@pytest.mark.parametrize("size", [224, 32])
def test_clip_image_processor_is_transformers_bit_for_bit(tmp_path: Path, size: int) -> None:
    """The IP-Adapter's image processor (diffusers makes CLIPImageProcessor(size=S, crop_size=S)): pictures of many
    shapes, up and down, square and not, noise and smooth, against transformers' PIL backend."""
    from transformers import CLIPImageProcessorPil

    from visualizr.pipeline.clip_image_processor import ClipImageProcessor

    processor = CLIPImageProcessorPil(size=size, crop_size=size)
    processor.save_pretrained(str(tmp_path))
    ours = ClipImageProcessor.from_pretrained(tmp_path)
    rng = np.random.default_rng(size)
    shapes = [(64, 96), (128, 128), (20, 50), (size, size), (size + 1, size), (300, 200), (33, 77), (1024, 576), (7, 9)]
    for height, width in shapes:
        y, x = np.mgrid[0:height, 0:width]
        smooth = np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), (x + y) * 7 % 256], axis=-1)
        for image in (rng.integers(0, 256, (height, width, 3), dtype=np.uint8), smooth.astype(np.uint8)):
            expected = processor(image, return_tensors="pt").pixel_values
            assert torch.equal(ours(image), expected), (height, width)
