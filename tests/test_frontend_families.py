"""The API's family-dependent logic as pure functions (no app, no backend): which model a request without
``model`` runs on, what ``motion_strength`` becomes for each family, the route named to a text-only request for
an image-only model, the conditioning phase in the progress bands, and job parameters stored before SVD."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from tests.support.fakes import make_card, svd_card
from visualizr import names
from visualizr.frontend.catalog import ModelCatalog
from visualizr.frontend.errors import InvalidParametersError
from visualizr.frontend.generation.intake.from_image import motion_parameters
from visualizr.frontend.generation.intake.validation import FROM_IMAGE_ROUTE, default_model, resolve_card
from visualizr.frontend.generation.running.progress import progress_of
from visualizr.frontend.jobs.record import KIND_CHARACTER, KIND_IMAGE, KIND_TEXT, GenerationParameters
from visualizr.model_card import MODEL_CARD_FILENAME, ModelCard, write_model_card
from visualizr_client.models import VideoParameters

SVD = "stable-video-diffusion"


def catalog_of(root: Path, *cards: ModelCard, unreadable: tuple[str, ...] = ()) -> ModelCatalog:
    for card in cards:
        (root / card.id).mkdir(parents=True)
        write_model_card(card, root / card.id / MODEL_CARD_FILENAME)
    for model_id in unreadable:  # a folder whose card does not parse: never chosen, never an error
        (root / model_id).mkdir(parents=True)
        (root / model_id / MODEL_CARD_FILENAME).write_text("{not json")
    return ModelCatalog(root)


def test_from_image_defaults_to_the_first_image_to_video_model(tmp_path: Path) -> None:
    catalog = catalog_of(tmp_path, make_card(), svd_card(), svd_card("svd-xt"))
    assert default_model(catalog, KIND_IMAGE) == SVD  # the first in id order
    assert default_model(catalog, KIND_TEXT) == default_model(catalog, KIND_CHARACTER) == "animatediff"


def test_without_an_image_to_video_model_from_image_runs_on_animatediff(tmp_path: Path) -> None:
    catalog = catalog_of(tmp_path, make_card(), unreadable=("a-broken-model",))
    assert default_model(catalog, KIND_IMAGE) == "animatediff"


@pytest.mark.parametrize(
    ("strength", "expected"),
    [(0.5, (127, 0.02)), (0.7, (178, 0.028)), (1.0, (255, 0.04)), (0.004, (1, 0.00016))],
)
def test_motion_strength_is_svd_conditioning(strength: float, expected: tuple[int, float]) -> None:
    values = motion_parameters(svd_card(), strength)
    assert set(values) == {"motion_bucket_id", "noise_aug_strength"}
    assert (values["motion_bucket_id"], values["noise_aug_strength"]) == (expected[0], pytest.approx(expected[1]))
    assert isinstance(values["motion_bucket_id"], int)  # an INT32 pipeline input


def test_motion_strength_is_animatediff_img2img_strength_and_the_fallback() -> None:
    assert motion_parameters(make_card(), 0.6) == {"strength": 0.6}
    custom = msgspec.structs.replace(make_card("custom"), family="not-a-registered-family")
    assert motion_parameters(custom, 0.6) == {"strength": 0.6}  # a card of an unknown family: img2img strength


@pytest.mark.parametrize("kind", [KIND_TEXT, KIND_CHARACTER])
def test_an_image_only_model_names_the_from_image_route(tmp_path: Path, kind: str) -> None:
    catalog = catalog_of(tmp_path, make_card(), svd_card())
    with pytest.raises(InvalidParametersError) as raised:
        resolve_card(catalog, SVD, kind)
    assert FROM_IMAGE_ROUTE in raised.value.message and "animates an image" in raised.value.message
    assert raised.value.details == {"field": "model", "value": SVD, "type": "image-to-video"}
    assert resolve_card(catalog, SVD, KIND_IMAGE).id == SVD


def test_image_encoding_is_the_conditioning_band() -> None:
    assert progress_of(names.PHASE_IMAGE_ENCODING, 0, 10) == (5, "image_encoding")
    assert progress_of(names.PHASE_IMAGE_ENCODING, 0, 10)[0] == progress_of(names.PHASE_TEXT_ENCODING, 0, 10)[0]


def test_job_parameters_stored_before_svd_still_decode_and_absent_fields_are_not_stored() -> None:
    old = b'{"width":64,"height":48,"num_frames":6,"fps":8,"num_inference_steps":4,"guidance_scale":7.5,"seed":1}'
    params = msgspec.json.decode(old, type=GenerationParameters)
    assert (params.strength, params.motion_bucket_id, params.noise_aug_strength) == (None, None, None)
    assert msgspec.json.encode(params) == old  # nothing new written for a job without them
    svd = msgspec.structs.replace(params, motion_bucket_id=127, noise_aug_strength=0.02)
    stored = msgspec.json.decode(msgspec.json.encode(svd))
    assert (stored["motion_bucket_id"], stored["noise_aug_strength"]) == (127, 0.02) and "strength" not in stored
    shown = msgspec.json.decode(msgspec.json.encode(svd), type=VideoParameters)  # the SDK reads what the API shows
    assert (shown.motion_bucket_id, shown.noise_aug_strength, shown.strength) == (127, 0.02, None)
