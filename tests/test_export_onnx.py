"""ONNX and TorchScript export of every network of every family: onnxruntime and the saved trace match torch at
batch > 1 and two shapes neither was traced at."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from visualizr.export.build_stamp import ExportOptions
from visualizr.export.family import LoadedModel, family_export
from visualizr.export.onnx_export import (
    MAX_RELATIVE_ERROR,
    export_onnx,
    onnx_cache_key,
    relative_error,
    trace_case,
    verification_cases,
    verify_onnx,
)
from visualizr.export.specs import NetworkSpec, ShapeCase, VAEEncoderSpec
from visualizr.export.torchscript_export import export_torchscript, torchscript_cache_key, verify_torchscript
from visualizr.families import FAMILY_NAMES, get_family

pytestmark = pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")

NETWORKS = [(family, component) for family in FAMILY_NAMES for component in get_family(family).components]


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, LoadedModel]:
    """Every family's tiny demo, loaded through the family's loader (as the export does)."""
    options = {f: ExportOptions(repository=tmp_path_factory.mktemp("unused"), family=f) for f in FAMILY_NAMES}
    return {family: family_export(family).load(options[family]) for family in FAMILY_NAMES}


def _spec(model: LoadedModel, component: str) -> NetworkSpec:
    return next(spec for spec in model.specs if spec.component == component)


def test_verification_cases_cover_batches_and_shapes() -> None:
    first, second = verification_cases(2)
    assert {first.batch, second.batch} == {2, 3}
    assert first.frames != second.frames
    assert first.latent_height != second.latent_height and first.latent_width != second.latent_width
    assert first.latent_height % 2 == first.latent_width % 2 == 0  # aligned to the UNet's downsampling
    assert second.latent_height % 2 or second.latent_width % 2  # ... and not
    assert trace_case(2) not in (first, second)


def test_every_network_has_a_spec(tiny_models: dict[str, LoadedModel]) -> None:
    for family, model in tiny_models.items():
        assert tuple(spec.component for spec in model.specs) == get_family(family).components
        assert set(model.networks) == set(get_family(family).components)


@pytest.mark.slow
@pytest.mark.parametrize("family, component", NETWORKS, ids=lambda v: v)
def test_onnx_matches_torch(tiny_models: dict[str, LoadedModel], family: str, component: str, tmp_path: Path) -> None:
    import onnx

    model = tiny_models[family]
    spec, network = _spec(model, component), model.networks[component]
    path = tmp_path / "model.onnx"
    factor = spec.case_factor(model.unet_downsample_factor)
    assert export_onnx(spec, network, path, trace_case(factor))
    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == spec.input_names
    assert [o.name for o in graph.output] == spec.output_names
    cases = verification_cases(factor)
    assert min(case.batch for case in cases) > 1 and len(set(cases)) == 2
    errors = verify_onnx(spec, network, path, cases)
    assert len(errors) == 2 and max(errors) <= MAX_RELATIVE_ERROR
    # Deterministic: exporting again leaves the file untouched.
    assert not export_onnx(spec, network, path, trace_case(factor))


@pytest.mark.slow
@pytest.mark.parametrize("family, component", NETWORKS, ids=lambda v: v)
def test_torchscript_matches_torch_at_batches_and_shapes_it_was_not_traced_at(
    tiny_models: dict[str, LoadedModel], family: str, component: str, tmp_path: Path
) -> None:
    from visualizr.pipeline.cpu_engines import TorchScriptEngine

    model = tiny_models[family]
    spec, network = _spec(model, component), model.networks[component]
    path = tmp_path / "model.torchscript.pt"
    factor = spec.case_factor(model.unet_downsample_factor)
    assert export_torchscript(spec, network, path, trace_case(factor))
    cases = verification_cases(factor)
    assert trace_case(factor) not in cases and {case.batch for case in cases} == {2, 3}
    errors = verify_torchscript(spec, network, path, cases)
    assert len(errors) == 2 and max(errors) <= MAX_RELATIVE_ERROR
    engine = TorchScriptEngine(tmp_path / "model.onnx")  # the file beside the ONNX one, named by its record
    assert list(engine.input_ranks) == spec.input_names and engine.output_names == set(spec.output_names)
    assert list(engine.input_ranks.values()) == [len(t.axes) for t in spec.inputs]


@pytest.mark.parametrize("family", FAMILY_NAMES)
@pytest.mark.parametrize("cache_key", [onnx_cache_key, torchscript_cache_key])
def test_export_cache_keys_follow_the_weights(tiny_models: dict[str, LoadedModel], family: str, cache_key) -> None:
    model = tiny_models[family]
    spec = model.specs[0]
    network = model.networks[spec.component]
    key = cache_key(spec, network)
    assert key == cache_key(spec, network)
    changed = copy.deepcopy(network)
    with torch.no_grad():
        next(changed.parameters()).add_(1e-3)
    assert cache_key(spec, changed) != key


def test_torchscript_cache_key_follows_torchs_version(
    tiny_models: dict[str, LoadedModel], monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tiny_models[FAMILY_NAMES[0]]
    spec = model.specs[0]
    key = torchscript_cache_key(spec, model.networks[spec.component])
    monkeypatch.setattr(torch, "__version__", "9.9.9")
    assert torchscript_cache_key(spec, model.networks[spec.component]) != key


def test_relative_error_is_max_abs_difference_over_max_abs_reference() -> None:
    expected = np.array([1.0, -4.0, 2.0])
    assert relative_error(expected + np.array([0.0, 0.0, 0.4]), expected) == pytest.approx(0.1)
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0


# LTX-Video's gives the distribution's mean and standard deviation (tests/test_ltx_video_export.py)
@pytest.mark.parametrize(
    "family", [f for f in FAMILY_NAMES if "vae_encoder" in get_family(f).components and f != "ltx-video"]
)
def test_vae_encoder_gives_the_unscaled_mean_of_the_latent_distribution(
    tiny_models: dict[str, LoadedModel], family: str
) -> None:
    model = tiny_models[family]
    spec, vae = _spec(model, "vae_encoder"), model.networks["vae_encoder"]
    assert isinstance(spec, VAEEncoderSpec)
    (pixels,) = spec.sample_inputs(ShapeCase(batch=2, frames=1, latent_height=3, latent_width=5))
    assert pixels.shape == (2, 3, 24, 40) and float(pixels.min()) >= -1 and float(pixels.max()) <= 1
    with torch.no_grad():
        latent = spec.wrapper(vae).eval()(pixels)
        distribution = vae.encode(pixels).latent_dist
    assert latent.shape == (2, model.config.latent_channels, 3, 5)
    torch.testing.assert_close(latent, distribution.mean)  # neither sampled nor multiplied by scaling_factor
