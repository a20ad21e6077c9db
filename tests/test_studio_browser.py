"""The studio and the /schema docs in a real browser (Debian's Chromium through Playwright) against the real stack
(tritonserver + the API under uvicorn), with every request outside 127.0.0.1 blocked.

Screenshots (desktop and phone width) go to build/artifacts/studio/.
"""

from __future__ import annotations

import json
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


def submit(page: Page) -> str:
    """Click Generate; the request id the API accepted."""
    with page.expect_response(lambda r: "/api/v1/generate/" in r.url and r.request.method == "POST") as accepted:
        page.click("#submit")
    return accepted.value.json()["request_id"]


def wait_in_gallery(page: Page, request_id: str) -> Any:
    """The job, once it completed: it leaves the queue panel and is the gallery's first card (no player of its
    own in the queue); that gallery card."""
    video_id = request_id.replace("_req_", "_", 1)
    expect(page.locator(f'.job[data-request-id="{request_id}"]')).to_have_count(0, timeout=JOB_TIMEOUT_MS)
    first = page.locator("#gallery-grid .card").first
    expect(first).to_have_attribute("data-video-id", video_id)
    expect(page.locator("#job-list video")).to_have_count(0)
    return first


def make_small_video(page: Page, prompt: str) -> Any:
    """Submit a text-to-video job from the form; its gallery card once it completed."""
    page.fill("#f-prompt", prompt)
    fill_small(page)
    return wait_in_gallery(page, submit(page))


def play_first(page: Page) -> list[Any]:
    """Open the gallery's first video in the player: [readyState, error, videoWidth] once it can play."""
    page.locator("#gallery-grid .card .thumb").first.click()
    expect(page.locator("#player")).to_be_visible()
    playable = wait_playable(page, "#player-video")
    page.click("#player [data-close]")
    return playable


def wait_playable(page: Page, selector: str) -> list[Any]:
    page.wait_for_function(
        f"() => {{ const v = document.querySelector({selector!r}); return v && v.readyState === 4 }}",
        timeout=30_000,
    )
    return page.evaluate(
        f"() => {{ const v = document.querySelector({selector!r}); return [v.readyState, v.error, v.videoWidth] }}"
    )


def watch_previews(page: Page) -> None:
    """From now on, the queue's live-preview pictures: their sources (``window.previewSources``) and how many were
    decoded and shown (``window.previewsShown``)."""
    page.evaluate(
        """() => {
            window.previewSources = new Set();
            window.previewsShown = 0;
            document.getElementById("job-list").addEventListener("load", (event) => {
                if (event.target.classList.contains("job-preview") && event.target.naturalWidth > 0)
                    window.previewsShown += 1;
            }, true);
            new MutationObserver(() => document.querySelectorAll(".job-preview").forEach(
                (img) => img.src && window.previewSources.add(img.src))
            ).observe(document.getElementById("job-list"), { subtree: true, attributes: true, childList: true });
        }"""
    )


def assert_previews_change(page: Page) -> None:
    """A job's preview picture changed while it ran (two pictures at least), and was shown."""
    page.wait_for_function("() => window.previewSources.size >= 2", timeout=JOB_TIMEOUT_MS)
    assert all(src.startswith("data:image/jpeg;base64,") for src in page.evaluate("[...window.previewSources]"))
    assert page.evaluate("window.previewsShown") >= 1  # decoded and shown (the page's CSP allows data: images)


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
        request_id = submit(page)
        expect(page.locator(f'.job[data-request-id="{request_id}"] .job-title')).to_have_text("robot · waving")
        video_id = wait_in_gallery(page, request_id).get_attribute("data-video-id") or ""
        assert video_id.startswith("anim_")
        video = f"{api.base_url}/api/v1/assets/videos/{video_id}"
        assert httpx.get(video, timeout=30).json()["style"] == "anime"
        screenshot(page, "studio-character")
        assert_self_contained(traffic, api)


def test_make_watch_cancel_upload_and_delete(api: ApiProcess, browser: Browser) -> None:
    with guarded_page(browser) as (page, traffic):
        open_studio(page, api)
        # 1. a prompt, live progress, then the video in the gallery, where it plays
        make_small_video(page, "studio: a red balloon over a lake")
        ready, error, width = play_first(page)
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
        page.click(f'.job[data-request-id="{request_id}"] .job-dismiss')  # a stopped job stays until dismissed
        expect(page.locator(f'.job[data-request-id="{request_id}"]')).to_have_count(0)

        # 3. image to video: an image dropped on the form, previewed, animated
        page.click("#tab-image")
        drop_image(page, gradient_png())
        expect(page.locator("#drop-preview")).to_be_visible()
        page.wait_for_function("() => document.getElementById('drop-preview').naturalWidth === 64")
        page.fill("#f-motion_prompt", "studio: gentle swaying")
        fill_small(page)
        page.fill("#f-duration_seconds", "1")
        page.fill("#f-fps", "4")
        wait_in_gallery(page, submit(page))

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


