"""A master whose H.264 carries CEA-608 captions, transcoded and packaged for real:
every rendition still carries them, read back over HTTP through the keys, and the
master declares them."""

from __future__ import annotations

from pathlib import Path

import m3u8
import pytest

from stb_origin.drm.keys import generate_key
from stb_origin.packager.package import (
    PackageResult,
    VariantInput,
    count_segments,
    keys_needed,
    package,
)
from stb_origin.settings import Settings
from stb_origin.transcode import plan_ladder, probe, transcode
from tests.packager import support
from tests.support.captions import make_captions_clip, read_captions

SECONDS = 4
FPS = 30
CAPTIONS = [(0.5, 1.5, "HELLO"), (2.5, 3.5, "WORLD 2")]


def key_uri(key_id: str) -> str:
    return f"/keys/{key_id}"


@pytest.fixture(scope="module", params=["fmp4", "ts"])
def packaged(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[Path, PackageResult, dict[str, bytes]]:
    support.ffmpeg()
    tmp = tmp_path_factory.mktemp(request.param)
    master = make_captions_clip(tmp / "master.mp4", CAPTIONS, seconds=SECONDS, fps=FPS,
                                size="640x360")
    settings = Settings(x264_preset="ultrafast", segment_seconds=2.0,
                        segment_format=request.param)
    info = probe(master, settings)
    assert info.closed_captions
    ladder = plan_ladder(info, settings)
    assert ladder.closed_captions and len(ladder.renditions) == 2
    transcode(master, info, ladder, tmp / "work", settings)
    keys = [generate_key() for _ in range(keys_needed(count_segments(tmp / "work"), 2))]
    result = package(tmp / "work", [VariantInput(r.name, r.width, r.height, ladder.fps)
                                    for r in ladder.renditions],
                     keys, key_uri, 2, tmp / "out", closed_captions=ladder.closed_captions)
    return tmp / "out", result, {key_uri(k.key_id): k.key for k in keys}


def test_master_declares_the_captions_on_every_variant(packaged) -> None:  # type: ignore[no-untyped-def]
    out, _, _ = packaged
    master = m3u8.loads((out / "master.m3u8").read_text())
    assert [(m.type, m.group_id, m.instream_id, m.name, m.uri) for m in master.media] == [
        ("CLOSED-CAPTIONS", "cc", "CC1", "Closed captions", None)]
    assert master.playlists
    assert all(p.stream_info.closed_captions == '"cc"' for p in master.playlists)


def test_every_rendition_carries_the_captions_and_every_frame(packaged) -> None:  # type: ignore[no-untyped-def]
    out, result, keys = packaged
    with support.serve(out) as server:
        server.keys.update(keys)
        for rendition in result.renditions:
            url = f"{server.base}/{rendition.name}/index.m3u8"
            assert support.decode(url)[0] == SECONDS * FPS, rendition.name
            found = read_captions(url)
            assert [text for _, _, text in found] == [text for _, _, text in CAPTIONS]
            # Each shown on the frame it was sent on, from the stream's first frame.
            for (start, end, _), (want_start, want_end, _) in zip(found, CAPTIONS, strict=True):
                assert abs(start - want_start) < 0.001, (rendition.name, found)
                assert abs(end - want_end) < 0.001, (rendition.name, found)
