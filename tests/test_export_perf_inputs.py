"""The export's perf_analyzer data: one file per Triton model and profile, shapes matching the --shape arguments,
real token ids and a real picture."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest

from visualizr import names
from visualizr.export.perf_inputs import perf_inputs_dir, picture, read_manifest
from visualizr.families import FAMILY_NAMES, get_family
from visualizr.families.animatediff.vocabulary import IMAGE_ENCODER_PIXELS, TEXT_INPUT_IDS, UNET_IP_ADAPTER_SCALE
from visualizr.model_card import MODEL_CARD_FILENAME, read_model_card

DTYPES = {"input_ids": np.int64, "attention_mask": np.int64, "image": np.uint8, "end_image": np.uint8}
DTYPES["ip_adapter_image"] = np.uint8


@pytest.mark.parametrize("model_id", FAMILY_NAMES)  # the demo holds one model per family, named like it
def test_every_model_and_profile_has_data_that_matches_its_shape_arguments(model_repository: Path, model_id) -> None:
    manifest = read_manifest(model_repository, model_id)
    assert manifest is not None
    card = read_model_card(model_repository / model_id / MODEL_CARD_FILENAME)
    assert [m["model"] for m in manifest["models"]] == card.triton_models
    folder = perf_inputs_dir(model_repository, model_id)
    for model in manifest["models"]:
        assert {"min", "default", "max"} <= set(model["profiles"])
        for profile in model["profiles"].values():
            data = json.loads((folder / profile["input_data"]).read_text())["data"][0]
            for argument in profile["shape"]:
                name, dims = argument.split(":")
                assert data[name]["shape"] == [int(d) for d in dims.split(",")], (model["model"], argument)
            for name, tensor in data.items():
                if "b64" in tensor:
                    raw = base64.b64decode(tensor["b64"])
                    itemsize = np.dtype(DTYPES.get(name, np.float32)).itemsize
                    assert len(raw) == itemsize * int(np.prod(tensor["shape"])), (model["model"], name)
    denoiser = next(n.component for n in get_family(model_id).networks if n.batched)  # the unet or transformer
    unet = next(m for m in manifest["models"] if m["model"] == f"{model_id}_{denoiser}")
    assert unet["profiles"]["default"]["batch_size"] == 2  # classifier-free guidance: [uncond, cond]
    pipeline = next(m for m in manifest["models"] if m["model"] == model_id)
    assert pipeline["decoupled"]
    caps = card.capabilities  # every request of a model that takes no text carries its image
    if get_family(model_id).kind == "image-to-video" and not caps.text_to_video_via_keyframe:
        for profile in pipeline["profiles"].values():
            data = json.loads((folder / profile["input_data"]).read_text())["data"][0]
            assert data["image"]["shape"][2] == 3 and any(a.startswith("image:") for a in profile["shape"])


def test_text_encoder_gets_real_token_ids(model_repository: Path) -> None:
    folder = perf_inputs_dir(model_repository, "animatediff")
    data = json.loads((folder / "animatediff_text_encoder.default.json").read_text())["data"][0]
    tensor = data[TEXT_INPUT_IDS]
    ids = np.array(tensor["content"], dtype=np.int64).reshape(tensor["shape"]) if "content" in tensor else \
        np.frombuffer(base64.b64decode(tensor["b64"]), dtype=np.int64).reshape(tensor["shape"])
    tokenizer = json.loads((model_repository / "animatediff" / "1" / "assets" / "tokenizer" / "tokenizer.json")
                           .read_text())
    vocabulary = len(tokenizer["model"]["vocab"])
    assert ids.shape == (2, 77) and ids.min() >= 0 and ids.max() < vocabulary
    assert len(set(ids[1].tolist())) > 3  # a tokenized prompt, not padding alone


def test_picture_is_an_image_not_noise() -> None:
    image = picture(64, 96)
    assert image.shape == (64, 96, 3) and image.dtype == np.uint8
    rows = np.abs(np.diff(image.astype(np.int16), axis=1)).mean()
    assert rows < 20  # smooth regions: neighbouring pixels are alike (uniform noise averages ~85)


def _data(folder: Path, filename: str) -> dict:
    return json.loads((folder / filename).read_text())["data"][0]


def _array(tensor: dict, dtype: type) -> np.ndarray:
    if "content" in tensor:
        return np.array(tensor["content"], dtype=dtype).reshape(tensor["shape"])
    return np.frombuffer(base64.b64decode(tensor["b64"]), dtype=dtype).reshape(tensor["shape"])


def test_the_ip_adapter_gets_a_character_request_a_picture_and_the_default_scale(model_repository: Path) -> None:
    folder = perf_inputs_dir(model_repository, "animatediff")
    manifest = read_manifest(model_repository, "animatediff")
    pipeline = next(m for m in manifest["models"] if m["model"] == "animatediff")
    character = pipeline["profiles"]["character"]
    data = _data(folder, character["input_data"])
    reference = _array(data[names.IN_IP_ADAPTER_IMAGE], np.uint8)
    assert reference.ndim == 3 and reference.shape[2] == 3 and reference.std() > 10
    assert any(a.startswith(f"{names.IN_IP_ADAPTER_IMAGE}:") for a in character["shape"])
    assert _array(data[names.IN_IP_ADAPTER_SCALE], np.float32).tolist() == [np.float32(0.6)]
    assert names.IN_IP_ADAPTER_IMAGE not in _data(folder, pipeline["profiles"]["default"]["input_data"])
    unet = _data(folder, "animatediff_unet.default.json")
    assert np.all(_array(unet[UNET_IP_ADAPTER_SCALE], np.float32) == np.float32(0.6))
    pixels = _array(_data(folder, "animatediff_image_encoder.default.json")[IMAGE_ENCODER_PIXELS], np.float32)
    assert pixels.shape == (1, 3, 32, 32) and -2.1 < pixels.min() < pixels.max() < 2.1
