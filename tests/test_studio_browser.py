"""The studio and the /schema docs in a real browser (Debian's Chromium through Playwright) against the real stack
(tritonserver + the API under uvicorn), with every request outside 127.0.0.1 blocked.

Screenshots (desktop and phone width) go to build/artifacts/studio/.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from benchmarks.stack import ApiProcess, free_port, start_api
from tests.support.browser import DESKTOP, PHONE, Traffic, guarded_page, launch, low_contrast, screenshot
from tests.support.images import gradient_png
from visualizr.launcher import TritonServer
from visualizr.settings import Settings

pytestmark = pytest.mark.integration

KEY = "studio-browser-key-42"
JOB_TIMEOUT_MS = 120_000
SMALL_FORM = {"width": 64, "height": 64, "num_inference_steps": 2}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = launch(playwright)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def keyed_api(
    triton: TritonServer, stack_env: tuple[Settings, dict[str, str]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiProcess]:
    """A second API process on the same tritonserver, with VISUALIZR_API_KEYS set."""
    env = {
        **stack_env[1],
        "VISUALIZR_PORT": str(free_port()),
        "VISUALIZR_DATA_DIR": str(tmp_path_factory.mktemp("visualizr-studio-keyed")),
        "VISUALIZR_API_KEYS": KEY,
    }
    process = start_api(Settings.from_env({**os.environ, **env}), env)
    try:
        yield process
    finally:
        process.stop()


def open_studio(page: Page, api: ApiProcess) -> None:
    page.goto(f"{api.base_url}/")
    page.wait_for_selector("#f-model option", state="attached")


def fill_small(page: Page, frames: int = 4) -> None:
    """The fastest job the demo model makes: 64x64, 2 steps, a few frames."""
    page.locator("#advanced").evaluate("details => (details.open = true)")
    for name, value in SMALL_FORM.items():
        page.fill(f"#f-{name}", str(value))
    if page.locator("#f-num_frames").count():
        page.fill("#f-num_frames", str(frames))
        page.fill("#f-fps", "4")


def wait_job(page: Page, index: int, state: str) -> Any:
    """The index-th job card (newest first) once it reaches ``state``."""
    card = page.locator(".job").nth(index)
    expect(card).to_have_attribute("data-state", state, timeout=JOB_TIMEOUT_MS)
    return card


def make_small_video(page: Page, prompt: str) -> Any:
    """Submit a text-to-video job from the form; its card once the progress reached 100 % and the job completed."""
    page.fill("#f-prompt", prompt)
    fill_small(page)
    page.click("#submit")
    card = wait_job(page, 0, "completed")
    expect(card.locator("progress")).to_have_attribute("value", "100")
    expect(card.locator(".job-detail")).to_contain_text("100 %")
    return card


def wait_playable(page: Page, selector: str) -> list[Any]:
    page.wait_for_function(
        f"() => {{ const v = document.querySelector({selector!r}); return v && v.readyState === 4 }}",
        timeout=30_000,
    )
    return page.evaluate(
        f"() => {{ const v = document.querySelector({selector!r}); return [v.readyState, v.error, v.videoWidth] }}"
    )


def assert_self_contained(traffic: Traffic, api: ApiProcess) -> None:
    assert traffic.external == [], traffic.external
    for url in traffic.all_urls():
        assert url.startswith((api.base_url, api.base_url.replace("http", "ws", 1))), url


def sticking_out(page: Page) -> list[str]:
    """Boxes wider than the screen, or sticking out of their panel (a phone layout must have none)."""
    return page.evaluate(
        """() => {
            const width = document.documentElement.clientWidth;
            return [...document.querySelectorAll(".panel, .panel *")].filter((e) => {
                const box = e.getBoundingClientRect();
                const panel = e.closest(".panel").getBoundingClientRect();
                return box.width > 0 && (box.right > width + 0.5 || box.right > panel.right + 0.5);
            }).map((e) => e.className || e.tagName);
        }"""
    )


def drop_image(page: Page, png: bytes) -> None:
    """Drag-and-drop a PNG onto the drop zone, as a file dragged from the desktop arrives."""
    page.locator("#drop").evaluate(
        """(zone, bytes) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([new Uint8Array(bytes)], "gradient.png", { type: "image/png" }));
            for (const type of ["dragenter", "dragover", "drop"]) {
                zone.dispatchEvent(new DragEvent(type, { dataTransfer: transfer, bubbles: true, cancelable: true }));
            }
        }""",
        list(png),
    )


# ------------------------------------------------------------------------------------------------ tests


@pytest.mark.parametrize(("name", "viewport"), [("desktop", DESKTOP), ("phone", PHONE)])
def test_first_paint_needs_nothing_outside_the_service(
    api: ApiProcess, browser: Browser, name: str, viewport: dict[str, int]
) -> None:
    with guarded_page(browser, viewport) as (page, traffic):
        open_studio(page, api)
        expect(page.locator("#health")).to_have_text(re.compile("Server (healthy|degraded)"))
        page.wait_for_load_state("networkidle")
        assert_self_contained(traffic, api)
        # the docs' policy stops ReDoc's hard-coded footer logo in the page, before any network request
        assert [e for e in traffic.errors if "Content Security Policy" not in e] == []
        # every visible control has a label a screen reader can read
        unlabelled = page.evaluate(
            """() => [...document.querySelectorAll("input, select, textarea, button")]
                .filter((c) => c.offsetParent !== null)
                .filter((c) => !(c.labels && c.labels.length) && !c.getAttribute("aria-label")
                               && !c.getAttribute("aria-labelledby") && !c.textContent.trim())
                .map((c) => c.id || c.outerHTML.slice(0, 80))"""
        )
        assert unlabelled == []
        assert low_contrast(page) == []
        if name == "phone":
            assert sticking_out(page) == []
        screenshot(page, f"studio-{name}")


def test_errors_then_a_character_animation(api: ApiProcess, browser: Browser) -> None:
    with guarded_page(browser) as (page, traffic):
        open_studio(page, api)
        # the style picker offers what the model's details list
        card = httpx.get(f"{api.base_url}/api/v1/models/animatediff", timeout=30).json()
        options = page.locator("#f-style option").evaluate_all("options => options.map((o) => o.value)")
        assert options == ["", *card["capabilities"]["styles"]] and "cinematic" in options
        page.click("#submit")  # no prompt
        expect(page.locator("#form-error")).to_contain_text("prompt")
        expect(page.locator("#f-prompt")).to_have_attribute("aria-invalid", "true")
        page.fill("#f-prompt", "a lake")
        fill_small(page)
        page.fill("#f-width", "100")  # not a multiple of 8
        page.click("#submit")
        expect(page.locator("#form-error")).to_contain_text("A setting is not accepted")
        expect(page.locator("#f-width")).to_have_attribute("aria-invalid", "true")
        expect(page.locator("#f-width")).to_be_focused()
        # tabs follow the keyboard (arrow keys), and each kind shows its own fields
        page.focus("#tab-text")
        page.keyboard.press("ArrowRight")
        expect(page.locator("#tab-image")).to_have_attribute("aria-selected", "true")
        expect(page.locator("#drop")).to_be_visible()
        page.keyboard.press("ArrowRight")
        expect(page.locator("#f-character_id")).to_be_visible()
        expect(page.locator("#f-prompt")).to_be_hidden()
        # a character animation, its words from the catalogue's suggestions
        page.select_option("#f-character_id", "robot")
        expect(page.locator("#character-hint")).to_contain_text("robot")
        page.fill("#f-action", "waving")
        expect(page.locator("#style-label")).to_have_text("Animation style")
        page.select_option("#f-style", "anime")
        fill_small(page)
        page.fill("#f-duration_seconds", "0.5")
        page.click("#submit")
        card = wait_job(page, 0, "completed")
        expect(card.locator(".job-title")).to_have_text("robot · waving")
        request_id = card.get_attribute("data-request-id") or ""
        assert request_id.startswith("anim_req_")
        video = f"{api.base_url}/api/v1/assets/videos/anim_{request_id.removeprefix('anim_req_')}"
        assert httpx.get(video, timeout=30).json()["style"] == "anime"
        screenshot(page, "studio-character")
        assert_self_contained(traffic, api)


def test_make_watch_cancel_upload_and_delete(api: ApiProcess, browser: Browser) -> None:
    with guarded_page(browser) as (page, traffic):
        open_studio(page, api)
        # 1. a prompt, live progress to 100 %, and the video plays in place
        make_small_video(page, "studio: a red balloon over a lake")
        ready, error, width = wait_playable(page, ".job video")
        assert (ready, error, width) == (4, None, 64)
        assert any("/api/v1/ws/generation" in url for url in traffic.websockets)

        # 2. a longer second job, cancelled from its card
        page.fill("#f-prompt", "studio: to be cancelled")
        page.fill("#f-num_inference_steps", "50")
        page.fill("#f-num_frames", "16")
        page.click("#submit")
        running = page.locator(".job").nth(0)
        expect(running.locator(".job-title")).to_have_text("studio: to be cancelled")
        running.locator(".job-cancel").click()
        wait_job(page, 0, "cancelled")
        request_id = running.get_attribute("data-request-id")
        status = httpx.get(f"{api.base_url}/api/v1/generate/status/{request_id}", timeout=30).json()
        assert status["status"] == "cancelled"

        # 3. image to video: an image dropped on the form, previewed, animated
        page.click("#tab-image")
        drop_image(page, gradient_png())
        expect(page.locator("#drop-preview")).to_be_visible()
        page.wait_for_function("() => document.getElementById('drop-preview').naturalWidth === 64")
        page.fill("#f-motion_prompt", "studio: gentle swaying")
        fill_small(page)
        page.fill("#f-duration_seconds", "1")
        page.fill("#f-fps", "4")
        page.click("#submit")
        wait_job(page, 0, "completed")

        # 4. the gallery (newest first; other tests' videos may be there too): hover preview, player, re-run, delete
        first = page.locator("#gallery-grid .card").first
        expect(first.locator(".card-prompt")).to_have_text("studio: gentle swaying", timeout=30_000)
        expect(page.locator("#gallery-grid .card", has_text="studio: a red balloon")).to_have_count(1)
        total = int(page.inner_text("#page-info").split(" of ")[1])
        video_id = first.get_attribute("data-video-id")
        first.locator(".thumb").hover()
        expect(first.locator("img")).to_have_attribute("src", re.compile(r"_preview\.gif$"))
        first.locator(".thumb").click()
        expect(page.locator("#player")).to_be_visible()
        assert wait_playable(page, "#player-video")[:2] == [4, None]
        expect(page.locator("#player-details")).to_contain_text("studio: gentle swaying")
        screenshot(page, "studio-player", full_page=False)
        page.click("#player-rerun")
        expect(page.locator("#tab-image")).to_have_attribute("aria-selected", "true")
        expect(page.locator("#f-motion_prompt")).to_have_value("studio: gentle swaying")
        screenshot(page, "studio-desktop-after-jobs")

        first.locator(".thumb").click()
        page.click("#player-delete")
        page.click("#confirm-delete")
        expect(page.locator(f'#gallery-grid [data-video-id="{video_id}"]')).to_have_count(0)
        expect(page.locator("#page-info")).to_contain_text(f" of {total - 1}")
        gone = httpx.get(f"{api.base_url}/api/v1/assets/videos/{video_id}", timeout=30)
        assert gone.status_code == 404

        page.set_viewport_size(PHONE)  # the same page, jobs and gallery on a phone
        assert sticking_out(page) == []
        assert low_contrast(page) == []  # job states, chips, cards and their text too
        screenshot(page, "studio-phone-after-jobs")
        assert_self_contained(traffic, api)
        # the docs' policy stops ReDoc's hard-coded footer logo in the page, before any network request
        assert [e for e in traffic.errors if "Content Security Policy" not in e] == []


def test_with_a_silent_websocket_the_queue_polls(api: ApiProcess, browser: Browser) -> None:
    with guarded_page(browser) as (page, traffic):
        # the socket opens but nothing ever arrives (a proxy holding frames): the cards poll the status instead
        page.route_web_socket(re.compile(r"/api/v1/ws/generation"), lambda socket: None)
        open_studio(page, api)
        make_small_video(page, "studio: no websocket")
        assert any("/api/v1/generate/status/" in url for url in traffic.requests)
        assert_self_contained(traffic, api)


def test_with_an_api_key_no_url_carries_the_key(keyed_api: ApiProcess, browser: Browser) -> None:
    with guarded_page(browser) as (page, traffic):
        page.goto(f"{keyed_api.base_url}/")
        expect(page.locator("#key-panel")).to_be_visible()  # the models call answered 401
        expect(page.locator("#key-status")).to_contain_text("API key")
        page.fill("#key-input", "wrong-key")
        page.click("#key-form button[type=submit]")
        expect(page.locator("#key-status")).to_contain_text("not accepted")
        page.fill("#key-input", KEY)
        page.click("#key-form button[type=submit]")
        expect(page.locator("#key-panel")).to_be_hidden()
        page.wait_for_selector("#f-model option", state="attached")

        make_small_video(page, "studio: keyed")
        assert wait_playable(page, ".job video")[:2] == [4, None]
        page.locator("#gallery-grid .card .thumb").first.click()
        assert wait_playable(page, "#player-video")[:2] == [4, None]
        assert "ticket=" in (page.get_attribute("#player-download", "href") or "")

        assert traffic.websockets and all("ticket=" in url for url in traffic.websockets)
        assert any("/assets/video/" in url and "ticket=" in url for url in traffic.requests)
        assert not [url for url in traffic.all_urls() if KEY in url or "api_key" in url]
        assert page.evaluate("() => localStorage.getItem('visualizr.apiKey')") == KEY
        assert_self_contained(traffic, keyed_api)


@pytest.mark.parametrize(
    ("path", "ready"),
    [
        ("/schema", ".swagger-ui .info .title"),
        ("/schema/swagger", ".swagger-ui .opblock"),
        ("/schema/redoc", "h1"),
        ("/schema/rapidoc", "rapi-doc"),
        ("/schema/elements", "elements-api h1"),
    ],
)
def test_schema_viewers_render_offline(api: ApiProcess, browser: Browser, path: str, ready: str) -> None:
    with guarded_page(browser) as (page, traffic):
        page.goto(f"{api.base_url}{path}")
        page.wait_for_selector(ready, timeout=30_000)
        expect(page.get_by_text("Visualizr API").first).to_be_visible(timeout=30_000)
        expect(page.get_by_text(re.compile("GenerateVideo|Generate Video", re.I)).first).to_be_attached()
        assert_self_contained(traffic, api)
        # the docs' policy stops hard-coded external loads (ReDoc's footer logo, RapiDoc's web fonts) inside the
        # page, before any network request; Chrome logs each refusal and the font's failure
        blocked = ("Content Security Policy", "A network error occurred.")
        assert [e for e in traffic.errors if not e.startswith(blocked) and blocked[0] not in e] == []


def test_an_ltx_video_from_the_form_that_follows_its_card(api: ApiProcess, browser: Browser) -> None:
    with guarded_page(browser, DESKTOP) as (page, _):
        open_studio(page, api)
        page.select_option("#f-model", "ltx-video")
        page.fill("#f-prompt", "studio: a paper boat, LTX")
        fill_small(page)
        page.fill("#f-fps", "4")
        page.click("#submit")  # the form checks the card's ranges: LTX is conditioned on 8 to 30 fps
        expect(page.locator("#form-error")).to_contain_text("fps must be between 8 and 30")
        page.fill("#f-fps", "8")
        page.click("#submit")
        card = wait_job(page, 0, "completed")
        assert wait_playable(page, ".job video")[2] == 64
        status = httpx.get(f"{api.base_url}/api/v1/generate/status/{card.get_attribute('data-request-id')}", timeout=30)
        assert status.json()["status"] == "completed"
        page.click("#tab-image")  # a text-to-video card: not offered for a picture
        models = page.locator("#f-model option").evaluate_all("options => options.map((o) => o.value)")
        assert "ltx-video" not in models and models
