"""The tiny demo AnimateDiff: tokenizer, deterministic weights, and the save -> loader round trip."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from visualizr.export.families.animatediff.loader import load_animatediff, load_scheduler
from visualizr.export.families.animatediff.specs import AnimateDiffDims, UNetSpec
from visualizr.export.families.animatediff.tiny import (
    MOTION_ADAPTER_DIRNAME,
    SD_DIRNAME,
    TEXT_HIDDEN_SIZE,
    build_tiny_components,
    save_tiny_weights,
)
from visualizr.export.families.animatediff.tokenizer_training import TEXT_MAX_LENGTH, train_clip_tokenizer
from visualizr.export.specs import ShapeCase

NETWORKS = ("text_encoder", "unet", "motion_adapter", "vae")


@pytest.fixture(scope="module")
def saved_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    save_tiny_weights(root)
    return root


@pytest.fixture(scope="module")
def loaded(saved_weights: Path):
    return load_animatediff(saved_weights / SD_DIRNAME, saved_weights / MOTION_ADAPTER_DIRNAME)


def _unet_output(unet: torch.nn.Module) -> torch.Tensor:
    spec = UNetSpec(AnimateDiffDims(text_max_length=TEXT_MAX_LENGTH, text_hidden_size=TEXT_HIDDEN_SIZE))
    with torch.no_grad():
        return spec.wrapper(unet)(*spec.sample_inputs(ShapeCase(2, 3, 4, 6)))


def test_tokenizer_is_clip_style(saved_weights: Path) -> None:
    from transformers import CLIPTokenizer

    folder = saved_weights / SD_DIRNAME / "tokenizer"
    assert (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file()
    tokenizer = CLIPTokenizer.from_pretrained(str(folder))
    encoded = tokenizer(["A Red FOX, running!", ""], padding="max_length", max_length=TEXT_MAX_LENGTH)
    first, empty = encoded.input_ids
    assert len(first) == len(empty) == TEXT_MAX_LENGTH
    assert first[0] == tokenizer.bos_token_id
    assert empty[:2] == [tokenizer.bos_token_id, tokenizer.eos_token_id]
    assert tokenizer.pad_token == tokenizer.eos_token == "<|endoftext|>"
    tokens = tokenizer.convert_ids_to_tokens(first)
    assert tokens[1:3] == ["a</w>", "red</w>"]  # lower-cased, "</w>" marks the end of a word
    assert tokenizer.unk_token_id not in first[1 : first.index(tokenizer.eos_token_id)]


def test_tokenizer_training_is_deterministic(tmp_path: Path, saved_weights: Path) -> None:
    train_clip_tokenizer(tmp_path, vocab_size=1024)
    shipped = saved_weights / SD_DIRNAME / "tokenizer"
    for name in ("vocab.json", "merges.txt"):
        assert (tmp_path / name).read_bytes() == (shipped / name).read_bytes()


def test_tiny_build_is_deterministic(saved_weights: Path) -> None:
    first = build_tiny_components(saved_weights / SD_DIRNAME / "tokenizer")
    second = build_tiny_components(saved_weights / SD_DIRNAME / "tokenizer")
    for name in NETWORKS:
        a, b = first[name].state_dict(), second[name].state_dict()
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_tiny_motion_modules_are_not_identity(saved_weights: Path) -> None:
    adapter = build_tiny_components(saved_weights / SD_DIRNAME / "tokenizer")["motion_adapter"]
    assert all(p.any() for p in adapter.parameters() if p.dim() >= 2)


def test_saved_layout_is_a_stable_diffusion_folder_plus_motion_adapter(saved_weights: Path) -> None:
    sd = saved_weights / SD_DIRNAME
    index = json.loads((sd / "model_index.json").read_text())
    assert index["unet"] == ["diffusers", "UNet2DConditionModel"]
    assert {"text_encoder", "tokenizer", "unet", "vae", "scheduler"} <= {p.name for p in sd.iterdir()}
    adapter_config = json.loads((saved_weights / MOTION_ADAPTER_DIRNAME / "config.json").read_text())
    assert adapter_config["_class_name"] == "MotionAdapter"


def test_save_and_reload_gives_identical_outputs(saved_weights: Path, loaded) -> None:
    from diffusers import UNetMotionModel

    built = build_tiny_components(saved_weights / SD_DIRNAME / "tokenizer")
    in_memory = UNetMotionModel.from_unet2d(built["unet"], built["motion_adapter"]).eval()
    saved, back = in_memory.state_dict(), loaded.unet.state_dict()
    assert saved.keys() == back.keys() and all(torch.equal(saved[k], back[k]) for k in saved)
    # Same weights; the reloaded ones live at other addresses in memory, and a 4-channel Linear's kernel may take
    # another path for them (a last-bit difference, seen in a motion module's proj_in).
    torch.testing.assert_close(_unet_output(in_memory), _unet_output(loaded.unet), rtol=0, atol=1e-6)
    ids = torch.randint(0, 500, (2, TEXT_MAX_LENGTH))
    latents = torch.randn(2, 4, 5, 7)
    with torch.no_grad():
        hidden = built["text_encoder"](ids).last_hidden_state
        assert torch.equal(hidden, loaded.text_encoder(ids).last_hidden_state)
        assert torch.equal(built["vae"].decode(latents).sample, loaded.vae.decode(latents).sample)
    assert loaded.vae_scale_factor == 8 and loaded.text_hidden_size == TEXT_HIDDEN_SIZE
    assert type(loaded.scheduler).__name__ == "DDIMScheduler"


def test_loader_accepts_a_saved_animatediff_pipeline(tmp_path: Path, saved_weights: Path, loaded) -> None:
    folder = tmp_path / "animatediff-pipeline"
    shutil.copytree(saved_weights / SD_DIRNAME, folder)
    shutil.rmtree(folder / "unet")
    loaded.unet.save_pretrained(str(folder / "unet"))  # an AnimateDiffPipeline saves a UNetMotionModel
    reloaded = load_animatediff(folder)
    assert torch.equal(_unet_output(reloaded.unet), _unet_output(loaded.unet))


def test_loader_wants_a_motion_adapter_for_a_plain_unet(saved_weights: Path) -> None:
    with pytest.raises(FileNotFoundError, match="motion adapter"):
        load_animatediff(saved_weights / SD_DIRNAME)


def test_loader_converts_other_schedulers_to_animatediff_ddim(tmp_path: Path) -> None:
    from diffusers import PNDMScheduler

    PNDMScheduler(beta_schedule="scaled_linear", skip_prk_steps=True).save_pretrained(str(tmp_path))
    scheduler = load_scheduler(tmp_path)
    assert type(scheduler).__name__ == "DDIMScheduler"
    assert scheduler.config.beta_schedule == "linear" and scheduler.config.clip_sample is False
