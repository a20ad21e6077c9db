"""The studio's HTTP side without a browser: the page and its files, tickets (signing and the key check that
accepts them), CORS from VISUALIZR_CORS_ORIGINS, ROUTE_NOT_FOUND, and the page's payload budget."""

from __future__ import annotations

import io
import json
import re
import tarfile
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import pytest
from litestar.exceptions import WebSocketDisconnect
from litestar.testing import TestClient

from tests.support.fakes import FakeBackend, make_settings
from tests.support.system_fakes import FakeGpu, FakeModelControl
from visualizr.frontend.app import create_app
from visualizr.frontend.generation.intake.characters import CHARACTERS
from visualizr.frontend.generation.intake.options import client_options
from visualizr.frontend.security import WS_UNAUTHORIZED_CLOSE_CODE
from visualizr.frontend.studio import vendor
from visualizr.frontend.studio.controllers import STATIC_DIR, StudioPage
from visualizr.frontend.studio.tickets import TicketBook
from visualizr.frontend.studio.vendor import PACKAGES
from visualizr.settings import Settings

KEY = "studio-key-0123456789"
WS = "/api/v1/ws/generation"
ASSET = "/assets/video/video_0123abcd.mp4"
ORIGIN = "https://app.example.test"
STATIC_BUDGET_BYTES = 64 * 1024  # the studio's own files, uncompressed: page + JS + CSS + icon


