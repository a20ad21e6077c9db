"""TensorRT support that can be checked without a GPU: optimisation profiles and the rendered configs."""

from __future__ import annotations

import importlib.util

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from tests.support.engine_shapes import CARD, CONFIG, DIMS, LIMITS
from visualizr import names
from visualizr.export.__main__ import main
from visualizr.export.families.animatediff.specs import (
    NETWORK_SPECS,
    TextEncoderSpec,
    UNetSpec,
    VAEDecoderSpec,
)
from visualizr.export.specs import VAEEncoderSpec
from visualizr.export.tensorrt_build import build_engine
from visualizr.export.triton_config import BACKEND_TENSORRT, component_model_config
from visualizr.families import get_family
from visualizr.families.animatediff.vocabulary import TEXT_INPUT_IDS


def test_shape_limits_follow_the_model_card() -> None:
    width, frames = CARD.parameter("width"), CARD.parameter("num_frames")
    assert (LIMITS.latent_width.min, LIMITS.latent_width.opt, LIMITS.latent_width.max) == (
        width.min // 8,
        width.default // 8,
        width.max // 8,
    )
    assert (LIMITS.frames.min, LIMITS.frames.opt, LIMITS.frames.max) == (
        frames.min,
        frames.default,
        frames.max,
    )
    unet_batch = LIMITS.unet_batch
    assert (unet_batch.min, unet_batch.opt, unet_batch.max) == (1, 2, CONFIG.unet_max_batch)
    assert LIMITS.decode_batch.max == CONFIG.decode_chunk_size


def test_unet_profile() -> None:
    f, h, w = LIMITS.frames, LIMITS.latent_height, LIMITS.latent_width
    profiles = UNetSpec(DIMS).profiles(LIMITS)
    assert profiles[names.UNET_SAMPLE] == (
        (1, 4, f.min, h.min, w.min),
        (2, 4, f.opt, h.opt, w.opt),
        (4, 4, f.max, h.max, w.max),
    )
    assert profiles[names.UNET_TIMESTEP] == ((1,), (2,), (4,))
    assert profiles[names.UNET_ENCODER_HIDDEN_STATES] == ((1, 77, 32), (2, 77, 32), (4, 77, 32))


def test_text_encoder_and_vae_profiles() -> None:
    text_profile = TextEncoderSpec(DIMS).profiles(LIMITS)
    assert text_profile == {TEXT_INPUT_IDS: ((1, 77), (2, 77), (2, 77))}
    h, w = LIMITS.latent_height, LIMITS.latent_width
    assert VAEDecoderSpec(DIMS).profiles(LIMITS) == {
        names.VAE_LATENT: ((1, 4, h.min, w.min), (8, 4, h.opt, w.opt), (8, 4, h.max, w.max))
    }
    s = CONFIG.vae_scale_factor
    assert VAEEncoderSpec(DIMS).profiles(LIMITS) == {
        names.VAE_ENCODER_PIXELS: (
            (1, 3, s * h.min, s * w.min),
            (1, 3, s * h.opt, s * w.opt),
            (1, 3, s * h.max, s * w.max),
        )
    }


@pytest.mark.parametrize("spec_class", NETWORK_SPECS, ids=lambda c: c.component)
def test_tensorrt_component_config(spec_class) -> None:
    spec = spec_class(DIMS)
    model_name = names.component_model_name("animatediff", spec.component)
    batched = get_family("animatediff").network(spec.component).batched
    text = component_model_config(model_name, spec, BACKEND_TENSORRT, batched, CONFIG.unet_max_batch).render()
    config = text_format.Parse(text, model_config_pb2.ModelConfig())
    assert config.platform == "tensorrt_plan" and not config.backend
    assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_GPU
    assert [i.name for i in config.input] == spec.input_names
    assert "intra_op_num_threads" not in config.parameters
    assert batched == (spec_class is UNetSpec)
    assert config.max_batch_size == (CONFIG.unet_max_batch if batched else 0)
    assert config.HasField("dynamic_batching") == batched


def test_unknown_backend_is_rejected() -> None:
    with pytest.raises(ValueError, match="backend"):
        component_model_config("x", UNetSpec(DIMS), "openvino", True, 4)


without_tensorrt = pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="tensorrt is installed")


@without_tensorrt
def test_build_engine_without_tensorrt_explains_how_to_install(tmp_path) -> None:
    with pytest.raises(RuntimeError, match="pip install"):
        build_engine(tmp_path / "model.onnx", tmp_path / "model.plan", {}, "fp16", tmp_path / "timing.cache")


@without_tensorrt
def test_tensorrt_export_fails_before_exporting_anything(tmp_path, capsys) -> None:
    repository = tmp_path / "repository"
    assert main(["--backend", "tensorrt", "--repository", str(repository)]) == 1
    assert "tensorrt" in capsys.readouterr().err
    assert not repository.exists()
