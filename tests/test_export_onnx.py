"""ONNX export of every network spec: onnxruntime matches torch at batch > 1 and at two different shapes."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from visualizr.export.loader import AnimateDiffComponents, load_animatediff
from visualizr.export.onnx_export import (
    MAX_RELATIVE_ERROR,
    export_onnx,
    onnx_cache_key,
    relative_error,
    trace_case,
    verification_cases,
    verify_onnx,
)
from visualizr.export.repository import network_of
from visualizr.export.specs import NETWORK_SPECS, NetworkDims, TextEncoderSpec, VAEEncoderSpec
from visualizr.export.tiny import ensure_tiny_weights

pytestmark = pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")


@pytest.fixture(scope="module")
def components() -> AnimateDiffComponents:
    return load_animatediff(*ensure_tiny_weights())


def _dims(components: AnimateDiffComponents) -> NetworkDims:
    return NetworkDims(components.text_max_length, components.text_hidden_size, components.latent_channels)


def test_verification_cases_cover_batches_and_shapes() -> None:
    first, second = verification_cases(2)
    assert {first.batch, second.batch} == {2, 3}
    assert first.frames != second.frames
    assert first.latent_height != second.latent_height and first.latent_width != second.latent_width
    assert first.latent_height % 2 == first.latent_width % 2 == 0  # aligned to the UNet's downsampling
    assert second.latent_height % 2 or second.latent_width % 2  # ... and not
    assert trace_case(2) not in (first, second)


@pytest.mark.parametrize("spec_class", NETWORK_SPECS, ids=lambda c: c.component)
def test_onnx_matches_torch(components: AnimateDiffComponents, spec_class, tmp_path: Path) -> None:
    import onnx

    spec = spec_class(_dims(components))
    network = network_of(components, spec)
    path = tmp_path / "model.onnx"
    factor = components.unet_downsample_factor
    assert export_onnx(spec, network, path, trace_case(factor))
    model = onnx.load(str(path))
    assert [i.name for i in model.graph.input] == spec.input_names
    assert [o.name for o in model.graph.output] == spec.output_names
    errors = verify_onnx(spec, network, path, verification_cases(factor))
    assert len(errors) == 2 and max(errors) <= MAX_RELATIVE_ERROR
    # Deterministic: exporting again leaves the file untouched.
    assert not export_onnx(spec, network, path, trace_case(factor))


def test_onnx_cache_key_follows_the_weights(components: AnimateDiffComponents) -> None:
    spec = TextEncoderSpec(_dims(components))
    key = onnx_cache_key(spec, components.text_encoder)
    assert key == onnx_cache_key(spec, components.text_encoder)
    changed = copy.deepcopy(components.text_encoder)
    with torch.no_grad():
        next(changed.parameters()).add_(1e-3)
    assert onnx_cache_key(spec, changed) != key


def test_relative_error_is_max_abs_difference_over_max_abs_reference() -> None:
    expected = np.array([1.0, -4.0, 2.0])
    assert relative_error(expected + np.array([0.0, 0.0, 0.4]), expected) == pytest.approx(0.1)
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0


def test_vae_encoder_gives_the_unscaled_mean_of_the_latent_distribution(components: AnimateDiffComponents) -> None:
    spec = VAEEncoderSpec(_dims(components))
    (pixels,) = spec.sample_inputs(batch=2, frames=1, latent_height=3, latent_width=5)
    assert pixels.shape == (2, 3, 24, 40) and float(pixels.min()) >= -1 and float(pixels.max()) <= 1
    with torch.no_grad():
        latent = spec.wrapper(components.vae).eval()(pixels)
        distribution = components.vae.encode(pixels).latent_dist
    assert latent.shape == (2, components.latent_channels, 3, 5)
    torch.testing.assert_close(latent, distribution.mean)  # neither sampled nor multiplied by scaling_factor
