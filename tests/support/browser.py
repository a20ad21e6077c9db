"""Browser tests: Playwright driving Debian's Chromium (`make browser` installs it; Playwright's own browser
download is never used), with every request that does not go to 127.0.0.1 blocked and recorded."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, Route, WebSocketRoute

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "build" / "artifacts" / "studio"
DESKTOP = {"width": 1440, "height": 1000}
PHONE = {"width": 390, "height": 844}


def launch(playwright: Playwright) -> Browser:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make browser` (part of `make test`) installs Debian's chromium")
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def is_local(url: str) -> bool:
    return urlsplit(url).hostname == "127.0.0.1"


@dataclass
class Traffic:
    """Every URL the page asked for (HTTP and WebSocket), the external ones (blocked), and page errors."""

    requests: list[str] = field(default_factory=list)
    websockets: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def all_urls(self) -> list[str]:
        return self.requests + self.websockets + self.external


@contextmanager
def guarded_page(browser: Browser, viewport: dict[str, int] = DESKTOP) -> Iterator[tuple[Page, Traffic]]:
    """A page in a fresh context (empty storage) whose requests outside 127.0.0.1 are aborted and recorded."""
    traffic = Traffic()
    context: BrowserContext = browser.new_context(viewport=viewport, accept_downloads=True)

    def on_request(route: Route) -> None:
        url = route.request.url
        traffic.requests.append(url)
        if is_local(url):
            route.continue_()
        else:
            traffic.external.append(url)
            route.abort()

    def on_external_socket(socket: WebSocketRoute) -> None:
        traffic.external.append(socket.url)
        socket.close()

    context.route("**/*", on_request)
    context.route_web_socket(lambda url: not is_local(url), on_external_socket)
    page = context.new_page()
    page.on("websocket", lambda socket: traffic.websockets.append(socket.url))
    page.on("pageerror", lambda error: traffic.errors.append(str(error)))
    page.on("console", lambda message: message.type == "error" and traffic.errors.append(message.text))
    try:
        yield page, traffic
    finally:
        context.close()


def screenshot(page: Page, name: str, full_page: bool = True) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


# WCAG 2 contrast of every visible text node against the first opaque background behind it (disabled controls
# are exempt, as WCAG has it).
_CONTRAST_JS = """(minimum) => {
    const parse = (c) => {
        const m = c.match(/rgba?\\(([^)]+)\\)/);
        if (!m) return null;
        const [r, g, b, a = 1] = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
        return { r, g, b, a };
    };
    const channel = (v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
    const luminance = (c) => 0.2126 * channel(c.r) + 0.7152 * channel(c.g) + 0.0722 * channel(c.b);
    const background = (el) => {
        for (let e = el; e; e = e.parentElement) {
            const c = parse(getComputedStyle(e).backgroundColor);
            if (c && c.a > 0.5) return c;
        }
        return { r: 255, g: 255, b: 255 };
    };
    const low = [];
    for (const el of document.querySelectorAll("body *")) {
        const text = [...el.childNodes].some((n) => n.nodeType === Node.TEXT_NODE && n.textContent.trim());
        if (!text || el.closest(":disabled") || !el.getClientRects().length) continue;
        const [a, b] = [luminance(parse(getComputedStyle(el).color)), luminance(background(el))];
        const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
        const what = `${el.tagName}.${el.className} ${el.textContent.trim().slice(0, 30)}`;
        if (ratio < minimum) low.push(`${what}: ${ratio.toFixed(2)}`);
    }
    return low;
}"""


def low_contrast(page: Page, minimum: float = 4.5) -> list[str]:
    """Visible text whose contrast with its background is below ``minimum`` (WCAG AA: 4.5)."""
    return page.evaluate(_CONTRAST_JS, minimum)