def bearer(key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def app_client(tmp_path: Path, **overrides: object) -> TestClient:
    settings = make_settings(tmp_path, **overrides)
    app = create_app(settings, FakeBackend(), model_control=FakeModelControl(), gpu=FakeGpu())
    return TestClient(app, timeout=10)


@pytest.fixture
def keyed(tmp_path: Path) -> Iterator[TestClient]:
    with app_client(tmp_path, api_keys=(KEY,)) as client:
        yield client


# --------------------------------------------------------------------------------------------- tickets


def test_ticket_is_bound_to_its_path_and_expires() -> None:
    clock = [1000.0]
    book = TicketBook(ttl_seconds=60, now=lambda: clock[0])
    ticket = book.mint(ASSET)
    assert book.verify(ticket, ASSET)
    assert not book.verify(ticket, ASSET.replace(".mp4", "_thumb.jpg"))
    assert not book.verify(ticket, WS)
    assert not TicketBook(now=lambda: clock[0]).verify(ticket, ASSET)  # another secret (restart, replica)
    expiry, encoded, tag = ticket.split(".")
    assert not book.verify(f"{int(expiry) + 3600}.{encoded}.{tag}", ASSET)  # a longer life is not signed
    assert not book.verify(f"{expiry}.{encoded}.{tag[:-2]}AA", ASSET)
    for junk in ("", "x", "1.2", "..", "a.b.c", ticket + "x"):
        assert not book.verify(junk, ASSET)
    clock[0] += 59
    assert book.verify(ticket, ASSET)
    clock[0] += 1
    assert not book.verify(ticket, ASSET)


def test_tickets_need_the_key_and_are_only_issued_for_browser_urls(keyed: TestClient) -> None:
    assert keyed.post("/studio/tickets", json={"paths": [ASSET]}).status_code == 401
    for path in ("/api/v1/models", "/assets/video/../jobs.sqlite3", "/assets/video/notes.txt"):
        response = keyed.post("/studio/tickets", json={"paths": [path]}, headers=bearer())
        assert response.status_code == 400 and response.json()["error"]["code"] == "INVALID_PARAMETERS", path
    too_many = keyed.post("/studio/tickets", json={"paths": [ASSET] * 301}, headers=bearer())
    assert too_many.status_code == 400
    assert keyed.post("/studio/tickets", json={"files": [ASSET]}, headers=bearer()).status_code == 400
    body = keyed.post("/studio/tickets", json={"paths": [ASSET, WS]}, headers=bearer()).json()
    assert set(body["tickets"]) == {ASSET, WS} and body["expires_in_seconds"] == 600
    assert KEY not in json.dumps(body)


def test_a_ticket_opens_its_asset_and_the_websocket_only(keyed: TestClient) -> None:
    tickets = keyed.post("/studio/tickets", json={"paths": [ASSET, WS]}, headers=bearer()).json()["tickets"]
    # the asset does not exist: a 404 (not a 401) shows the ticket was accepted
    assert keyed.get(ASSET, params={"ticket": tickets[ASSET]}).json()["error"]["code"] == "REQUEST_NOT_FOUND"
    other = ASSET.replace("0123abcd", "ffff0000")
    assert keyed.get(other, params={"ticket": tickets[ASSET]}).status_code == 401
    assert keyed.get("/api/v1/models", params={"ticket": tickets[ASSET]}).status_code == 401  # no query auth there
    assert keyed.get(ASSET, params={"ticket": tickets[WS]}).status_code == 401
    # a wrong header is not rescued by a good ticket
    assert keyed.get(ASSET, params={"ticket": tickets[ASSET]}, headers=bearer("wrong")).status_code == 401
    with keyed.websocket_connect(f"{WS}?ticket={tickets[WS]}") as ws:
        ws.send_json({"type": "subscribe", "request_id": "video_req_missing"})
        assert ws.receive_json()["error"]["code"] == "REQUEST_NOT_FOUND"
    with pytest.raises(WebSocketDisconnect) as refused, keyed.websocket_connect(f"{WS}?ticket={tickets[ASSET]}"):
        pass
    assert refused.value.code == WS_UNAUTHORIZED_CLOSE_CODE


# ------------------------------------------------------------------------------------------ the page


def test_page_is_served_without_a_key_with_a_strict_policy(keyed: TestClient) -> None:
    for path in ("/", "/studio", "/studio/"):
        response = keyed.get(path)
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/html"), path
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert response.headers["referrer-policy"] == "no-referrer"
    for name in ("studio.js", "api.js", "studio.css", "icon.svg"):
        assert keyed.get(f"/studio/static/{name}").status_code == 200, name
    assert keyed.get("/studio/tickets").status_code in (401, 405)  # not exempt: only the page and its files are


def test_page_inlines_the_catalogue_and_loads_only_its_own_files() -> None:
    page = StudioPage(client_options()).body.decode()
    block = re.search(r'<script type="application/json" id="catalog">(.*?)</script>', page, re.S)
    assert block is not None
    catalog = json.loads(unescape(block[1]))
    assert set(catalog["characters"]) == set(CHARACTERS)
    assert catalog["ws_path"] == WS
    for url in re.findall(r'(?:src|href)="([^"]+)"', page):
        assert url.startswith(("/", "#")) and not url.startswith("//"), url  # no other origin
    for file in STATIC_DIR.iterdir():
        text = re.sub(r'xmlns="[^"]*"', "", file.read_text())  # an XML namespace is a name, not a request
        assert not re.search(r"https?://", text), f"{file.name} names an absolute URL"


def test_static_payload_stays_small() -> None:
    total = len(StudioPage(client_options()).body) + sum(f.stat().st_size for f in STATIC_DIR.iterdir())
    assert total < STATIC_BUDGET_BYTES, f"studio payload {total} bytes"


# ------------------------------------------------------------------------------------- HTTP conventions


def test_unknown_routes_have_their_own_code(tmp_path: Path) -> None:
    with app_client(tmp_path) as client:
        for path in ("/nothing/here", "/api/v1/nope", "/studio/static/missing.js"):
            response = client.get(path)
            assert response.status_code == 404 and response.json()["error"]["code"] == "ROUTE_NOT_FOUND", path
        # an unknown request on a known route keeps the reference's code
        assert client.get("/api/v1/generate/status/video_req_nope").json()["error"]["code"] == "REQUEST_NOT_FOUND"


def test_cors_is_off_by_default(tmp_path: Path) -> None:
    assert Settings.from_env({}).cors_origins == ()
    with app_client(tmp_path) as client:
        response = client.get("/api/v1/health", headers={"Origin": ORIGIN})
        assert "access-control-allow-origin" not in response.headers


def test_cors_preflight_and_answers_for_listed_origins(tmp_path: Path) -> None:
    settings = Settings.from_env({"VISUALIZR_CORS_ORIGINS": f" {ORIGIN} , http://localhost:5173,"})
    assert settings.cors_origins == (ORIGIN, "http://localhost:5173")
    with app_client(tmp_path, api_keys=(KEY,), cors_origins=settings.cors_origins) as client:
        preflight = client.options(
            "/api/v1/generate/video",
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 204, preflight.text  # no key: preflights carry none, by design
        assert preflight.headers["access-control-allow-origin"] == ORIGIN
        assert "POST" in preflight.headers["access-control-allow-methods"]
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
        answer = client.get("/api/v1/models", headers={"Origin": ORIGIN, **bearer()})
        assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == ORIGIN
        denied = client.get("/api/v1/models", headers={"Origin": ORIGIN})  # the 401 is readable cross-origin too
        assert denied.status_code == 401 and denied.headers["access-control-allow-origin"] == ORIGIN
        exposed = answer.headers["access-control-expose-headers"].lower()
        assert "retry-after" in exposed and "content-range" in exposed
        stranger = client.get("/api/v1/models", headers={"Origin": "https://evil.example", **bearer()})
        assert "access-control-allow-origin" not in stranger.headers


def test_docs_pages_reference_only_vendored_files(tmp_path: Path) -> None:
    assert all(p.present() for p in PACKAGES), "run `make setup` (python -m visualizr.frontend.studio.vendor)"
    with app_client(tmp_path, api_keys=(KEY,)) as client:
        for path in ("/schema", "/schema/swagger", "/schema/redoc", "/schema/rapidoc", "/schema/elements"):
            page = client.get(path)
            assert page.status_code == 200, path
            urls = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", page.text)
            assert urls, path
            for url in urls:
                assert url.startswith("/schema/static/"), (path, url)
                assert client.get(url).status_code == 200, url
        schema = client.get("/schema/openapi.json").json()
        assert schema["components"]["securitySchemes"]["BearerAuth"]["scheme"] == "bearer"


def test_vendored_files_come_only_from_a_tarball_with_the_pinned_integrity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vendor, "VENDOR_DIR", tmp_path)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in (("package/dist/app.js", b"ok();"), ("package/evil.js", b"no")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    tarball = buffer.getvalue()
    package = vendor.NpmPackage("@scope/app", "1.0.0", vendor.integrity_of(tarball), ("dist/app.js",))
    assert not package.present()
    vendor.extract(package, tarball)
    assert package.present() and package.path("dist/app.js").read_bytes() == b"ok();"
    assert sorted(p.name for p in (tmp_path / "scope-app@1.0.0").rglob("*")) == ["app.js", "dist"]
    assert package.url("dist/app.js") == "/schema/static/scope-app@1.0.0/dist/app.js"
    with pytest.raises(RuntimeError, match="integrity"):
        vendor.extract(vendor.NpmPackage("app", "1.0.1", "sha512-AAAA", ("dist/app.js",)), tarball)
    assert vendor.fetch_missing((package,)) == []  # present: nothing to fetch, no npm call
