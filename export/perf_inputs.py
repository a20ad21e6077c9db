"""perf_analyzer input data for every Triton model of one exported pipeline, written beside the repository.

For each model (the component networks and the pipeline model) and each profile (``default``: the model card's
default request; ``max``: its largest; ``min``: its smallest, for smoke tests; the pipeline also gets ``image``:
image-to-video at the default size; with an IP-Adapter ``character``: the default request with a reference
picture), one
perf_analyzer JSON file with real data and the matching ``--shape`` / ``-b`` arguments::

    <repository's folder>/build/perf_inputs/<model id>/manifest.json
    <repository's folder>/build/perf_inputs/<model id>/<triton model>.<profile>.json

Real data, not perf_analyzer's random bytes: token ids from the model's own tokenizer for text inputs (random
INT64 ids index out of the embedding table), a picture (not noise) for image inputs, a mid-schedule timestep,
seeded Gaussian noise for latents and hidden states, the card's values for the pipeline's scalars.

Generic over model families: shapes come from each network spec's TensorRT profile (its ``opt`` and ``max``
levels, which the card's defaults and limits set), names, types and batching from the written ``config.pbtxt``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from visualizr import names
from visualizr.families.animatediff.vocabulary import UNET_IP_ADAPTER_SCALE
from visualizr.model_card import MODEL_CARD_FILENAME, ModelCard, read_model_card

MANIFEST_FILENAME = "manifest.json"
PROMPT = "A serene mountain landscape at sunset, gentle clouds drifting"
NEGATIVE_PROMPT = "blurry, low quality"
TIMESTEP = 500.0
IMAGE_STRENGTH = 0.7
IP_ADAPTER_SCALE = 0.6  # AnimateDiff's character_strength default
REFERENCE_SIZE = (96, 80)  # the IP-Adapter reference picture's height and width (any size: the loop resizes it)
SEED = 42
PROFILES = ("min", "default", "max")
_LEVEL = {"min": 0, "default": 1, "max": 2}  # index into NetworkSpec.profiles(): (min, opt, max)
_NUMPY = {"TYPE_FP32": np.float32, "TYPE_INT64": np.int64, "TYPE_INT32": np.int32, "TYPE_UINT8": np.uint8}
_PIXEL_AXES = ("height", "width")  # export.specs.PIXEL_HEIGHT / PIXEL_WIDTH


def perf_inputs_dir(repository: Path, model_id: str) -> Path:
    return Path(repository).resolve().parent / "build" / "perf_inputs" / model_id


@dataclass(frozen=True)
class TritonInput:
    name: str
    data_type: str  # TYPE_FP32, ...
    dims: tuple[int, ...]
    optional: bool


@dataclass(frozen=True)
class TritonModel:
    name: str
    max_batch_size: int
    decoupled: bool
    inputs: tuple[TritonInput, ...]


def read_config(model_dir: Path) -> TritonModel:
    """The parts of a written ``config.pbtxt`` that shape perf_analyzer's requests."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    config = text_format.Parse((model_dir / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    inputs = tuple(
        TritonInput(i.name, model_config_pb2.DataType.Name(i.data_type), tuple(i.dims), i.optional)
        for i in config.input
    )
    return TritonModel(config.name, config.max_batch_size, config.model_transaction_policy.decoupled, inputs)


