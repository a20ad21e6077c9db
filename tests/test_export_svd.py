"""Stable Video Diffusion's export: the tiny demo (deterministic, saved as a StableVideoDiffusionPipeline folder and
loaded back through the loader real weights use), its Triton configs, model card and assets, and the export
of a local weights folder (`python -m visualizr.export --family stable-video-diffusion --weights DIR`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from visualizr import names
from visualizr.export.__main__ import main, parse_args
from visualizr.export.families.stable_video_diffusion.loader import load_stable_video_diffusion, weights_variant
from visualizr.export.families.stable_video_diffusion.specs import NETWORK_SPECS, StableVideoDiffusionDims
from visualizr.export.families.stable_video_diffusion.tiny import (
    SCHEDULER_CONFIG,
    build_tiny_pipeline,
    ensure_tiny_weights,
)
from visualizr.export.specs import ShapeCase
from visualizr.families import get_family
from visualizr.families.stable_video_diffusion.loop import StableVideoDiffusionConfig
from visualizr.families.stable_video_diffusion.vocabulary import (
    IMAGE_EMBEDS,
    IMAGE_ENCODER_PIXELS,
    UNET_ADDED_TIME_IDS,
)
from visualizr.model_card import read_model_card
from visualizr.pipeline_config import read_pipeline_config

pytestmark = pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")

MODEL_ID = "stable-video-diffusion"
FAMILY = get_family(MODEL_ID)
TYPES = model_config_pb2.DataType
NETWORKS = ("image_encoder", "unet", "vae")


def _config(repository: Path, model: str) -> model_config_pb2.ModelConfig:
    return text_format.Parse((repository / model / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())


def _outputs(pipeline) -> list[torch.Tensor]:
    """Each network's output on fixed inputs, through the export's wrappers."""
    dims = StableVideoDiffusionDims(image_size=224, image_embed_dim=32)
    specs = {spec.component: spec(dims) for spec in NETWORK_SPECS}
    modules = {"image_encoder": pipeline.image_encoder, "vae_encoder": pipeline.vae, "unet": pipeline.unet,
               "vae_decoder": pipeline.vae}
    with torch.no_grad():
        return [
            specs[c].wrapper(modules[c]).eval()(*specs[c].sample_inputs(ShapeCase(2, 3, 4, 6), seed=5))
            for c in FAMILY.components
        ]


def test_tiny_build_is_deterministic() -> None:
    first, second = build_tiny_pipeline(), build_tiny_pipeline()
    for name in NETWORKS:
        a, b = getattr(first, name).state_dict(), getattr(second, name).state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name


@pytest.mark.slow
def test_tiny_weights_are_a_pipeline_folder_that_reloads_identically() -> None:
    folder = ensure_tiny_weights()
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == "StableVideoDiffusionPipeline"
    assert index["unet"] == ["diffusers", "UNetSpatioTemporalConditionModel"]
    assert index["vae"] == ["diffusers", "AutoencoderKLTemporalDecoder"]
    assert index["image_encoder"] == ["transformers", "CLIPVisionModelWithProjection"]
    loaded = load_stable_video_diffusion(folder)
    for built, reloaded in zip(_outputs(build_tiny_pipeline()), _outputs(loaded), strict=True):
        assert torch.equal(built, reloaded)
    assert (loaded.vae_scale_factor, loaded.image_size, loaded.image_embed_dim, loaded.num_frames) == (8, 224, 32, 14)


def test_scheduler_is_configured_as_svd_ships_it() -> None:
    scheduler = load_stable_video_diffusion(ensure_tiny_weights()).scheduler
    assert type(scheduler).__name__ == "EulerDiscreteScheduler"
    config = scheduler.config
    assert (config.prediction_type, config.use_karras_sigmas, config.timestep_type) == (
        "v_prediction",
        True,
        "continuous",
    )
    assert (config.sigma_min, config.sigma_max) == (0.002, 700.0)
    scheduler.set_timesteps(5)
    assert float(scheduler.sigmas[0]) == pytest.approx(700.0) and float(scheduler.sigmas[-2]) == pytest.approx(0.002)


def test_fp16_variant_weights_load(tmp_path: Path) -> None:
    """The SVD releases ship fp16 variant files only (diffusion_pytorch_model.fp16.safetensors)."""
    folder = tmp_path / "svd-fp16"
    build_tiny_pipeline().to(torch.float16).save_pretrained(str(folder), variant="fp16")
    assert weights_variant(folder / "unet") == "fp16" and weights_variant(ensure_tiny_weights() / "unet") is None
    loaded = load_stable_video_diffusion(folder)
    assert next(loaded.unet.parameters()).dtype == torch.float32  # exported in float32


def test_component_configs(exported_repository: Path) -> None:
    models = FAMILY.component_models(MODEL_ID)
    image_encoder, vae_encoder, unet, decoder = (_config(exported_repository, models[c]) for c in FAMILY.components)
    assert [(t.name, t.data_type, list(t.dims)) for t in (*image_encoder.input, *image_encoder.output)] == [
        (IMAGE_ENCODER_PIXELS, TYPES.TYPE_FP32, [-1, 3, 224, 224]),
        (IMAGE_EMBEDS, TYPES.TYPE_FP32, [-1, 32]),
    ]
    assert unet.max_batch_size == 4 and unet.dynamic_batching.max_queue_delay_microseconds > 0
    assert [(t.name, list(t.dims)) for t in unet.input] == [
        (names.UNET_SAMPLE, [-1, 8, -1, -1]),  # [F, 2C, h, w] after the implicit batch
        (names.UNET_TIMESTEP, [1]),
        (names.UNET_ENCODER_HIDDEN_STATES, [1, 32]),
        (UNET_ADDED_TIME_IDS, [3]),
    ]
    assert list(unet.input[1].reshape.shape) == [] and list(unet.output[0].dims) == [-1, 4, -1, -1]
    for config in (image_encoder, vae_encoder, decoder):
        assert config.max_batch_size == 0 and not config.HasField("dynamic_batching")
    (latent,) = decoder.input  # one clip per call: no num_frames input
    assert (latent.name, list(latent.dims)) == (names.VAE_LATENT, [-1, 4, -1, -1])


def test_pipeline_config_takes_the_family_inputs(exported_repository: Path) -> None:
    config = _config(exported_repository, MODEL_ID)
    assert config.model_transaction_policy.decoupled and config.backend == "python"
    inputs = {i.name: i for i in config.input}
    assert set(inputs) == set(FAMILY.inputs) and names.IN_PROMPT not in inputs
    assert {n for n, i in inputs.items() if not i.optional} == set(FAMILY.required_inputs)
    assert names.IN_IMAGE in FAMILY.required_inputs
    for name in (names.IN_MIN_GUIDANCE_SCALE, names.IN_NOISE_AUG_STRENGTH):
        assert inputs[name].data_type == TYPES.TYPE_FP32
    for name in (names.IN_FPS, names.IN_MOTION_BUCKET_ID):
        assert inputs[name].data_type == TYPES.TYPE_INT32


def test_model_card_and_assets(exported_repository: Path) -> None:
    card = read_model_card(exported_repository / MODEL_ID / "model_card.json")
    assert (card.id, card.family, card.type, card.weights) == (MODEL_ID, MODEL_ID, "image-to-video", "random-tiny")
    assert "random" in card.description.lower()
    assert card.capabilities.supports_image_to_video and not card.capabilities.supports_negative_prompt
    assert card.triton_models == [*FAMILY.component_models(MODEL_ID).values(), MODEL_ID]
    assert card.parameter("guidance_scale").default == 3.0 and card.parameter("fps").default == 7
    assets = exported_repository / MODEL_ID / "1" / "assets"
    config = read_pipeline_config(assets / "pipeline.json", StableVideoDiffusionConfig)
    assert (config.family, config.image_size, config.vae_scale_factor) == (MODEL_ID, 224, 8)
    scheduler = json.loads((assets / "scheduler" / "scheduler_config.json").read_text())
    assert {k: scheduler[k] for k in SCHEDULER_CONFIG} == SCHEDULER_CONFIG
    assert (assets / "feature_extractor" / "preprocessor_config.json").is_file()


@pytest.mark.slow
def test_export_of_a_local_weights_folder(tmp_path: Path) -> None:
    weights = tmp_path / "stable-video-diffusion-img2vid"
    shutil.copytree(ensure_tiny_weights(), weights)
    repository = tmp_path / "repository"
    argv = ["--family", MODEL_ID, "--weights", str(weights), "--model-id", "svd", "--repository", str(repository)]
    assert main(argv) == 0
    card = read_model_card(repository / "svd" / "model_card.json")
    assert (card.family, card.weights) == (MODEL_ID, weights.name)
    assert card.name == f"Stable Video Diffusion ({weights.name})"
    assert card.parameter("num_frames").max == 14 and card.parameter("width").max == 1024
    assert _config(repository, "svd_unet").name == "svd_unet"
    assert sorted(p.name for p in repository.iterdir() if p.is_dir()) == sorted(
        ["svd", *FAMILY.component_models("svd").values()]
    )


def test_cli_rejects_what_does_not_fit_the_family(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--family", MODEL_ID, "--weights", str(tmp_path)])  # not a pipeline folder
    with pytest.raises(SystemExit):
        parse_args(["--family", MODEL_ID, "--motion-adapter", str(tmp_path)])
    with pytest.raises(SystemExit):
        parse_args(["--model-id", "x"])  # one id for every family's demo
    assert [o.family for o in parse_args(["--repository", str(tmp_path)])] == ["animatediff", MODEL_ID]


def test_tensorrt_profiles_and_configs() -> None:
    """What TensorRT would be given (it cannot be installed here): profiles from the card's ranges, and configs."""
    from visualizr.export.families.stable_video_diffusion.cards import tiny_model_card
    from visualizr.export.families.stable_video_diffusion.specs import TemporalVAEDecoderSpec, UNetSpec
    from visualizr.export.model_cards import shape_limits
    from visualizr.export.triton_config import BACKEND_TENSORRT, component_model_config

    config = StableVideoDiffusionConfig(
        model_id=MODEL_ID, family=MODEL_ID, image_size=224, latent_channels=4, vae_scale_factor=8,
        vae_scaling_factor=0.18215,
    )
    limits = shape_limits(tiny_model_card(MODEL_ID, [], 8, 14), config)
    dims = StableVideoDiffusionDims(image_embed_dim=32)
    f, h, w = limits.frames, limits.latent_height, limits.latent_width
    unet = UNetSpec(dims).profiles(limits)
    assert unet[names.UNET_SAMPLE] == (
        (1, f.min, 8, h.min, w.min),
        (2, f.opt, 8, h.opt, w.opt),
        (4, f.max, 8, h.max, w.max),
    )
    assert unet[UNET_ADDED_TIME_IDS] == ((1, 3), (2, 3), (4, 3))
    decoder = TemporalVAEDecoderSpec(dims).profiles(limits)
    assert decoder[names.VAE_LATENT] == ((1, 4, h.min, w.min), (8, 4, h.opt, w.opt), (8, 4, h.max, w.max))
    for spec_class in NETWORK_SPECS:
        spec = spec_class(dims)
        batched = FAMILY.network(spec.component).batched
        text = component_model_config(f"x_{spec.component}", spec, BACKEND_TENSORRT, batched, 4).render()
        rendered = text_format.Parse(text, model_config_pb2.ModelConfig())
        assert rendered.platform == "tensorrt_plan" and [i.name for i in rendered.input] == spec.input_names
        assert rendered.max_batch_size == (4 if batched else 0)
