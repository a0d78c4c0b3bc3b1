"""The console in Debian's Chromium against a real server and worker, as an editor
uses it: sign in, upload a generated master over tus (the progress bar moving),
watch it turn ready through the event stream, play the preview (its key fetched
with the editor's preview token), edit its catalog title, delete it. Each page is
checked with axe-core and saved as a screenshot; text from the upload shows as text.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from stb_origin.accounts.models import Role
from stb_origin.services import build_services
from stb_origin.settings import Settings, from_env
from tests.conftest import require_tools
from tests.console.conftest import Person, make_person
from tests.e2e.browser import CHROMIUM
from tests.e2e.browser import playwright as browser_driver
from tests.e2e.stack import Stack, running
from tests.support.media import make_clip
from tests.support.parsers import PLAYER

AXE = PLAYER / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = Path(os.environ.get("STB_CONSOLE_SHOTS") or Path(__file__).parent / "shots")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required"]
XSS_TITLE = '<img src=x onerror="window.__xss=1">Night & "Day"'
CHUNK_BYTES = 256 * 1024
UPLOAD_BYTES_PER_S = 1_500_000  # a slow link: the upload lasts long enough to pause
RECORD_PROGRESS = """() => {
    window.__progress = [];
    const bar = document.getElementById('upload-progress');
    new MutationObserver(() => window.__progress.push(Number(bar.getAttribute('aria-valuenow'))))
      .observe(bar, {attributes: true, attributeFilter: ['aria-valuenow']});
}"""


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tools("ffmpeg", "ffprobe")
    # A high bitrate makes it a few MiB: a dozen tus chunks for the progress bar.
    path = make_clip(tmp_path_factory.mktemp("media") / "master.mp4", seconds=4,
                     size="640x360", extra_output_args=["-b:v", "6M", "-maxrate", "6M",
                                                         "-bufsize", "2M"])
    assert path.stat().st_size > 8 * CHUNK_BYTES
    return path


class _Receiver(BaseHTTPRequestHandler):
    """A webhook receiver on loopback: takes every POST, remembers its event type."""

    received: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.received.append(self.headers.get("X-Stb-Event", ""))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[str]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    _Receiver.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", _Receiver.received
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def stack(tmp_path: Path, redis_url: str, settings: Settings) -> Iterator[Stack]:
    # the webhook receiver is on loopback, over plain HTTP
    with running(tmp_path / "data", redis_url, settings.queue_name,
                 STB_WEBHOOKS_ALLOW_PRIVATE="true", STB_WEBHOOKS_ALLOW_HTTP="true") as stack:
        yield stack


def _people(stack: Stack) -> tuple[Person, Person]:
    services = build_services(from_env(stack.env))
    try:
        return make_person(services, Role.EDITOR), make_person(services, Role.ADMIN)
    finally:
        services.close()


def _accessible(page: Any, name: str) -> None:
    """axe-core's serious and critical findings on the page as it is now: none."""
    if not AXE.is_file():
        pytest.fail(f"axe-core is required: (cd {PLAYER} && npm ci)", pytrace=False)
    # Evaluated through the DevTools protocol: the page's CSP does not apply to it.
    page.evaluate(AXE.read_text())
    found = page.evaluate("""async () => (await axe.run(document, {resultTypes: ['violations']}))
        .violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
        .map(v => `${v.id}: ${v.help} (${v.nodes.map(n => n.target.join(' ')).join(', ')})`)""")
    assert found == [], f"{name}: {found}"


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _sign_in(page: Any, stack: Stack, person: Person) -> None:
    page.goto(stack.base_url + "/console")
    page.fill("#email", person.email)
    page.fill("#password", person.password)
    page.click("#sign-in-submit")
    page.wait_for_selector("main[data-ready]")


def _until(page: Any, expression: str, arg: object = None, timeout_s: float = 30) -> None:
    """Poll a JavaScript function until it returns true. (Playwright's
    wait_for_function evaluates strings inside the page, which its CSP forbids.)"""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression, arg):
        assert time.monotonic() < deadline, f"still false after {timeout_s} s: {expression}"
        page.wait_for_timeout(100)


