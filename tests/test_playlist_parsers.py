"""Every playlist the pipeline publishes is accepted by two independent strict parsers."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from stb_origin import pipeline
from stb_origin.ingest.service import accept_source
from stb_origin.services import Services, build_services
from stb_origin.settings import Settings
from tests.support.media import Track, make_audio_tracks_clip, make_clip
from tests.support.parsers import assert_strictly_valid, published_playlists


@pytest.fixture(scope="module")
def masters(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    media = tmp_path_factory.mktemp("media")
    return {
        "one audio track": make_clip(media / "clip.mp4", seconds=5, size="640x360"),
        "four audio tracks, one 5.1": make_audio_tracks_clip(media / "tracks.mkv", [
            Track(language="eng", title="English"),
            Track(language="fra", title="Français", default=True),
            Track(language="deu", title="Deutsch", channels=1),
            Track(language="eng", title="English 5.1", channels=6),
        ], seconds=5),
    }


@pytest.mark.parametrize("segment_format", ["fmp4", "ts"])
@pytest.mark.parametrize("master", ["one audio track", "four audio tracks, one 5.1"])
def test_both_parsers_accept_every_published_playlist(
        settings: Settings, masters: dict[str, Path], tmp_path: Path,
        segment_format: str, master: str) -> None:
    services: Services = build_services(dataclasses.replace(settings,
                                                             segment_format=segment_format))
    try:
        path = masters[master]
        asset_id = str(accept_source(services, path, path.suffix, path.stem,
                                     path.stat().st_size)["id"])
        assert pipeline.process(services, asset_id) == "ready"
        paths = published_playlists(services.storage, asset_id, tmp_path / "playlists")
        summaries = assert_strictly_valid(paths)
    finally:
        services.close()
    masters_read = [s for s in summaries if s["master"]]
    # The asset's master and its version's (and its filtered copies, if any).
    assert len(masters_read) >= 2
    assert all(int(str(s["iframe_variants"])) >= 1 for s in masters_read)
    media = [s for s in summaries if not s["master"]]
    assert media and all(int(str(s["segments"])) >= 1 for s in media)


@pytest.mark.parametrize("text", [
    # A variant without BANDWIDTH.
    "#EXTM3U\n#EXT-X-STREAM-INF:RESOLUTION=640x360\nv/index.m3u8\n",
    # A segment longer than the target duration.
    "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:4.0,\ns.ts\n#EXT-X-ENDLIST\n",
    # A variant naming an audio group nobody defines.
    '#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",NAME="x"\n'
    '#EXT-X-STREAM-INF:BANDWIDTH=1000,AUDIO="b"\nv.m3u8\n',
    # A tag that does not exist.
    "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-NOT-A-TAG\n#EXTINF:2.0,\ns.ts\n",
])
def test_the_check_refuses_a_broken_playlist(tmp_path: Path, text: str) -> None:
    path = tmp_path / "broken.m3u8"
    path.write_text(text)
    with pytest.raises(AssertionError, match="refuses|Invalid|Failed"):
        assert_strictly_valid([path])
