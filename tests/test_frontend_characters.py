"""The character registry (``/api/v1/characters``) and the character route's use of it, in-process against the
scripted fake backend: create, list, show, pictures, delete; the documented errors; nothing half-stored; the
reference picture as the IP-Adapter's image (card flag forced on) and as an image-to-video model's source image."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from litestar.testing import TestClient
from PIL import Image

from tests.support.fakes import MODEL_ID, FakeBackend, error_of, make_card, make_settings, running_app, wait_for
from tests.support.job_database import with_store
from visualizr.export.characters import PICTURES_DIRNAME, picture_png, write_builtin_pictures
from visualizr.frontend.characters.service import CharacterService
from visualizr.frontend.characters.uploads import CharacterDraft
from visualizr.frontend.generation.intake.characters import CHARACTERS
from visualizr.frontend.generation.running.runner import generation_request
from visualizr.frontend.infra.objects import FolderStore, ObjectStoreError
from visualizr.frontend.jobs.characters import CharacterBook
from visualizr.frontend.jobs.database import SqliteDatabase
from visualizr.frontend.jobs.record import GenerationParameters, JobRecord
from visualizr.frontend.jobs.store import JobStore
from visualizr.model_card import write_model_card
from visualizr.settings import Settings

CHARACTERS_URL = "/api/v1/characters"
ANIMATE = "/api/v1/generate/character-animation"


def png(colour: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def create(client: TestClient, pictures: list[bytes], **fields: str) -> Any:
    files = [("images", (f"p{i}.png", data, "image/png")) for i, data in enumerate(pictures)]
    return client.post(CHARACTERS_URL, data={"name": "Hero", **fields}, files=files)


def stored_files(settings: Settings) -> list[Path]:
    root = settings.data_dir / "characters"
    return sorted(p for p in root.rglob("*") if p.is_file() and "builtin" not in p.name) if root.exists() else []


def settings_with(tmp_path: Path, **capabilities: Any) -> Settings:
    """Test settings whose card's capabilities are changed, and the built-ins' pictures drawn into the repository."""
    settings = make_settings(tmp_path)
    card = make_card()
    changed = msgspec.structs.replace(card, capabilities=msgspec.structs.replace(card.capabilities, **capabilities))
    write_model_card(changed, settings.model_repository / MODEL_ID / "model_card.json")
    write_builtin_pictures(settings.model_repository)
    return settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return settings_with(tmp_path)


def test_create_list_show_pictures_and_delete(settings: Settings) -> None:
    with running_app(settings, FakeBackend()) as client:
        made = create(client, [png((255, 0, 0)), png((0, 0, 255), (900, 600))], character_id="hero",
                      description="a knight in red armour")  # fmt: skip
        assert made.status_code == 201, made.text
        body = made.json()
        assert (body["character_id"], body["name"], body["builtin"], body["video_count"]) == ("hero", "Hero", False, 0)
        assert body["reference_image_urls"] == [f"{CHARACTERS_URL}/hero/images/1", f"{CHARACTERS_URL}/hero/images/2"]
        second = Image.open(io.BytesIO(client.get(body["reference_image_urls"][1]).content))
        assert second.size == (512, 341)  # no side over 512, aspect kept
        thin = create(client, [png((9, 9, 9), (8, 4000))], character_id="thin").json()
        picture = Image.open(io.BytesIO(client.get(thin["reference_image_urls"][0]).content))
        assert picture.size == (8, 512)  # no side under 8: a picture the route can read again
        assert client.delete(f"{CHARACTERS_URL}/thin").status_code == 200
        assert client.get(f"{CHARACTERS_URL}/hero").json() == body

        listed = client.get(CHARACTERS_URL).json()
        assert [c["character_id"] for c in listed["characters"]] == [*sorted(CHARACTERS), "hero"]  # built-ins first
        assert (listed["total_count"], listed["has_more"]) == (6, False)
        page = client.get(CHARACTERS_URL, params={"limit": 2, "offset": 4}).json()
        assert [c["character_id"] for c in page["characters"]] == ["teacher", "hero"]
        error_of(client.get(CHARACTERS_URL, params={"limit": 0}), 400, "INVALID_PARAMETERS")

        rid = client.post(ANIMATE, json={"character_id": "hero", "resolution": "64x48"}).json()["request_id"]
        assert wait_for(client, rid, {"completed", "failed"})["status"] == "completed"
        assert client.get(f"{CHARACTERS_URL}/hero").json()["video_count"] == 1
        video_id = "anim_" + rid.removeprefix("anim_req_")
        assert client.get(f"/api/v1/assets/videos/{video_id}").json()["character_id"] == "hero"

        deleted = client.delete(f"{CHARACTERS_URL}/hero").json()
        assert (deleted["character_id"], deleted["status"]) == ("hero", "deleted")
        assert stored_files(settings) == []
        video = wait_for(client, rid, {"completed"})["result"]["video_url"]
        assert client.get(video).status_code == 200  # the video made keeps working
        error_of(client.get(f"{CHARACTERS_URL}/hero"), 404, "CHARACTER_NOT_FOUND")
        error_of(client.delete(f"{CHARACTERS_URL}/hero"), 404, "CHARACTER_NOT_FOUND")
        error_of(client.post(ANIMATE, json={"character_id": "hero"}), 404, "CHARACTER_NOT_FOUND")


def test_builtins_have_the_exports_pictures_and_stay(settings: Settings) -> None:
    with running_app(settings, FakeBackend()) as client:
        robot = client.get(f"{CHARACTERS_URL}/robot").json()
        assert (robot["builtin"], robot["description"]) == (True, CHARACTERS["robot"].appearance)
        assert [client.get(url).content for url in robot["reference_image_urls"]] == [
            picture_png("robot", 0),
            picture_png("robot", 1),
        ]
        error = error_of(client.delete(f"{CHARACTERS_URL}/robot"), 400, "INVALID_PARAMETERS")
        assert error["details"]["field"] == "character_id" and error["details"]["reason"] == "built-in"
        error_of(client.get(f"{CHARACTERS_URL}/robot/images/3"), 404, "CHARACTER_NOT_FOUND")
    assert (settings.model_repository / PICTURES_DIRNAME / "robot_1.png").read_bytes() == picture_png("robot", 0)


@pytest.mark.parametrize(
    ("pictures", "fields", "field"),
    [
        ([], {}, "images"),
        ([png((1, 2, 3))] * 5, {}, "images"),
        ([b"not a picture"], {}, "images"),
        ([png((1, 2, 3)), b""], {}, "images"),
        ([png((1, 2, 3), (4, 4))], {}, "images"),
        ([png((1, 2, 3))], {"name": ""}, "name"),
        ([png((1, 2, 3))], {"name": "x" * 101}, "name"),
        ([png((1, 2, 3))], {"description": "x" * 501}, "description"),
        ([png((1, 2, 3))], {"character_id": "Bad Id"}, "character_id"),
        ([png((1, 2, 3))], {"character_id": "robot"}, "character_id"),
        ([png((1, 2, 3))], {"voice": "deep"}, "voice"),
    ],
)
def test_bad_creates_name_the_field_and_store_nothing(
    settings: Settings, pictures: list[bytes], fields: dict[str, str], field: str
) -> None:
    with running_app(settings, FakeBackend()) as client:
        error = error_of(create(client, pictures, **fields), 400, "INVALID_PARAMETERS")
        assert error["details"]["field"] == field, error
        assert client.get(CHARACTERS_URL).json()["total_count"] == len(CHARACTERS)
    assert stored_files(settings) == []


def test_a_form_that_is_no_form_is_refused(settings: Settings) -> None:
    with running_app(settings, FakeBackend()) as client:
        error_of(client.post(CHARACTERS_URL, json={"name": "Hero"}), 400, "INVALID_PARAMETERS")


class FailingStore(FolderStore):
    """The data folder, whose ``fail_at``-th put fails (the S3 bucket going away mid-create)."""

    def __init__(self, root: Path, fail_at: int) -> None:
        super().__init__(root)
        self.puts, self.fail_at = 0, fail_at

    async def put_bytes(self, key: str, data: bytes) -> None:
        self.puts += 1
        if self.puts == self.fail_at:
            raise ObjectStoreError("gone")
        await super().put_bytes(key, data)


@pytest.mark.parametrize("fail_at", [1, 2])
def test_a_create_that_fails_midway_leaves_nothing(tmp_path: Path, fail_at: int) -> None:
    draft = CharacterDraft("hero", "Hero", "", (png((1, 1, 1)), png((2, 2, 2))))

    async def scenario(store: JobStore) -> None:
        book = CharacterBook(store, FailingStore(tmp_path / "data", fail_at))
        service = CharacterService(book, {}, tmp_path / "no-pictures")
        with pytest.raises(ObjectStoreError):
            await service.create(draft)
        assert (await service.list(10, 0)).total_count == 0
        assert [p for p in (tmp_path / "data").rglob("*") if p.is_file()] == []
        await service.create(draft)  # the store is back: the same create succeeds
        assert (await service.get("hero")).reference_image_urls[1].endswith("/hero/images/2")

    with_store(SqliteDatabase(tmp_path / "jobs.sqlite3"), scenario)


def record(parameters: GenerationParameters) -> JobRecord:
    return JobRecord("anim_req_1", MODEL_ID, "hero", "", None, parameters, "processing", 0, "queued", 1.0,
                     kind="character-animation")  # fmt: skip


def test_the_pipeline_input_of_a_character_picture() -> None:
    picture = np.full((48, 64, 3), 7, dtype=np.uint8)
    params = GenerationParameters(64, 48, 4, 8, 2, 7.5, 1)
    adapter = generation_request(record(msgspec.structs.replace(params, character_strength=0.3)), picture)
    assert adapter.image is None and adapter.ip_adapter_scale == 0.3
    assert adapter.ip_adapter_image is not None and np.array_equal(adapter.ip_adapter_image, picture)
    conditioned = generation_request(record(params), picture)
    assert conditioned.ip_adapter_image is None
    assert conditioned.image is not None and np.array_equal(conditioned.image, picture)


def first_picture(client: TestClient, character_id: str, size: tuple[int, int]) -> np.ndarray:
    url = client.get(f"{CHARACTERS_URL}/{character_id}").json()["reference_image_urls"][0]
    picture = Image.open(io.BytesIO(client.get(url).content)).convert("RGB")
    fitted = picture.resize(size, Image.Resampling.LANCZOS) if picture.size == size else None
    return np.asarray(fitted if fitted is not None else picture)


def test_an_ip_adapter_model_gets_the_picture_and_the_strength(tmp_path: Path) -> None:
    fake = FakeBackend()
    with running_app(settings_with(tmp_path, supports_ip_adapter=True), fake) as client:
        create(client, [png((200, 40, 40), (64, 48))], character_id="hero")
        body = {"character_id": "hero", "resolution": "64x48", "character_strength": 0.25}
        rid = client.post(ANIMATE, json=body).json()["request_id"]
        wait_for(client, rid, {"completed"})
        default = client.post(ANIMATE, json={"character_id": "robot", "resolution": "64x48"}).json()["request_id"]
        wait_for(client, default, {"completed"})
        for strength in (-0.1, 1.5, "strong"):
            error = error_of(client.post(ANIMATE, json={**body, "character_strength": strength}), 400,
                             "INVALID_PARAMETERS")  # fmt: skip
            assert error["details"]["field"] == "character_strength"
    job, builtin = fake.streams[0].job, fake.streams[1].job
    assert job.image is None and job.ip_adapter_scale == 0.25
    assert job.ip_adapter_image is not None and job.ip_adapter_image.shape == (48, 64, 3)
    assert np.abs(job.ip_adapter_image.astype(int) - (200, 40, 40)).max() <= 1
    assert builtin.ip_adapter_scale == 0.6 and builtin.ip_adapter_image is not None  # the default strength
    assert job.prompt.startswith("Hero")


def test_an_image_to_video_model_is_conditioned_on_the_picture(tmp_path: Path) -> None:
    fake = FakeBackend()
    settings = settings_with(tmp_path, supports_image_to_video=True, text_to_video_via_keyframe=True)
    card = msgspec.structs.replace(make_card(), type="image-to-video")
    card = msgspec.structs.replace(card, capabilities=msgspec.structs.replace(
        card.capabilities, supports_image_to_video=True, text_to_video_via_keyframe=True))  # fmt: skip
    write_model_card(card, settings.model_repository / MODEL_ID / "model_card.json")
    with running_app(settings, fake) as client:
        create(client, [png((10, 200, 10), (128, 48))], character_id="hero")
        rid = client.post(ANIMATE, json={"character_id": "hero", "resolution": "64x48"}).json()["request_id"]
        wait_for(client, rid, {"completed"})
    job = fake.streams[0].job
    assert job.ip_adapter_image is None
    assert job.image is not None and job.image.shape == (48, 64, 3)  # centre-cropped to the video's size
    assert np.abs(job.image.astype(int) - (10, 200, 10)).max() <= 1


def test_the_builtin_pictures_are_the_same_bytes_every_build(tmp_path: Path) -> None:
    first = write_builtin_pictures(tmp_path / "a")
    assert len(first) == 2 * len(CHARACTERS) and write_builtin_pictures(tmp_path / "a") == []  # nothing rewritten
    write_builtin_pictures(tmp_path / "b")
    assert [p.read_bytes() for p in first] == [(tmp_path / "b" / p.relative_to(tmp_path / "a")).read_bytes()
                                               for p in first]  # fmt: skip
    assert len({p.read_bytes() for p in first}) == len(first)  # every picture its own