def _ready_page(page: Any, hash_: str) -> None:
    page.evaluate("h => { location.hash = h; }", hash_)
    _until(page, "h => location.hash === h && document.querySelector("
                 "'main[data-ready]') !== null", hash_)


def test_an_editor_uploads_previews_edits_and_deletes(
        stack: Stack, master: Path, receiver: tuple[str, list[str]]) -> None:
    hook_url, received = receiver
    editor, admin = _people(stack)
    keys: list[int] = []
    csp: list[str] = []
    with browser_driver() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.on("response", lambda r: keys.append(r.status) if "/keys/" in r.url else None)
            page.on("console", lambda m: csp.append(m.text)
                    if "Content Security Policy" in m.text else None)
            page.on("dialog", lambda dialog: dialog.accept())
            # shown by pytest when the test fails: what the page said
            page.on("console", lambda m: print("console:", m.type, m.text))
            page.on("pageerror", lambda e: print("page error:", e))
            page.on("response", lambda r: print("refused:", r.status, r.request.method, r.url)
                    if r.status >= 400 else None)

            page.goto(stack.base_url + "/console")
            _accessible(page, "sign-in")
            _shot(page, "sign-in")

            # -- an admin subscribes a receiver to the asset events ---------------------
            _sign_in(page, stack, admin)
            _ready_page(page, "#/webhooks")
            page.fill("#webhooks-url", hook_url)
            page.click("#create-webhook")
            page.wait_for_selector("#new-secret code")
            page.click("#sign-out-submit")
            page.wait_for_selector("#page-sign-in")

            _sign_in(page, stack, editor)
            assert page.text_content("#signed-in-as") == editor.email
            _accessible(page, "assets (empty)")

            # -- upload over tus in small chunks on a slow link; pause, reload, resume --
            page.evaluate("n => sessionStorage.setItem('stb-console:chunk-bytes', n)",
                          str(CHUNK_BYTES))
            link = page.context.new_cdp_session(page)
            link.send("Network.enable")
            link.send("Network.emulateNetworkConditions", {
                "offline": False, "latency": 0, "downloadThroughput": -1,
                "uploadThroughput": UPLOAD_BYTES_PER_S})
            _ready_page(page, "#/upload")
            _accessible(page, "upload")
            page.set_input_files("#file", str(master))
            page.fill("#title", XSS_TITLE)
            _shot(page, "upload")
            page.click("#start-upload")
            _until(page, "() => document.getElementById('upload-progress').value >= 20")
            page.click("#pause-upload")
            paused_at = page.evaluate("document.getElementById('upload-progress').value")
            assert paused_at < 100

            page.reload()
            page.wait_for_selector("main[data-ready]")
            _ready_page(page, "#/upload")
            page.set_input_files("#file", str(master))
            page.fill("#title", XSS_TITLE)
            page.evaluate(RECORD_PROGRESS)
            page.click("#start-upload")
            page.wait_for_selector("#resume-note:has-text('Resuming')")
            page.wait_for_url(re.compile(r".*#/assets/[0-9a-f]{32}$"), timeout=60_000)
            progress = page.evaluate("window.__progress")
            # It carried on from where it stopped (tus-js-client found the upload's
            # URL by the file's fingerprint), and the bar moved, not jumped.
            assert progress[0] >= CHUNK_BYTES * 100 // master.stat().st_size, progress
            moving = [p for p in progress if 0 < p < 100]
            assert len(set(moving)) >= 3, progress
            assert progress == sorted(progress) and progress[-1] == 100, progress
            link.send("Network.emulateNetworkConditions", {
                "offline": False, "latency": 0, "downloadThroughput": -1,
                "uploadThroughput": -1})
            asset_id = page.url.rsplit("/", 1)[1]

            # -- the asset turns ready on the page itself (events), then plays ---------
            page.wait_for_selector("main[data-ready]")
            page.wait_for_selector("#asset-status .badge.ready", timeout=180_000)
            assert page.text_content("#asset-title") == XSS_TITLE
            assert page.locator("#asset-title img").count() == 0
            assert page.evaluate("window.__xss") is None
            _until(page, "() => document.querySelector('#preview')?.currentTime > 1",
                   timeout_s=60)
            assert keys and set(keys) == {200}, keys
            assert page.locator("#renditions tbody tr").count() >= 1

            # -- the thumbnail strip the pipeline made, drawn from its sprite ------------
            strip = httpx.get(f"{stack.base_url}/v1/assets/{asset_id}", headers={
                "Authorization": "Bearer " + stack.token("assets:read")}).json()["thumbnails"]
            with page.expect_response("**/thumbs.jpg") as sprite:
                page.reload()
                page.wait_for_selector("main[data-ready]")
            assert (sprite.value.status, sprite.value.header_value("content-type")) == (
                200, "image/jpeg")
            assert page.locator("#thumbnails [role=listitem]").count() == strip["count"] >= 2
            _until(page, "() => document.querySelector('#preview')?.currentTime > 0.5",
                   timeout_s=60)
            _accessible(page, "asset")
            _shot(page, "asset")
            # -- catalog metadata: create a title for it, then edit it -----------------
            page.fill("#catalog form.card input", "Night and Day")
            page.click("#catalog form.card button")
            page.wait_for_selector("#catalog .catalog-title")
            page.fill("#catalog .catalog-title textarea", "Two friends, one long night.")
            page.click("#catalog .catalog-title button[type=submit]")
            _until(page, "() => document.getElementById('status').textContent"
                         ".startsWith('Saved')")
            token = stack.token("assets:read")
            titles = httpx.get(stack.base_url + "/v1/catalog/titles", timeout=10,
                               headers={"Authorization": f"Bearer {token}"}).json()["items"]
            [edited] = [t for t in titles if any(a["id"] == asset_id for a in t["assets"])]
            assert edited["name"] == "Night and Day"
            assert edited["description"] == "Two friends, one long night."

            # -- the list shows it as text too; then delete it ------------------------
            _ready_page(page, "#/assets")
            row = page.locator(f"#asset-{asset_id}")
            assert row.locator("a").text_content() == XSS_TITLE
            _shot(page, "assets")
            row.locator("button.danger").click()
            page.wait_for_selector(f"#asset-{asset_id}", state="detached")
            gone = httpx.get(f"{stack.base_url}/v1/assets/{asset_id}", timeout=10,
                             headers={"Authorization": f"Bearer {token}"})
            assert gone.status_code == 404

            # -- an admin's pages (with a channel on them) -------------------------------
            made = httpx.post(stack.base_url + "/v1/channels", timeout=10, json={
                "name": "News <24>", "number": 1, "sources": ["udp://127.0.0.1:1234"]},
                headers={"Authorization": f"Bearer {stack.token('admin')}"})
            assert made.status_code == 201, made.text
            page.click("#sign-out-submit")
            page.wait_for_selector("#page-sign-in")
            _sign_in(page, stack, admin)
            for hash_, name in [("#/channels", "channels"), ("#/audit", "audit"),
                                ("#/admin", "admin"), ("#/webhooks", "webhooks")]:
                _ready_page(page, hash_)
                _accessible(page, name)
                _shot(page, name)
                if name == "channels":
                    assert page.locator("article h2").text_content() == "1 News <24>"
                if name == "audit":  # the editor's preview, audited
                    assert page.locator("#audit tbody tr").count() >= 1
                    assert "console-preview" in page.text_content("#audit tbody")
            # The receiver heard the asset's events; the log shows them; one is sent again.
            deadline = time.monotonic() + 60
            while "asset.ready" not in received:
                assert time.monotonic() < deadline, received
                time.sleep(0.2)
            heard = len(received)
            page.click("#webhooks button.secondary")
            page.wait_for_selector("#deliveries tbody tr >> text=asset.ready")
            _shot(page, "webhooks")
            page.locator("#deliveries tr", has_text="asset.ready").locator("button").click()
            deadline = time.monotonic() + 60
            while len(received) == heard:
                assert time.monotonic() < deadline, received
                time.sleep(0.2)
            assert received[-1] == "asset.ready"
            assert csp == [], csp
        finally:
            browser.close()