def picture(height: int, width: int) -> np.ndarray:
    """A deterministic landscape (sky gradient, sun, hills): uint8 [H, W, 3], an image and not noise."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    sky = np.stack([90 + 120 * y / height, 140 + 60 * y / height, np.full_like(y, 230.0)], axis=-1)
    sun = ((x - 0.7 * width) ** 2 + (y - 0.3 * height) ** 2) < (0.12 * min(height, width)) ** 2
    sky[sun] = (255.0, 220.0, 120.0)
    hills = y > height * (0.65 + 0.1 * np.sin(x / max(width, 1) * 2 * np.pi * 1.5))
    sky[hills] = np.stack([40 + 30 * np.cos(x[hills] / 9.0), 110 + 20 * np.sin(y[hills] / 7.0),
                           np.full(hills.sum(), 50.0)], axis=-1)
    return np.clip(sky, 0, 255).astype(np.uint8)


def _tensor(array: np.ndarray) -> dict[str, Any]:
    array = np.ascontiguousarray(array)
    if array.size <= 64:
        return {"content": array.reshape(-1).tolist(), "shape": list(array.shape)}
    return {"b64": base64.b64encode(array.tobytes()).decode("ascii"), "shape": list(array.shape)}


def _shape_args(model: TritonModel, shapes: Mapping[str, tuple[int, ...]]) -> list[str]:
    """``--shape name:d0,d1`` for every input with a dynamic dim."""
    dynamic = [i.name for i in model.inputs if -1 in i.dims and i.name in shapes]
    return [f"{name}:{','.join(str(d) for d in shapes[name])}" for name in dynamic]


class _Data:
    """Real values for one model's inputs, by role."""

    def __init__(self, tokenizer: Any, text_length: int) -> None:
        self.tokenizer = tokenizer
        self.text_length = text_length
        self.rng = np.random.default_rng(SEED)

    def tokens(self, batch: int, field: str = "input_ids") -> np.ndarray:
        """The prompts' token ids (or, ``field`` "attention_mask", their attention mask) [batch, text length]."""
        texts = ([NEGATIVE_PROMPT, PROMPT] * batch)[-batch:]
        encoded = self.tokenizer(texts, padding="max_length", max_length=self.text_length, truncation=True,
                                 return_tensors="np")
        return getattr(encoded, field).astype(np.int64)

    def component_input(self, name: str, dtype: type, shape: tuple[int, ...], axes: tuple[Any, ...]) -> np.ndarray:
        if np.issubdtype(dtype, np.integer):  # token ids and (T5's) their attention mask: the integer inputs
            field = "attention_mask" if name == "attention_mask" else "input_ids"
            return self.tokens(shape[0], field)[:, : shape[1]].reshape(shape).astype(dtype)
        if name == names.UNET_TIMESTEP:
            return np.full(shape, TIMESTEP, dtype=dtype)
        if name == UNET_IP_ADAPTER_SCALE:
            return np.full(shape, IP_ADAPTER_SCALE, dtype=dtype)
        if name == names.IMAGE_ENCODER_PIXELS:  # CLIP-normalised pixels: about [-2, 2]
            image = picture(shape[-2], shape[-1]).transpose(2, 0, 1).astype(np.float32) / 64.0 - 2.0
            return np.broadcast_to(image, shape).astype(dtype)
        if all(a in axes for a in _PIXEL_AXES) and 3 in shape:  # NCHW pixels in [-1, 1]
            image = picture(shape[-2], shape[-1]).transpose(2, 0, 1).astype(np.float32) / 127.5 - 1.0
            return np.broadcast_to(image, shape).astype(dtype)
        return self.rng.standard_normal(shape).astype(dtype)


def component_entries(model_dir: Path, spec: Any, limits: Any, data: _Data) -> dict[str, dict[str, Any]]:
    """perf_analyzer files and arguments of one component network, per profile."""
    model = read_config(model_dir)
    profiles = spec.profiles(limits)
    axes = {t.name: t.axes for t in spec.inputs}
    dtypes = {i.name: _NUMPY[i.data_type] for i in model.inputs}
    entries = {}
    for profile in PROFILES:
        full = {name: shapes[_LEVEL[profile]] for name, shapes in profiles.items()}
        batch = 1
        shapes = dict(full)
        if model.max_batch_size > 0:  # Triton adds the batch dim: -b carries it, the data holds one sample
            batch = next(iter(full.values()))[0]
            shapes = {i.name: full[i.name][1:] if -1 in i.dims else i.dims for i in model.inputs}
        tensors = {}
        for name, shape in shapes.items():
            sample = data.component_input(name, dtypes[name], full[name], axes[name])
            tensors[name] = _tensor(sample[0].reshape(shape) if model.max_batch_size > 0 else sample)
        entries[profile] = {"batch_size": batch, "shape": _shape_args(model, shapes), "data": tensors}
    return entries


