"""Stable Video Diffusion's export: the tiny demo (deterministic, saved as a StableVideoDiffusionPipeline folder and
loaded back through the loader real weights use, with the AnimateDiff demo's Stable Diffusion folder as its keyframe
stage), its Triton configs, model card and assets, and the export of a local weights folder
(`python -m visualizr.export --family stable-video-diffusion --weights DIR [--keyframe-weights SD_DIR]`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from tests.support.repository_layout import model_dirs
from visualizr import names
from visualizr.export.__main__ import main, parse_args
from visualizr.export.build_stamp import ExportOptions
from visualizr.export.families.animatediff.tiny import ensure_tiny_weights as ensure_tiny_sd
from visualizr.export.families.stable_video_diffusion import EXPORT
from visualizr.export.families.stable_video_diffusion.loader import load_stable_video_diffusion, weights_variant
from visualizr.export.families.stable_video_diffusion.specs import (
    KEYFRAME_SPECS,
    NETWORK_SPECS,
    KeyframeDims,
    StableVideoDiffusionDims,
)
from visualizr.export.families.stable_video_diffusion.tiny import (
    SCHEDULER_CONFIG,
    build_tiny_pipeline,
    ensure_tiny_weights,
)
from visualizr.export.specs import ShapeCase
from visualizr.families import FAMILY_NAMES, get_family
from visualizr.families.stable_video_diffusion.loop import StableVideoDiffusionConfig
from visualizr.families.stable_video_diffusion.vocabulary import (
    IMAGE_EMBEDS,
    IMAGE_ENCODER_PIXELS,
    KEYFRAME_TEXT_ENCODER,
    KEYFRAME_UNET,
    KEYFRAME_VAE_DECODER,
    UNET_ADDED_TIME_IDS,
)
from visualizr.model_card import read_model_card
from visualizr.pipeline_config import read_pipeline_config

pytestmark = pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")

MODEL_ID = "stable-video-diffusion"
FAMILY = get_family(MODEL_ID)
TYPES = model_config_pb2.DataType
NETWORKS = ("image_encoder", "unet", "vae")
KEYFRAME_COMPONENTS = (KEYFRAME_TEXT_ENCODER, KEYFRAME_UNET, KEYFRAME_VAE_DECODER)
SVD_COMPONENTS = tuple(c for c in FAMILY.components if c not in KEYFRAME_COMPONENTS)


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
            for c in SVD_COMPONENTS
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
    loaded, built_pipeline = load_stable_video_diffusion(folder), build_tiny_pipeline()
    for name in NETWORKS:  # the same weights ...
        a, b = getattr(built_pipeline, name).state_dict(), getattr(loaded, name).state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    for built, reloaded in zip(_outputs(built_pipeline), _outputs(loaded), strict=True):  # ... the same outputs
        torch.testing.assert_close(built, reloaded, rtol=0, atol=1e-5)  # (the loaded tensors' strides differ)
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
    image_encoder, vae_encoder, unet, decoder = (_config(exported_repository, models[c]) for c in SVD_COMPONENTS)
    assert [(t.name, t.data_type, list(t.dims)) for t in (*image_encoder.input, *image_encoder.output)] == [
        (IMAGE_ENCODER_PIXELS, TYPES.TYPE_FP32, [-1, 3, 224, 224]),
        (IMAGE_EMBEDS, TYPES.TYPE_FP32, [-1, 32]),
    ]
    assert unet.max_batch_size == 4 and unet.HasField("dynamic_batching")
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
    # the keyframe stage's networks: Stable Diffusion's, the unet batched like every unet
    text_encoder, keyframe_unet, keyframe_decoder = (
        _config(exported_repository, models[c]) for c in KEYFRAME_COMPONENTS
    )
    assert [(t.name, t.data_type, list(t.dims)) for t in text_encoder.input] == [
        (names.TEXT_INPUT_IDS, TYPES.TYPE_INT64, [-1, 77])
    ]
    assert keyframe_unet.max_batch_size == 4 and keyframe_unet.HasField("dynamic_batching")
    assert [(t.name, list(t.dims)) for t in keyframe_unet.input] == [
        (names.UNET_SAMPLE, [4, -1, -1]),  # [C, h, w] after the implicit batch: one picture
        (names.UNET_TIMESTEP, [1]),
        (names.UNET_ENCODER_HIDDEN_STATES, [77, 32]),
    ]
    assert [(t.name, list(t.dims)) for t in keyframe_decoder.input] == [(names.VAE_LATENT, [-1, 4, -1, -1])]


def test_pipeline_config_takes_the_family_inputs(exported_repository: Path) -> None:
    config = _config(exported_repository, MODEL_ID)
    assert config.model_transaction_policy.decoupled and config.backend == "python"
    inputs = {i.name: i for i in config.input}
    assert set(inputs) == set(FAMILY.inputs)
    assert {n for n, i in inputs.items() if not i.optional} == set(FAMILY.required_inputs)
    # an image, or (through the keyframe stage) text
    assert all(inputs[n].optional for n in (names.IN_IMAGE, names.IN_PROMPT, names.IN_NEGATIVE_PROMPT))
    outputs = {o.name: o for o in config.output}
    assert (outputs[names.OUT_KEYFRAME].data_type, list(outputs[names.OUT_KEYFRAME].dims)) == (TYPES.TYPE_UINT8,
                                                                                              [-1, -1, 3])
    for name in (names.IN_MIN_GUIDANCE_SCALE, names.IN_NOISE_AUG_STRENGTH):
        assert inputs[name].data_type == TYPES.TYPE_FP32
    for name in (names.IN_FPS, names.IN_MOTION_BUCKET_ID):
        assert inputs[name].data_type == TYPES.TYPE_INT32


def test_model_card_and_assets(exported_repository: Path) -> None:
    card = read_model_card(exported_repository / MODEL_ID / "model_card.json")
    assert (card.id, card.family, card.type, card.weights) == (MODEL_ID, MODEL_ID, "image-to-video", "random-tiny")
    assert "random" in card.description.lower() and "keyframe" in card.description
    caps = card.capabilities
    assert caps.supports_image_to_video and caps.text_to_video_via_keyframe and caps.supports_negative_prompt
    assert card.triton_models == [*FAMILY.component_models(MODEL_ID).values(), MODEL_ID]
    assert card.parameter("guidance_scale").default == 3.0 and card.parameter("fps").default == 7
    # the contract's sizes and frame counts: 1024 x 1024, 5 s at 24 fps; one pass makes 14 frames
    assert (card.parameter("width").max, card.parameter("height").max, card.parameter("num_frames").max) == (
        1024, 1024, 120
    )
    assert (caps.native_num_frames, card.parameter("num_frames").default, caps.max_resolution) == (14, 14, "1024x1024")
    assert caps.segment_overlap == 2  # the pipeline's (below): the service's estimates count whole segments
    assets = exported_repository / MODEL_ID / "1" / "assets"
    config = read_pipeline_config(assets / "pipeline.json", StableVideoDiffusionConfig)
    assert (config.family, config.image_size, config.vae_scale_factor) == (MODEL_ID, 224, 8)
    assert (config.native_num_frames, config.segment_overlap, config.decode_max_cells) == (14, 2, 128 * 128)
    assert config.keyframe is not None and config.keyframe.guidance_scale == 7.5
    assert (assets / "keyframe" / "tokenizer" / "tokenizer.json").is_file()
    sd_scheduler = json.loads((ensure_tiny_sd()[0] / "scheduler" / "scheduler_config.json").read_text())
    keyframe_scheduler = json.loads((assets / "keyframe" / "scheduler" / "scheduler_config.json").read_text())
    assert keyframe_scheduler["_class_name"] == sd_scheduler["_class_name"]  # the folder's own, as diffusers uses it
    scheduler = json.loads((assets / "scheduler" / "scheduler_config.json").read_text())
    assert {k: scheduler[k] for k in SCHEDULER_CONFIG} == SCHEDULER_CONFIG
    assert (assets / "feature_extractor" / "preprocessor_config.json").is_file()


@pytest.mark.slow
def test_export_of_a_local_weights_folder_with_a_keyframe_stage(tmp_path: Path) -> None:
    weights, keyframe = tmp_path / "stable-video-diffusion-img2vid", tmp_path / "stable-diffusion-v1-5"
    shutil.copytree(ensure_tiny_weights(), weights)
    shutil.copytree(ensure_tiny_sd()[0], keyframe)
    repository = tmp_path / "repository"
    argv = ["--family", MODEL_ID, "--weights", str(weights), "--keyframe-weights", str(keyframe), "--model-id", "svd",
            "--repository", str(repository)]
    assert main(argv) == 0
    card = read_model_card(repository / "svd" / "model_card.json")
    assert (card.family, card.weights) == (MODEL_ID, weights.name)
    assert card.name == f"Stable Video Diffusion ({weights.name})" and keyframe.name in card.description
    assert card.parameter("num_frames").max == 120 and card.capabilities.native_num_frames == 14
    assert card.capabilities.text_to_video_via_keyframe and card.parameter("width").max == 1024
    assert _config(repository, "svd_unet").name == "svd_unet"
    assert model_dirs(repository) == sorted(
        ["svd", *FAMILY.component_models("svd").values()]
    )
    config = read_pipeline_config(repository / "svd" / "1" / "assets" / "pipeline.json", StableVideoDiffusionConfig)
    assert config.decode_max_cells == 8 * 128 * 72  # real weights: 8 frames of 1024 x 576 per decoder call


def test_weights_without_a_keyframe_stage_make_an_image_only_model(tmp_path: Path) -> None:
    options = ExportOptions(repository=tmp_path, family=MODEL_ID, weights=str(ensure_tiny_weights()), model_id="svd")
    model = EXPORT.describe(options, load_stable_video_diffusion(ensure_tiny_weights()))
    assert [spec.component for spec in model.specs] == list(SVD_COMPONENTS) and model.config.keyframe is None
    assert model.card.triton_models == [f"svd_{c}" for c in SVD_COMPONENTS] + ["svd"]
    caps = model.card.capabilities
    assert not caps.text_to_video_via_keyframe and not caps.supports_negative_prompt and caps.native_num_frames == 14
    assert "Image-to-video only" in model.card.notes and model.limits.frames.max == 14


def test_cli_rejects_what_does_not_fit_the_family(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--family", MODEL_ID, "--weights", str(tmp_path)])  # not a pipeline folder
    with pytest.raises(SystemExit):
        parse_args(["--family", MODEL_ID, "--motion-adapter", str(tmp_path)])
    with pytest.raises(SystemExit):
        parse_args(["--model-id", "x"])  # one id for every family's demo
    with pytest.raises(SystemExit):  # a keyframe stage belongs to an SVD export of local weights
        parse_args(["--family", "animatediff", "--keyframe-weights", str(ensure_tiny_sd()[0])])
    with pytest.raises(SystemExit):  # ... that is a Stable Diffusion folder
        parse_args(["--family", MODEL_ID, "--weights", str(ensure_tiny_weights()), "--keyframe-weights", str(tmp_path)])
    parsed = parse_args(["--family", MODEL_ID, "--weights", str(ensure_tiny_weights()), "--keyframe-weights",
                         str(ensure_tiny_sd()[0])])
    assert parsed[0].keyframe_weights == ensure_tiny_sd()[0].resolve()
    assert [o.family for o in parse_args(["--repository", str(tmp_path)])] == list(FAMILY_NAMES)


def test_tensorrt_profiles_and_configs() -> None:
    """What TensorRT would be given (it cannot be installed here): profiles from the card's ranges, and configs."""
    from visualizr.export.families.stable_video_diffusion.cards import tiny_model_card, with_stages
    from visualizr.export.families.stable_video_diffusion.specs import TemporalVAEDecoderSpec, UNetSpec
    from visualizr.export.model_cards import shape_limits
    from visualizr.export.triton_config import BACKEND_TENSORRT, component_model_config

    config = StableVideoDiffusionConfig(
        model_id=MODEL_ID, family=MODEL_ID, image_size=224, latent_channels=4, vae_scale_factor=8,
        vae_scaling_factor=0.18215,
    )
    limits = shape_limits(with_stages(tiny_model_card(MODEL_ID, [], 8, 14), 14, "sd"), config, unet_frames=14)
    dims = StableVideoDiffusionDims(image_embed_dim=32)
    f, h, w = limits.frames, limits.latent_height, limits.latent_width
    assert (f.min, f.opt, f.max, h.max, w.max) == (2, 14, 14, 128, 128)  # the unet sees one segment at most
    unet = UNetSpec(dims).profiles(limits)
    assert unet[names.UNET_SAMPLE] == (
        (1, f.min, 8, h.min, w.min),
        (2, f.opt, 8, h.opt, w.opt),
        (4, f.max, 8, h.max, w.max),
    )
    assert unet[UNET_ADDED_TIME_IDS] == ((1, 3), (2, 3), (4, 3))
    decoder = TemporalVAEDecoderSpec(dims).profiles(limits)
    assert decoder[names.VAE_LATENT] == ((1, 4, h.min, w.min), (8, 4, h.opt, w.opt), (8, 4, h.max, w.max))
    keyframe_unet = KEYFRAME_SPECS[1](KeyframeDims(text_hidden_size=32)).profiles(limits)
    assert keyframe_unet[names.UNET_SAMPLE] == ((1, 4, h.min, w.min), (2, 4, h.opt, w.opt), (4, 4, h.max, w.max))
    for spec in [*(s(dims) for s in NETWORK_SPECS), *(s(KeyframeDims()) for s in KEYFRAME_SPECS)]:
        batched = FAMILY.network(spec.component).batched
        text = component_model_config(f"x_{spec.component}", spec, BACKEND_TENSORRT, batched, 4).render()
        rendered = text_format.Parse(text, model_config_pb2.ModelConfig())
        assert rendered.platform == "tensorrt_plan" and [i.name for i in rendered.input] == spec.input_names
        assert rendered.max_batch_size == (4 if batched else 0)
