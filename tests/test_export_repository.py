"""`python -m visualizr.export` end to end: repository layout, rendered configs, model card, assets, idempotency."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from tests.support.repository_layout import model_dirs
from visualizr import names
from visualizr.export.__main__ import main
from visualizr.export.build_stamp import STAMP_FILENAME
from visualizr.export.families.animatediff.tiny import MOTION_ADAPTER_DIRNAME, SD_DIRNAME, ensure_tiny_weights
from visualizr.export.fingerprint import REPO_ROOT
from visualizr.export.shims import COMPONENT_MODEL_PY, PIPELINE_MODEL_PY
from visualizr.families import FAMILY_NAMES, get_family
from visualizr.families.animatediff.loop import AnimateDiffConfig
from visualizr.families.animatediff.vocabulary import IMAGE_EMBEDS, TEXT_INPUT_IDS, UNET_IP_ADAPTER_SCALE
from visualizr.model_card import read_model_card
from visualizr.pipeline_config import read_pipeline_config

pytestmark = pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")

MODEL_ID = "animatediff"
COMPONENT_DIRS = list(get_family(MODEL_ID).component_models(MODEL_ID).values())
# The default build: every family's tiny demo, each under the family's name.
ALL_MODEL_DIRS = [d for f in FAMILY_NAMES for d in (f, *get_family(f).component_models(f).values())]
FP32 = model_config_pb2.DataType.TYPE_FP32


@pytest.fixture(scope="module")
def repository(exported_repository: Path) -> Path:
    return exported_repository


def _config(repository: Path, model: str) -> model_config_pb2.ModelConfig:
    text = (repository / model / "config.pbtxt").read_text()
    return text_format.Parse(text, model_config_pb2.ModelConfig())


def _mtimes(repository: Path) -> dict[Path, int]:
    files = (p for p in repository.rglob("*") if p.is_file() and p.name != STAMP_FILENAME)
    return {p: p.stat().st_mtime_ns for p in files}


def test_layout(repository: Path) -> None:
    pipeline = repository / MODEL_ID
    expected = [pipeline / "config.pbtxt", pipeline / "model_card.json", pipeline / "1" / "model.py"]
    assets = pipeline / "1" / "assets"
    expected += [assets / "pipeline.json", assets / "scheduler" / "scheduler_config.json"]
    expected += [assets / "tokenizer" / "tokenizer_config.json"]
    for component in COMPONENT_DIRS:
        files = ("config.pbtxt", "1/model.py", "1/model.onnx", "1/model.torchscript.pt")
        expected += [repository / component / n for n in files]
    assert [p for p in expected if not p.is_file()] == []
    assert model_dirs(repository) == sorted(ALL_MODEL_DIRS)


@pytest.mark.parametrize("root", ["built", "tracked"])
def test_model_py_shims(repository: Path, root: str) -> None:
    """The export writes the thin adapters; the tracked copies in model_repository/ hold the same text."""
    base = repository if root == "built" else REPO_ROOT / "model_repository"
    for family in FAMILY_NAMES:
        assert (base / family / "1" / "model.py").read_text() == PIPELINE_MODEL_PY
        for component in get_family(family).component_models(family).values():
            assert (base / component / "1" / "model.py").read_text() == COMPONENT_MODEL_PY


def test_component_configs(repository: Path) -> None:
    text_encoder, unet, vae, vae_encoder, image_encoder = (_config(repository, c) for c in COMPONENT_DIRS)
    for config, name in zip((text_encoder, unet, vae, vae_encoder, image_encoder), COMPONENT_DIRS, strict=True):
        assert config.name == name and config.backend == "python"
        assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_CPU
        assert config.parameters["intra_op_num_threads"].string_value == "2"
    assert text_encoder.max_batch_size == 0 and not text_encoder.HasField("dynamic_batching")
    assert [(i.name, i.data_type, list(i.dims)) for i in text_encoder.input] == [
        (TEXT_INPUT_IDS, model_config_pb2.DataType.TYPE_INT64, [-1, 77])
    ]
    assert list(text_encoder.output[0].dims) == [-1, 77, 32]
    assert unet.max_batch_size == 4
    assert unet.HasField("dynamic_batching") and unet.dynamic_batching.max_queue_delay_microseconds == 0  # no wait
    inputs = {i.name: i for i in unet.input}
    assert list(inputs) == [
        names.UNET_SAMPLE, names.UNET_TIMESTEP, names.UNET_ENCODER_HIDDEN_STATES, IMAGE_EMBEDS, UNET_IP_ADAPTER_SCALE
    ]
    assert list(inputs[names.UNET_SAMPLE].dims) == [4, -1, -1, -1]
    assert list(inputs[IMAGE_EMBEDS].dims) == [16]  # the tiny IP-Adapter's image embeds
    for per_sample in (inputs[names.UNET_TIMESTEP], inputs[UNET_IP_ADAPTER_SCALE]):
        assert list(per_sample.dims) == [1]
        assert per_sample.HasField("reshape") and list(per_sample.reshape.shape) == []  # sent as [B, 1], runs as [B]
    assert all(i.data_type == FP32 for i in unet.input)
    assert (unet.output[0].name, list(unet.output[0].dims)) == (names.UNET_NOISE_PRED, [4, -1, -1, -1])
    assert vae.max_batch_size == 0
    assert [(t.name, list(t.dims)) for t in (*vae.input, *vae.output)] == [
        (names.VAE_LATENT, [-1, 4, -1, -1]),
        (names.VAE_IMAGE, [-1, 3, -1, -1]),
    ]
    assert vae_encoder.max_batch_size == 0 and not vae_encoder.HasField("dynamic_batching")
    assert [(t.name, t.data_type, list(t.dims)) for t in (*vae_encoder.input, *vae_encoder.output)] == [
        (names.VAE_ENCODER_PIXELS, FP32, [-1, 3, -1, -1]),
        (names.VAE_ENCODER_LATENT, FP32, [-1, 4, -1, -1]),
    ]
    assert image_encoder.max_batch_size == 0  # the IP-Adapter's: one reference picture per request
    assert [(t.name, t.data_type, list(t.dims)) for t in (*image_encoder.input, *image_encoder.output)] == [
        (names.IMAGE_ENCODER_PIXELS, FP32, [-1, 3, 32, 32]),
        (names.IMAGE_EMBEDS, FP32, [-1, 16]),
    ]


def test_pipeline_config(repository: Path) -> None:
    config = _config(repository, MODEL_ID)
    assert config.backend == "python" and config.max_batch_size == 0
    assert config.model_transaction_policy.decoupled
    inputs = {i.name: i for i in config.input}
    assert list(inputs) == [
        names.IN_PROMPT,
        names.IN_NEGATIVE_PROMPT,
        names.IN_WIDTH,
        names.IN_HEIGHT,
        names.IN_NUM_FRAMES,
        names.IN_NUM_INFERENCE_STEPS,
        names.IN_GUIDANCE_SCALE,
        names.IN_SEED,
        names.IN_IMAGE,
        names.IN_STRENGTH,
        names.IN_IP_ADAPTER_IMAGE,
        names.IN_IP_ADAPTER_SCALE,
        names.IN_PREVIEW_EVERY,
    ]
    optional = {
        names.IN_NEGATIVE_PROMPT,
        names.IN_SEED,
        names.IN_IMAGE,
        names.IN_STRENGTH,
        names.IN_IP_ADAPTER_IMAGE,
        names.IN_IP_ADAPTER_SCALE,
        names.IN_PREVIEW_EVERY,
    }
    assert {name for name, i in inputs.items() if i.optional} == optional
    assert inputs[names.IN_PROMPT].data_type == model_config_pb2.DataType.TYPE_STRING
    assert inputs[names.IN_SEED].data_type == model_config_pb2.DataType.TYPE_INT64
    for picture in (inputs.pop(names.IN_IMAGE), inputs.pop(names.IN_IP_ADAPTER_IMAGE)):
        assert (picture.data_type, list(picture.dims)) == (model_config_pb2.DataType.TYPE_UINT8, [-1, -1, 3])
    strength = inputs[names.IN_STRENGTH]
    assert strength.data_type == FP32
    assert all(list(i.dims) == [1] for i in inputs.values())
    outputs = {o.name: o for o in config.output}
    assert list(outputs) == [
        names.OUT_STEP, names.OUT_TOTAL_STEPS, names.OUT_PHASE, names.OUT_FRAMES, names.OUT_KEYFRAME, names.OUT_PREVIEW
    ]
    assert list(outputs[names.OUT_FRAMES].dims) == [-1, -1, -1, 3]
    assert outputs[names.OUT_FRAMES].data_type == model_config_pb2.DataType.TYPE_UINT8
    assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_CPU
    assert config.instance_group[0].count == 1


def test_model_card(repository: Path) -> None:
    card = read_model_card(repository / MODEL_ID / "model_card.json")
    assert (card.id, card.family, card.weights) == (MODEL_ID, "animatediff", "random-tiny")
    assert card.type == "text-to-video" and card.capabilities.supports_image_to_video
    assert "random" in card.description.lower()
    assert card.triton_models == [*COMPONENT_DIRS, MODEL_ID]
    assert set(card.parameters) == {
        "width",
        "height",
        "num_frames",
        "fps",
        "num_inference_steps",
        "guidance_scale",
        "character_strength",  # the tiny IP-Adapter's scale
    }
    assert card.capabilities.supports_ip_adapter
    for name, p in card.parameters.items():
        assert p.min <= p.default <= p.max, name
    for axis in ("width", "height"):
        p = card.parameter(axis)
        assert p.multiple_of and all(v % p.multiple_of == 0 for v in (p.min, p.default, p.max))
    frames, fps = card.parameter("num_frames"), card.parameter("fps")
    assert card.capabilities.max_duration_seconds == pytest.approx(frames.max / fps.min)
    assert card.capabilities.max_resolution == f"{card.parameter('width').max}x{card.parameter('height').max}"


def test_demo_card_takes_the_contracts_character_example_in_context_windows(repository: Path) -> None:
    """The contract's character animation (5 s at the card's default fps, 1024x1024) runs on this card; clips past
    its native window are made in the FreeNoise windows pipeline.json holds."""
    card = read_model_card(repository / MODEL_ID / "model_card.json")
    config = read_pipeline_config(repository / MODEL_ID / "1" / "assets" / "pipeline.json", AnimateDiffConfig)
    frames, fps = card.parameter("num_frames"), card.parameter("fps")
    assert card.capabilities.max_resolution == "1024x1024" and frames.max == 120
    assert 5 * fps.default <= frames.max
    assert card.capabilities.native_num_frames == config.context.length == 16
    assert (config.context.stride, config.context.weighting, config.context.noise) == (4, "pyramid", "shuffle_context")


def test_pipeline_assets(repository: Path) -> None:
    from diffusers import DDIMScheduler
    from transformers import CLIPTokenizer

    assets = repository / MODEL_ID / "1" / "assets"
    config = read_pipeline_config(assets / "pipeline.json", AnimateDiffConfig)
    assert (config.model_id, config.family, config.text_max_length) == (MODEL_ID, MODEL_ID, 77)
    assert (config.text_hidden_size, config.latent_channels, config.vae_scale_factor) == (32, 4, 8)
    assert config.vae_scaling_factor == pytest.approx(0.18215) and config.unet_max_batch == 4
    tokenizer = CLIPTokenizer.from_pretrained(str(assets / "tokenizer"))
    assert len(tokenizer("a fox", padding="max_length", max_length=77).input_ids) == 77
    assert DDIMScheduler.from_pretrained(str(assets / "scheduler")).config.beta_schedule == "linear"


def test_second_run_is_up_to_date_fast_and_imports_no_torch(repository: Path) -> None:
    before = _mtimes(repository)
    code = (
        "import sys; from visualizr.export.__main__ import main; "
        f"assert main(['--repository', {str(repository)!r}]) == 0; "
        "assert 'torch' not in sys.modules, 'the up-to-date check imported torch'"
    )
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT)
    elapsed = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout
    assert elapsed < 5
    assert _mtimes(repository) == before


def test_rebuild_with_a_stale_stamp_rewrites_nothing(repository: Path) -> None:
    stamp = repository / STAMP_FILENAME
    stamp.write_text(stamp.read_text().replace('"key": "', '"key": "stale-'))
    before = _mtimes(repository)
    assert main(["--repository", str(repository)]) == 0  # reloads the model, reuses the cached ONNX files
    assert _mtimes(repository) == before
    assert "stale-" not in stamp.read_text()


@pytest.mark.slow
def test_export_of_a_local_weights_folder(tmp_path: Path) -> None:
    sd_dir, adapter_dir = ensure_tiny_weights()
    assert (sd_dir.name, adapter_dir.name) == (SD_DIRNAME, MOTION_ADAPTER_DIRNAME)
    argv = ["--weights", str(sd_dir), "--motion-adapter", str(adapter_dir), "--model-id", "my_animatediff"]
    assert main([*argv, "--model-name", "My AnimateDiff", "--repository", str(tmp_path)]) == 0
    card = read_model_card(tmp_path / "my_animatediff" / "model_card.json")
    assert (card.name, card.weights, card.family) == ("My AnimateDiff", SD_DIRNAME, "animatediff")
    assert card.triton_models[-1] == "my_animatediff"
    assert (card.parameter("width").min, card.parameter("width").max) == (256, 1024)
    assert (card.parameter("num_frames").max, card.capabilities.native_num_frames) == (120, 16)  # long clips
    assert _config(tmp_path, "my_animatediff_unet").name == "my_animatediff_unet"