STUDIO_VIEWPORT = {"width": 1400, "height": 900}  # where the issues were seen


def in_view(page: Page, selector: str) -> bool:
    return page.locator(selector).evaluate(
        "(e) => { const r = e.getBoundingClientRect(); return r.top >= 0 && r.bottom <= innerHeight; }"
    )


def test_a_new_job_shows_in_view_with_a_live_preview_then_moves_to_the_gallery(
    api: ApiProcess, browser: Browser
) -> None:
    with guarded_page(browser, STUDIO_VIEWPORT) as (page, traffic):
        # while the first fetches run the form says it is loading, not that no model exists
        held: list[Any] = []
        page.route("**/api/v1/models", lambda route: held.append(route))
        page.goto(f"{api.base_url}/")
        for _ in range(200):  # bounded: the page asks for the models within seconds
            if held:
                break
            page.wait_for_timeout(50)
        assert held
        expect(page.locator("#model-hint")).to_have_text("Loading the models…")
        for route in held:
            route.continue_()
        page.unroute("**/api/v1/models")
        page.wait_for_selector("#f-model option", state="attached")
        expect(page.locator("#model-hint")).not_to_contain_text("No model")

        watch_previews(page)
        page.fill("#f-prompt", "studio: a preview forming")
        # previews come at most twice a second: > 1 s of denoising even on a quiet machine (64 px, 8 frames, 40
        # steps: 0.8 s for the whole job here, and a CI run saw a single preview); 256 px, 16 frames: 3.8 s
        fill_small(page, frames=16)
        for name, value in (("width", 256), ("height", 256), ("num_inference_steps", 40)):
            page.fill(f"#f-{name}", str(value))
        page.evaluate("() => window.scrollTo(0, document.body.scrollHeight)")  # the Generate button, at the bottom
        request_id = submit(page)
        card = f'.job[data-request-id="{request_id}"]'
        expect(page.locator(card)).to_have_count(1)
        assert in_view(page, card)  # shown where the user looks, not in a panel scrolled away
        assert_previews_change(page)
        screenshot(page, "studio-live-preview", full_page=False)
        wait_in_gallery(page, request_id)
        expect(page.locator("#jobs-empty")).to_be_visible()
        gap = page.evaluate(
            """() => document.querySelector(".gallery").getBoundingClientRect().top
                     - document.querySelector(".jobs").getBoundingClientRect().bottom"""
        )
        assert 0 <= gap <= 20, gap  # the grid's gap: no blank space between queue and gallery
        screenshot(page, "studio-after-preview")
        assert_self_contained(traffic, api)


def test_the_queue_position_is_the_apis(api: ApiProcess, browser: Browser) -> None:
    def answer(socket: Any) -> None:  # the server says: queued, position 2 (1-based, as the API counts)
        def on_message(text: Any) -> None:
            message = json.loads(text)
            if message["type"] != "subscribe":  # the page's {"type": "previews"}
                return
            progress = {"type": "progress", "request_id": message["request_id"], "status": "queued", "progress": 0}
            socket.send(
                json.dumps(
                    {**progress, "current_step": "queued", "queue_position": 2, "estimated_remaining_seconds": 30}
                )
            )

        socket.on_message(on_message)

    with guarded_page(browser, STUDIO_VIEWPORT) as (page, _):
        page.route_web_socket(re.compile(r"/api/v1/ws/generation"), answer)
        open_studio(page, api)
        page.fill("#f-prompt", "studio: queued")
        fill_small(page)
        request_id = submit(page)
        detail = page.locator(f'.job[data-request-id="{request_id}"] .job-detail')
        expect(detail).to_have_text("Waiting in the queue · position 2 · 0 % · about 30 s left")


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


