"""Every kind of master issue 10 names, through the real pipeline and the origin: each
rendition decodes over HTTP, with ffmpeg, to exactly the source's frames or samples,
and two independent strict parsers accept every playlist."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urljoin

import httpx
import m3u8
import pytest

from stb_origin import pipeline
from stb_origin.app import create_app
from stb_origin.assets.records import Asset
from stb_origin.ingest.service import accept_source
from stb_origin.services import Services, build_services
from stb_origin.settings import Settings
from tests.packager.support import encoded_samples
from tests.support.captions import make_captions_clip
from tests.support.http import run_server
from tests.support.media import (
    Subtitle,
    Track,
    make_audio_tracks_clip,
    make_clip,
    make_hdr_clip,
    make_subtitles_clip,
)
from tests.support.parsers import assert_strictly_valid, published_playlists

TIMEOUT = 120


CUES = ((0.5, 1.5, "Hello & you"), (1.8, 3.2, "Across\nthe boundary"))


@dataclasses.dataclass(frozen=True)
class Master:
    make: Callable[[Path], Path]
    settings: dict[str, object] = dataclasses.field(default_factory=dict)


MASTERS = {
    "three languages and a 5.1 track": Master(lambda d: make_audio_tracks_clip(
        d / "languages.mkv", [Track(language="eng", title="English", default=True),
                              Track(language="fra", title="Français"),
                              Track(language="deu", title="Deutsch"),
                              Track(language="eng", title="English 5.1", channels=6)],
        seconds=4, size="640x360")),
    "mono": Master(lambda d: make_clip(d / "mono.mp4", seconds=4, audio_channels=1)),
    "audio only": Master(lambda d: make_clip(d / "audio.mp3", seconds=4, video=False)),
    "SubRip and ASS subtitles, one forced": Master(lambda d: make_subtitles_clip(
        d / "subtitles.mkv", [Subtitle(CUES, language="eng", title="English"),
                              Subtitle(CUES, language="fra", title="Français", forced=True,
                                       fmt="ass")], seconds=4, size="640x360")),
    "CEA-608 captions": Master(lambda d: make_captions_clip(
        d / "captions.mp4", [(0.5, 2.0, "HELLO"), (2.5, 3.5, "WORLD")], seconds=4)),
    "HDR10 (PQ)": Master(lambda d: make_hdr_clip(d / "pq.mp4", "smpte2084", seconds=3)),
    "HLG": Master(lambda d: make_hdr_clip(d / "hlg.mp4", "arib-std-b67", seconds=3)),
    # 2 s segments, spans of 4 s: five spans.
    "long, in spans": Master(lambda d: make_clip(d / "long.mp4", seconds=14, fps="30000/1001"),
                             {"chunk_above_s": 8, "span_seconds": 4}),
}


def _probe(url: str, token: str, what: str, entries: str) -> list[dict[str, str]]:
    """ffprobe's frames of one stream type, decoded through the URL."""
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-headers", f"Authorization: Bearer {token}\r\n",
         "-select_streams", what, "-show_entries", f"frame={entries}", "-of", "json", url],
        capture_output=True, text=True, timeout=TIMEOUT, check=True)
    return list(json.loads(result.stdout)["frames"])


def _video_frames(url: str, token: str = "") -> int:
    return len(_probe(url, token, "v:0", "pts_time"))


def _samples(url: str, token: str = "", stream: str = "a:0") -> int:
    return sum(int(f["nb_samples"]) for f in _probe(url, token, stream, "nb_samples"))


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("masters")


@pytest.fixture
def published(request: pytest.FixtureRequest, settings: Settings,
              media: Path) -> Iterator[tuple[Services, str, Path]]:
    master = MASTERS[request.param]
    services = build_services(settings.with_(**master.settings))
    try:
        path = master.make(media)
        asset_id = str(accept_source(services, path, path.suffix, path.stem,
                                     path.stat().st_size)["id"])
        assert pipeline.process(services, asset_id) == "ready"
        yield services, asset_id, path
    finally:
        services.close()


@pytest.mark.parametrize("published", list(MASTERS), indirect=True)
def test_every_rendition_decodes_to_the_sources_frames_and_samples(
        published: tuple[Services, str, Path], tmp_path: Path) -> None:
    services, asset_id, source = published
    assert_strictly_valid(published_playlists(services.storage, asset_id, tmp_path / "lists"))
    frames = _video_frames(str(source))
    with services.db.session() as session:
        asset = session.get(Asset, asset_id)
        assert asset is not None and asset.duration_s is not None
        duration_s = asset.duration_s
    token = services.signer.issue(["playback"], device_id="box-1")
    with run_server(create_app(services)) as base_url:
        master_url = f"{base_url}/hls/{asset_id}/master.m3u8"
        master = m3u8.loads(httpx.get(master_url, timeout=10).text)
        for variant in master.playlists:
            assert _video_frames(urljoin(master_url, variant.uri), token) == frames, variant.uri
        for rendition in master.media:
            if rendition.type == "SUBTITLES":
                # Every cue's text arrives, in segments on the video's grid.
                url = urljoin(master_url, rendition.uri)
                media = m3u8.loads(httpx.get(url, timeout=10).text)
                video = m3u8.loads(httpx.get(urljoin(master_url, master.playlists[0].uri),
                                             timeout=10).text)
                assert len(media.segments) == len(video.segments)
                text = "".join(httpx.get(urljoin(url, seg.uri), timeout=10).text
                               for seg in media.segments)
                assert all(cue.replace("&", "&amp;") in text for _, _, cue in CUES), text
            if rendition.type != "AUDIO":
                continue
            # audio3_ec3: the fourth track of the source, as E-AC-3.
            track, codec = rendition.uri.split("/")[-2].removeprefix("audio").split("_")
            # Every track is padded with silence to the source's length (argv.py).
            source_samples = max(_samples(str(source), stream=f"a:{track}"),
                                 round(duration_s * 48_000))
            decoded = _samples(urljoin(master_url, rendition.uri), token)
            if codec == "aac":
                assert decoded == encoded_samples("aac", source_samples), rendition.uri
            else:
                # ffmpeg's E-AC-3 encoder may drop the last, partial frame of a
                # Matroska 5.1 track (seen: 193536 samples in, 126 frames out where
                # the priming asks for 127): at most one frame, 32 ms, at the very end.
                expected = encoded_samples("eac3", source_samples)
                assert expected - 1536 <= decoded <= expected, rendition.uri
