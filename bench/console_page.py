"""The console's page weight and time to interactive in Chromium, for the asset list
and an asset page.

A real `stb-origin serve` (uvicorn, one process) on its own Redis and data dir,
one editor, N assets uploaded (the first processed by a burst worker, so its page
has renditions and a preview). Debian's headless Chromium, driven by Playwright,
loads each page --loads times:

    cold   a new browser context each load (empty HTTP cache; the session cookie copied)
    warm   the same context, the page loaded again (the files come from the cache:
           their URLs carry the build id and are immutable)

weight: bytes transferred (the answers as sent, gzipped where the server gzips,
headers included), from the Resource Timing entries, without the preview's
playlists, segments and keys (the asset page starts playing); ready: navigation start to
the `console-ready` mark the app sets once its first page is drawn with its data
(<main data-ready>). Medians.

    .venv/bin/python bench/console_page.py
    .venv/bin/python bench/console_page.py --loads 21 --assets 50

Needs: apt-get install -y chromium redis-server ffmpeg; playwright (the test extras).
"""

from __future__ import annotations

import argparse
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
from common import machine_facts, median, print_table, source_clip, warn_if_busy
from servers import REPO, start_redis, start_uvicorn, stb_env

from stb_origin.accounts import users
from stb_origin.accounts.models import Role
from stb_origin.services import build_services
from stb_origin.settings import from_env

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "bench password, long enough"
WEIGHT = r"""() => {
  const [nav] = performance.getEntriesByType('navigation');
  return performance.getEntriesByType('resource')
    .filter((r) => !/\/(hls|keys)\//.test(new URL(r.name).pathname))  // the preview's media
    .reduce((sum, r) => sum + r.transferSize, nav.transferSize);
}"""
READY = "() => performance.getEntriesByName('console-ready')[0]?.startTime ?? null"


def _setup(env: dict[str, str], base: str, assets: int, log_dir: Path) -> tuple[str, str]:
    """An editor, and the id of an asset processed to the end."""
    services = build_services(from_env(env))
    try:
        with services.db.session() as session:
            editor = users.create_user(session, f"{secrets.token_hex(4)}@example.com",
                                       role=Role.EDITOR, password=PASSWORD)
            email = editor.email
        token = services.signer.issue(["assets:write", "assets:read"])
    finally:
        services.close()
    clip = source_clip(4, "640x360", 30)

    def upload(n: int) -> str:
        with clip.open("rb") as f:
            response = httpx.post(base + "/v1/assets", files={"file": ("m.mp4", f, "video/mp4")},
                                  data={"title": f"Bench asset {n}"}, timeout=60,
                                  headers={"Authorization": f"Bearer {token}"})
        response.raise_for_status()
        return str(response.json()["id"])

    ready = upload(0)
    with open(log_dir / "worker.log", "wb") as log:
        subprocess.run([sys.executable, "-m", "stb_origin.cli", "worker", "--burst"], env=env,
                       cwd=REPO, stdout=log, stderr=log, check=True, timeout=300)
    for n in range(1, assets):  # listed, queued: the list's rows cost the same
        upload(n)
    return email, ready


def _load(context: Any, url: str) -> tuple[float, float]:
    page = context.new_page()
    try:
        page.goto(url)
        page.wait_for_selector("html[data-ready]", timeout=30_000)
        ready = page.evaluate(READY)
        page.wait_for_load_state("networkidle")
        return page.evaluate(WEIGHT), ready
    finally:
        page.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--loads", type=int, default=11)
    parser.add_argument("--assets", type=int, default=20)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    warn_if_busy()
    with tempfile.TemporaryDirectory(prefix="console-bench-") as tmp:
        work = Path(tmp)
        redis, redis_url = start_redis(work / "redis")
        env = stb_env({"STB_DATA_DIR": str(work / "data"), "STB_REDIS_URL": redis_url,
                       "STB_X264_PRESET": "ultrafast", "STB_RECONCILE_INTERVAL_S": "0"})
        server, port = start_uvicorn(env, work / "logs")
        base = f"http://127.0.0.1:{port}"
        try:
            email, asset_id = _setup(env, base, args.assets, work / "logs")
            pages = {"asset list": f"{base}/console#/assets",
                     "asset page": f"{base}/console#/assets/{asset_id}"}
            rows = []
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                                     args=["--no-sandbox", "--disable-gpu"])
                signed_in = browser.new_context()
                page = signed_in.new_page()
                page.goto(base + "/console")
                page.fill("#email", email)
                page.fill("#password", PASSWORD)
                page.click("#sign-in-submit")
                page.wait_for_selector("html[data-ready]")
                cookies = signed_in.cookies()
                for name, url in pages.items():
                    cold, warm = [], []
                    for _ in range(args.loads):
                        context = browser.new_context()
                        context.add_cookies(cookies)
                        cold.append(_load(context, url))
                        warm.append(_load(context, url))
                        context.close()
                    for kind, runs in (("cold", cold), ("warm", warm)):
                        rows.append([name, kind, f"{median([w for w, _ in runs]) / 1024:.1f}",
                                     f"{median([r for _, r in runs]):.0f}"])
                browser.close()
        finally:
            server.stop()
            redis.stop()
    print(machine_facts())
    print(f"{args.loads} loads each, {args.assets} assets listed; medians")
    print_table(["page", "cache", "transferred KiB", "ready ms"], rows)


if __name__ == "__main__":
    main()