def pipeline_entries(model_dir: Path, card: ModelCard) -> dict[str, dict[str, Any]]:
    """The pipeline model's requests: the card's default request, its largest one, and (when the card says it can)
    image-to-video at the default size, and a character request (an IP-Adapter reference picture at the default
    scale) when the card says it takes one. A model that takes no text (Stable Video Diffusion without a keyframe
    stage) gets an image in every request."""
    model = read_config(model_dir)
    takes_text = card.type == "text-to-video" or card.capabilities.text_to_video_via_keyframe
    image_required = not takes_text or any(i.name == names.IN_IMAGE and not i.optional for i in model.inputs)

    def request(level: str, with_image: bool, with_reference: bool = False) -> dict[str, Any]:
        values = {n: getattr(p, level) for n, p in card.parameters.items()}
        values["guidance_scale"] = card.parameter("guidance_scale").default
        if level == "max":  # the largest video at the default number of steps (more steps only repeat them)
            values["num_inference_steps"] = card.parameter("num_inference_steps").default
        tensors: dict[str, Any] = {}
        shapes: dict[str, tuple[int, ...]] = {}
        for i in model.inputs:
            if i.name == names.IN_PROMPT and takes_text:
                tensors[i.name] = {"content": [PROMPT], "shape": [1]}
            elif i.name == names.IN_NEGATIVE_PROMPT and takes_text:
                tensors[i.name] = {"content": [NEGATIVE_PROMPT], "shape": [1]}
            elif i.name == names.IN_SEED:
                tensors[i.name] = _tensor(np.array([SEED], dtype=np.int64))
            elif i.name == names.IN_IMAGE and with_image:
                image = picture(int(values["height"]), int(values["width"]))
                tensors[i.name], shapes[i.name] = _tensor(image), image.shape
            elif i.name == names.IN_STRENGTH and with_image:
                tensors[i.name] = _tensor(np.array([IMAGE_STRENGTH], dtype=np.float32))
            elif i.name == names.IN_IP_ADAPTER_IMAGE and with_reference:
                image = picture(*REFERENCE_SIZE)
                tensors[i.name], shapes[i.name] = _tensor(image), image.shape
            elif i.name == names.IN_IP_ADAPTER_SCALE and with_reference:
                tensors[i.name] = _tensor(np.array([IP_ADAPTER_SCALE], dtype=np.float32))
            elif i.name in values:
                tensors[i.name] = _tensor(np.array([values[i.name]], dtype=_NUMPY[i.data_type]))
            elif not i.optional:
                raise ValueError(f"{model.name}: no value for the required input {i.name!r}")
        return {"batch_size": 1, "shape": _shape_args(model, shapes), "data": tensors}

    entries = {level: request(level, image_required) for level in ("min", "default", "max")}
    if card.capabilities.supports_image_to_video and not image_required:
        entries["image"] = request("default", True)
    if card.capabilities.supports_ip_adapter:
        entries["character"] = request("default", image_required, with_reference=True)
    return entries


def write_perf_inputs(repository: Path, model_id: str, specs: Iterable[Any], limits: Any) -> Path:
    """Write the perf_analyzer data of ``model_id`` (its card and configs already written); returns the folder."""
    from transformers import AutoTokenizer

    from visualizr.pipeline_config import PIPELINE_ASSETS_DIRNAME, TOKENIZER_DIRNAME

    repository = Path(repository)
    card = read_model_card(repository / model_id / MODEL_CARD_FILENAME)
    assets = repository / model_id / "1" / PIPELINE_ASSETS_DIRNAME
    # the model's tokenizer: its own, or its keyframe stage's (Stable Video Diffusion)
    tokenizer_dir = next(iter(sorted(assets.rglob(f"{TOKENIZER_DIRNAME}/tokenizer_config.json"))), None)
    tokenizer = None if tokenizer_dir is None else AutoTokenizer.from_pretrained(str(tokenizer_dir.parent))
    data = _Data(tokenizer, getattr(tokenizer, "model_max_length", 77))
    out = perf_inputs_dir(repository, model_id)
    out.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {"model_id": model_id, "models": []}
    composing = []
    models = [(names.component_model_name(model_id, s.component), s) for s in specs]
    for triton_name, spec in models:
        composing.append(triton_name)
        entries = component_entries(repository / triton_name, spec, limits, data)
        manifest["models"].append(_write(out, repository / triton_name, "component", entries, []))
    entries = pipeline_entries(repository / model_id, card)
    manifest["models"].append(_write(out, repository / model_id, "pipeline", entries, composing))
    (out / MANIFEST_FILENAME).write_text(json.dumps(manifest, indent=2) + "\n")
    return out


def _write(out: Path, model_dir: Path, kind: str, entries: dict[str, dict[str, Any]], composing: list[str]) -> dict:
    model, profiles = model_dir.name, {}
    for profile, entry in entries.items():
        filename = f"{model}.{profile}.json"
        text = json.dumps({"data": [entry["data"]]}, separators=(",", ":"))
        path = out / filename
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
        profiles[profile] = {"input_data": filename, "shape": entry["shape"], "batch_size": entry["batch_size"]}
    return {"model": model, "kind": kind, "decoupled": read_config(model_dir).decoupled, "composing_models": composing,
            "profiles": profiles}


def read_manifest(repository: Path, model_id: str) -> dict[str, Any] | None:
    path = perf_inputs_dir(repository, model_id) / MANIFEST_FILENAME
    return json.loads(path.read_text()) if path.is_file() else None