def test_the_characters_panel_end_to_end(api: ApiProcess, browser: Browser) -> None:
    with guarded_page(browser) as (page, traffic):
        open_studio(page, api)
        # the built-ins, with the pictures the export drew
        robot = page.locator('#character-list [data-character-id="robot"]')
        expect(robot).to_contain_text("built in")
        expect(robot.locator(".character-delete")).to_have_count(0)
        page.wait_for_function(
            """() => [...document.querySelectorAll('[data-character-id="robot"] img')]
                .filter((img) => img.naturalWidth === 256).length === 2""",
            timeout=30_000,
        )
        # a refused create says why and adds nothing
        page.fill("#c-name", "Studio hero")
        page.click("#character-create")
        expect(page.locator("#character-error")).to_contain_text("A setting is not accepted")
        # a character with two pictures: listed, and offered by the character form's picker
        page.fill("#c-character_id", "studio-hero")
        page.fill("#c-description", "a green dragon")
        page.set_input_files(
            "#c-images",
            [
                {"name": "a.png", "mimeType": "image/png", "buffer": gradient_png()},
                {"name": "b.png", "mimeType": "image/png", "buffer": gradient_png(invert=True)},
            ],
        )
        page.click("#character-create")
        hero = page.locator('#character-list [data-character-id="studio-hero"]')
        expect(hero).to_contain_text("Studio hero (studio-hero)")
        expect(page.locator("#character-error")).to_be_hidden()
        page.wait_for_function(
            """() => [...document.querySelectorAll('[data-character-id="studio-hero"] img')]
                .filter((img) => img.naturalWidth > 0).length === 2""",
            timeout=30_000,
        )
        # animated from the Character tab
        page.click("#tab-character")
        page.select_option("#f-character_id", "studio-hero")
        expect(page.locator("#character-hint")).to_have_text("a green dragon")
        fill_small(page)
        page.fill("#f-duration_seconds", "0.5")
        wait_in_gallery(page, submit(page))
        expect(hero).to_contain_text("1 video")
        # deleted: gone from the panel and the picker; its video stays in the gallery
        hero.locator(".character-delete").click()
        expect(hero).to_have_count(0)
        expect(page.locator('#f-character_id option[value="studio-hero"]')).to_have_count(0)
        assert httpx.get(f"{api.base_url}/api/v1/characters/studio-hero", timeout=30).status_code == 404
        screenshot(page, "studio-characters")
        assert_self_contained(traffic, api)


def test_ltx_videos_from_text_and_a_picture_by_the_form_of_its_card(api: ApiProcess, browser: Browser) -> None:
    """An LTX job from the form, its live preview changing while it runs (512 px, 25 frames: 4 latent frames, a
    second or more of denoising on the tiny transformer), then in the gallery; then one from two pictures."""
    with guarded_page(browser, DESKTOP) as (page, _):
        open_studio(page, api)
        page.select_option("#f-model", "ltx-video")
        page.fill("#f-prompt", "studio: a paper boat, LTX")
        fill_small(page, frames=25)
        page.fill("#f-fps", "4")
        page.click("#submit")  # the form checks the card's ranges: LTX is conditioned on 8 to 30 fps
        expect(page.locator("#form-error")).to_contain_text("fps must be between 8 and 30")
        for name, value in {"fps": 8, "width": 512, "height": 512, "num_inference_steps": 50}.items():
            page.fill(f"#f-{name}", str(value))
        watch_previews(page)
        request_id = submit(page)
        assert_previews_change(page)
        video_id = wait_in_gallery(page, request_id).get_attribute("data-video-id")
        assert play_first(page)[2] == 512
        assert httpx.get(f"{api.base_url}/api/v1/assets/videos/{video_id}", timeout=30).json()["model"] == "ltx-video"
        page.click("#tab-image")  # its card takes a picture too: offered for one, and the picture is the first frame
        models = page.locator("#f-model option").evaluate_all("options => options.map((o) => o.value)")
        assert "ltx-video" in models
        page.select_option("#f-model", "stable-video-diffusion")  # its card takes no end image: no such input
        expect(page.locator("#f-end_image")).to_have_count(0)
        page.select_option("#f-model", "ltx-video")  # LTX's does (keyframes): the video ends at the second picture
        drop_image(page, gradient_png())
        end = {"name": "end.png", "mimeType": "image/png", "buffer": gradient_png()}
        page.set_input_files("#f-end_image", files=[end])
        page.fill("#f-motion_prompt", "studio: a paper boat from a picture, LTX")
        fill_small(page)
        page.fill("#f-duration_seconds", "0.5")
        page.fill("#f-fps", "8")
        video_id = wait_in_gallery(page, submit(page)).get_attribute("data-video-id")
        asset = httpx.get(f"{api.base_url}/api/v1/assets/videos/{video_id}", timeout=30).json()
        assert asset["model"] == "ltx-video" and asset["prompt"] == "studio: a paper boat from a picture, LTX"
        assert asset["parameters"]["end_image"] is True
