"""The character registry over the real stack (the session's API and tritonserver): a character with two pictures
animated on AnimateDiff and on Stable Video Diffusion (its picture the conditioning image), listed, shown with its
video count, deleted while its video stays playable; the built-ins' pictures load; bad uploads and unknown ids give
the documented errors and leave no file behind; the SDK (sync and async) and the CLI manage characters."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from benchmarks.stack import ApiProcess
from tests.support.jobs import decode_frames, download, wait_terminal
from visualizr.frontend.generation.intake.characters import CHARACTERS
from visualizr.settings import Settings
from visualizr_client import AsyncVisualizrClient, CharacterNotFoundError, VisualizrClient
from visualizr_client import _cli as cli

pytestmark = pytest.mark.integration

ANIMATE = "/api/v1/generate/character-animation"
# tiny and short: 64x64, 4 frames, 2 steps
SMALL = {"resolution": "64x64", "duration_seconds": 0.5, "num_inference_steps": 2, "seed": 3}


def png(colour: tuple[int, int, int], size: tuple[int, int] = (96, 64)) -> bytes:
    pixels = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    pixels[...] = colour
    pixels[:, : size[0] // 2, 2] = 255  # half of it another colour: a picture, not a flat field
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def create(api: ApiProcess, pictures: list[bytes], **fields: str) -> httpx.Response:
    files = [("images", (f"p{i}.png", data, "image/png")) for i, data in enumerate(pictures)]
    return httpx.post(f"{api.base_url}/api/v1/characters", data=fields, files=files, timeout=30)


def character_files(settings: Settings, character_id: str) -> list[Path]:
    folder = settings.data_dir / "characters" / character_id
    return sorted(folder.iterdir()) if folder.is_dir() else []


def animate(api: ApiProcess, character_id: str, model: str) -> dict:
    body = {"character_id": character_id, "model": model, **SMALL}
    response = httpx.post(f"{api.base_url}{ANIMATE}", json=body, timeout=30)
    assert response.status_code == 202, response.text
    final = wait_terminal(api, response.json()["request_id"])
    assert final["status"] == "completed", f"{final}\n{api.log_tail()}"
    return final


def test_a_character_animated_on_both_families_then_deleted(
    api: ApiProcess, stack_env: tuple[Settings, dict[str, str]]
) -> None:
    settings, _ = stack_env
    made = create(api, [png((220, 30, 30)), png((30, 220, 30))], name="Red knight", character_id="red-knight",
                  description="a knight in red armour")  # fmt: skip
    assert made.status_code == 201, made.text
    assert len(character_files(settings, "red-knight")) == 2

    animatediff = animate(api, "red-knight", "animatediff")
    svd = animate(api, "red-knight", "stable-video-diffusion")
    frames, _ = decode_frames(download(api, svd["result"]["video_url"]).content)
    assert frames[0].shape == (64, 64, 3)
    video_id = svd["result"]["video_url"].rsplit("/", 1)[1].removesuffix(".mp4")
    details = httpx.get(f"{api.base_url}/api/v1/assets/videos/{video_id}", timeout=10).json()
    assert "keyframe_url" not in details  # conditioned on the picture, not on a keyframe made from the prompt

    shown = httpx.get(f"{api.base_url}/api/v1/characters/red-knight", timeout=10).json()
    assert (shown["name"], shown["video_count"], len(shown["reference_image_urls"])) == ("Red knight", 2, 2)
    listed = httpx.get(f"{api.base_url}/api/v1/characters", params={"limit": 100}, timeout=10).json()
    assert {"red-knight", *CHARACTERS} <= {c["character_id"] for c in listed["characters"]}

    deleted = httpx.delete(f"{api.base_url}/api/v1/characters/red-knight", timeout=10)
    assert deleted.status_code == 200 and deleted.json()["status"] == "deleted"
    assert character_files(settings, "red-knight") == []
    for final in (animatediff, svd):
        assert download(api, final["result"]["video_url"]).status_code == 200  # the videos stay playable
    gone = httpx.post(f"{api.base_url}{ANIMATE}", json={"character_id": "red-knight"}, timeout=10)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "CHARACTER_NOT_FOUND"


def test_builtins_are_listed_with_pictures_that_load(api: ApiProcess) -> None:
    listed = httpx.get(f"{api.base_url}/api/v1/characters", timeout=10).json()["characters"]
    builtins = {c["character_id"]: c for c in listed if c["builtin"]}
    assert set(builtins) == set(CHARACTERS)
    for character in builtins.values():
        assert len(character["reference_image_urls"]) == 2
        for url in character["reference_image_urls"]:
            response = httpx.get(f"{api.base_url}{url}", timeout=10)
            assert response.status_code == 200 and response.headers["content-type"] == "image/png"
            assert Image.open(io.BytesIO(response.content)).size == (256, 256)
    refused = httpx.delete(f"{api.base_url}/api/v1/characters/assistant", timeout=10)
    assert refused.status_code == 400 and refused.json()["error"]["details"]["field"] == "character_id"


def test_bad_uploads_and_unknown_ids(api: ApiProcess, stack_env: tuple[Settings, dict[str, str]]) -> None:
    settings, _ = stack_env
    bad = create(api, [png((1, 2, 3)), b"not a picture"], name="Broken", character_id="broken")
    assert bad.status_code == 400, bad.text
    details = bad.json()["error"]["details"]
    assert (details["field"], details["index"]) == ("images", 1)
    assert character_files(settings, "broken") == []  # the first picture was good: nothing of it stored
    assert httpx.get(f"{api.base_url}/api/v1/characters/broken", timeout=10).status_code == 404
    for method, path in (("GET", "/api/v1/characters/nobody"), ("DELETE", "/api/v1/characters/nobody")):
        response = httpx.request(method, f"{api.base_url}{path}", timeout=10)
        assert response.status_code == 404 and response.json()["error"]["code"] == "CHARACTER_NOT_FOUND"


def test_the_sdk_and_cli_manage_characters(
    api: ApiProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with VisualizrClient(api.base_url) as client:
        made = client.create_character("Blue", [png((20, 20, 220)), png((20, 220, 220))], "a blue ghost", "blue")
        assert (made.character_id, made.builtin, len(made.reference_image_urls)) == ("blue", False, 2)
        assert client.get_character("blue").description == "a blue ghost"
        assert "blue" in {c.character_id for c in client.list_characters(limit=100).characters}
        assert client.delete_character("blue").status == "deleted"
        with pytest.raises(CharacterNotFoundError):
            client.get_character("blue")

    async def with_async_client() -> None:
        async with AsyncVisualizrClient(api.base_url) as client:
            made = await client.create_character("Async", [png((9, 9, 9))], character_id="async-one")
            assert (await client.get_character("async-one")).name == "Async" and made.video_count == 0
            assert (await client.list_characters(limit=1)).has_more
            assert (await client.delete_character("async-one")).character_id == "async-one"

    asyncio.run(with_async_client())

    picture = tmp_path / "cli.png"
    picture.write_bytes(png((200, 200, 20)))
    base = ["--url", api.base_url, "characters"]
    assert cli.main([*base, "create", "Yellow", str(picture), "--id", "yellow", "--description", "a lemon"]) == 0
    assert json.loads(capsys.readouterr().out)["reference_image_urls"] == ["/api/v1/characters/yellow/images/1"]
    assert cli.main([*base, "show", "yellow"]) == 0 and json.loads(capsys.readouterr().out)["name"] == "Yellow"
    assert cli.main([*base, "list", "--limit", "100"]) == 0
    assert "yellow" in {c["character_id"] for c in json.loads(capsys.readouterr().out)["characters"]}
    assert cli.main([*base, "delete", "yellow"]) == 0 and json.loads(capsys.readouterr().out)["status"] == "deleted"
    assert cli.main([*base, "show", "yellow"]) == 1 and "CHARACTER_NOT_FOUND" in capsys.readouterr().err
