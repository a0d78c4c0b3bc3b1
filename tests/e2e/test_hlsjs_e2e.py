"""hls.js in Chromium, the player of many boxes' web UIs, picks the tracks of an asset
made by the real pipeline: it offers every audio language and switches between them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest

from stb_origin.settings import Settings
from tests.conftest import require_tools
from tests.e2e.browser import CHROMIUM
from tests.e2e.browser import playwright as browser_driver
from tests.e2e.stack import Stack, running
from tests.support.media import Subtitle, Track, make_audio_tracks_clip, make_subtitles_clip
from tests.support.parsers import PLAYER, require_player

HLS_JS = PLAYER / "node_modules" / "hls.js" / "dist" / "hls.min.js"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required"]


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tools("ffmpeg", "ffprobe")
    return make_audio_tracks_clip(tmp_path_factory.mktemp("media") / "tracks.mkv", [
        Track(language="eng", title="English", default=True),
        Track(language="fra", title="Français"),
        Track(language="eng", title="English 5.1", channels=6),
    ], seconds=12, size="640x360")


@pytest.fixture
def stack(tmp_path: Path, redis_url: str, settings: Settings) -> Iterator[Stack]:
    with running(tmp_path / "data", redis_url, settings.queue_name) as stack:
        yield stack


@contextmanager
def _playing(stack: Stack, master: Path, title: str) -> Iterator[tuple[Any, dict[str, Any]]]:
    """Upload master, wait for it to be ready, and play it in hls.js in Chromium;
    yields the page and what hls.js offers once it plays."""
    write = stack.token("assets:write assets:read")
    response = stack.upload(master, write, title=title)
    assert response.status_code == 202, response.text
    final = stack.wait_for(response.json()["id"], write)[-1]
    assert final["status"] == "ready", final
    master_url = urljoin(stack.base_url, final["playback"]["hls"])
    token = stack.token("playback", device="box-1")
    require_player()
    with browser_driver() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page_url = stack.base_url + "/tests-player/tracks.html"
            page.route(page_url, lambda route: route.fulfill(
                body=(PLAYER / "tracks.html").read_text(), content_type="text/html"))
            page.goto(page_url)
            page.add_script_tag(path=str(HLS_JS))
            yield page, page.evaluate("([src, token]) => start(src, token)",
                                      [master_url, token])
        finally:
            browser.close()


def test_hlsjs_offers_every_language_and_switches_audio(stack: Stack, master: Path) -> None:
    with _playing(stack, master, "Three tracks") as (page, offered):
        # Chromium has no E-AC-3: hls.js keeps the AAC group, whose tracks are all
        # three sources (the 5.1 one downmixed), each with its language and name.
        assert [(t["name"], t["lang"]) for t in offered["audio"]] == [
            ("English", "en"), ("Français", "fr"), ("English 5.1", "en")]
        assert offered["audio"][offered["audioTrack"]]["name"] == "English"
        assert all(level["audioCodec"].startswith("mp4a") for level in offered["levels"])

        switched = page.evaluate("switchAudio(1)")
        assert switched["audioTrack"] == 1 and not switched["fatal"], switched
        back = page.evaluate("switchAudio(2)")
        assert back["audioTrack"] == 2 and back["rendition"] != switched["rendition"]


def test_hlsjs_shows_a_subtitle_track_with_its_cues(stack: Stack, tmp_path: Path) -> None:
    cues = ((0.5, 1.5, "Hello & you"), (2.0, 3.5, "Second line"))
    master = make_subtitles_clip(tmp_path / "subtitles.mkv", [
        Subtitle(cues, language="eng", title="English"),
        Subtitle(cues, language="fra", title="Français", forced=True)],
        seconds=8, size="640x360")
    with _playing(stack, master, "Subtitled") as (page, offered):
        assert [(t["name"], t["lang"], t["forced"]) for t in offered["subtitles"]] == [
            ("English", "en", False), ("Français", "fr", True)]
        shown = page.evaluate(f"showSubtitles(0, {len(cues)})")
    # The cues hls.js put on the video element, with their text, at the source's
    # times give or take 0.1 s: measured +0.06 s here (a Matroska master whose
    # video starts 21 ms after its AAC; hls.js 1.7.4 over fMP4), left for a closer
    # look at where hls.js puts its initPTS.
    assert [c["text"] for c in shown] == [text for _, _, text in cues]
    for cue, (start, end, _) in zip(shown, cues, strict=True):
        assert abs(cue["start"] - start) < 0.1 and abs(cue["end"] - end) < 0.1, shown
