"""A real 720p transcode, packaged and served: key frames every 2 s in every rendition
and one I-frame playlist per resolution tier, read back through the encrypted output."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import m3u8
import pytest

from stb_origin import proc
from stb_origin.drm.keys import generate_key
from stb_origin.packager.package import (
    PackageResult,
    VariantInput,
    count_segments,
    keys_needed,
    package,
    peak_bitrate,
)
from stb_origin.settings import Settings
from stb_origin.transcode import Ladder, plan_ladder, probe, transcode
from tests.packager import support
from tests.support.media import make_clip

SECONDS = 9
FPS = 30
ROTATION = 2


def key_uri(key_id: str) -> str:
    return f"/keys/{key_id}"


Packaged = tuple[Path, Ladder, PackageResult, dict[str, bytes]]


@pytest.fixture(scope="module", params=["fmp4", "ts"])
def packaged(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> Packaged:
    support.ffmpeg()
    tmp = tmp_path_factory.mktemp(request.param)
    master = make_clip(tmp / "master.mp4", seconds=SECONDS, size="1280x720", fps=FPS)
    # 4 s segments: 2, 2, 4, then 1 s; key frames every 2 s.
    settings = Settings(x264_preset="ultrafast", segment_seconds=4.0,
                        segment_format=request.param)
    info = probe(master, settings)
    ladder = plan_ladder(info, settings)
    transcode(master, info, ladder, tmp / "work", settings)
    keys = [generate_key() for _ in range(keys_needed(count_segments(tmp / "work"), ROTATION))]
    result = package(
        tmp / "work", [VariantInput(r.name, r.width, r.height, ladder.fps)
                       for r in ladder.renditions],
        keys, key_uri, ROTATION, tmp / "out",
        iframes=[VariantInput(t.name, t.width, t.height, ladder.fps) for t in ladder.iframes])
    return tmp / "out", ladder, result, {key_uri(k.key_id): k.key for k in keys}


def served_frames(url: str) -> list[dict[str, Any]]:
    """Every decoded video frame of a playlist on the HLS server, in order."""
    done = proc.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                     "frame=key_frame,pict_type,width,height", "-of", "json", url],
                    timeout=support.TIMEOUT)
    frames: list[dict[str, Any]] = json.loads(done.stdout)["frames"]
    return frames


def test_master_lists_one_iframe_stream_per_tier(packaged: Packaged) -> None:
    out, ladder, result, _ = packaged
    assert [t.name for t in ladder.iframes] == ["iframes_720p", "iframes_432p", "iframes_234p"]
    master = m3u8.loads((out / "master.m3u8").read_text())
    assert [p.uri for p in master.iframe_playlists] == [
        "iframes_720p/index.m3u8", "iframes_432p/index.m3u8", "iframes_234p/index.m3u8"]
    for listed, tier, facts in zip(master.iframe_playlists, ladder.iframes, result.iframes,
                                   strict=True):
        info = listed.iframe_stream_info
        assert info.resolution == (tier.width, tier.height)
        assert info.codecs == facts.codecs and info.codecs.startswith("avc1.")
        media = m3u8.loads((out / tier.name / "index.m3u8").read_text())
        sizes = [(out / tier.name / s.uri).stat().st_size for s in media.segments]
        init = out / tier.name / "init.mp4"
        init_size = init.stat().st_size if init.exists() else 0
        assert info.bandwidth == peak_bitrate(sizes, [s.duration for s in media.segments],
                                              media.target_duration, init_size)
    # Each tier's frames are dearer than the next smaller tier's.
    bandwidths = [p.iframe_stream_info.bandwidth for p in master.iframe_playlists]
    assert bandwidths == sorted(bandwidths, reverse=True) and len(set(bandwidths)) == 3


def test_each_iframe_playlist_decodes_to_one_key_frame_per_entry(packaged: Packaged) -> None:
    out, ladder, _, keys = packaged
    reference = m3u8.loads((out / ladder.renditions[0].name / "index.m3u8").read_text())
    with support.serve(out) as server:
        server.keys.update(keys)
        for tier in ladder.iframes:
            playlist = m3u8.loads((out / tier.name / "index.m3u8").read_text())
            assert playlist.is_i_frames_only
            # The renditions' segments, keys and durations: trick play seeks where they switch.
            assert [(s.duration, s.key.uri) for s in playlist.segments] == [
                (s.duration, s.key.uri) for s in reference.segments]
            frames = served_frames(f"{server.base}/{tier.name}/index.m3u8")
            assert len(frames) == len(playlist.segments) == 4, tier.name
            for frame in frames:
                assert (frame["key_frame"], frame["pict_type"]) == (1, "I")
                assert (frame["width"], frame["height"]) == (tier.width, tier.height)


def test_every_rendition_has_a_key_frame_every_two_seconds(packaged: Packaged) -> None:
    out, ladder, _, keys = packaged
    total = SECONDS * FPS
    every = 2 * FPS
    with support.serve(out) as server:
        server.keys.update(keys)
        for r in ladder.renditions:
            frames = served_frames(f"{server.base}/{r.name}/index.m3u8")
            assert len(frames) == total, r.name
            assert [i for i, f in enumerate(frames) if f["key_frame"]] == list(
                range(0, total, every)), r.name
            playlist = m3u8.loads((out / r.name / "index.m3u8").read_text())
            assert [s.duration for s in playlist.segments] == pytest.approx(
                [2.0, 2.0, 4.0, 1.0], abs=0.001)
            assert math.isclose(sum(s.duration for s in playlist.segments), SECONDS)
