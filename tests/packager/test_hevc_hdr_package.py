"""SDR, PQ and HLG masters transcoded and packaged for real, then played over HTTP
with their keys: the H.264 and HEVC families side by side in one master, each
rendition what its variant says (codec, profile, range, colours, HDR10 metadata)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import m3u8
import pytest

from stb_origin import proc
from stb_origin.drm.keys import generate_key
from stb_origin.packager.package import (
    AudioInput,
    PackageResult,
    VariantInput,
    count_segments,
    keys_needed,
    package,
)
from stb_origin.settings import Settings
from stb_origin.transcode import plan_ladder, probe, transcode
from tests.packager import support
from tests.support.media import make_clip, make_hdr_clip

SECONDS, FPS = 3, 25
FRAMES = SECONDS * FPS
# Every rung gets HEVC here: the masters are one small rung.
SETTINGS = Settings(x264_preset="ultrafast", x265_preset="ultrafast", segment_seconds=2.0,
                    key_rotation_segments=1, hevc_min_height=0)


@dataclass(frozen=True)
class Packaged:
    out: Path
    result: PackageResult
    keys: dict[str, bytes]
    master: m3u8.M3U8
    text: str


def key_uri(key_id: str) -> str:
    return f"/keys/{key_id}"


def make_master(kind: str, path: Path) -> Path:
    if kind == "sdr":
        return make_clip(path, seconds=SECONDS, size="320x180", fps=FPS)
    return make_hdr_clip(path, {"pq": "smpte2084", "hlg": "arib-std-b67"}[kind],
                         seconds=SECONDS, size="320x180", fps=FPS)


@pytest.fixture(scope="module", params=["sdr", "pq", "hlg"])
def packaged(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> Packaged:
    support.ffmpeg()
    tmp = tmp_path_factory.mktemp(request.param)
    source_path = make_master(request.param, tmp / "master.mp4")
    info = probe(source_path, SETTINGS)
    ladder = plan_ladder(info, SETTINGS)
    transcode(source_path, info, ladder, tmp / "work", SETTINGS)
    keys = [generate_key() for _ in range(keys_needed(count_segments(tmp / "work"), 1))]
    result = package(
        tmp / "work", [VariantInput(r.name, r.width, r.height, ladder.fps, r.video_range)
                       for r in ladder.renditions],
        keys, key_uri, 1, tmp / "out",
        iframes=[VariantInput(t.name, t.width, t.height, ladder.fps) for t in ladder.iframes],
        audio=[AudioInput(a.name, a.group, a.label, a.language, a.channels, a.default)
               for a in ladder.audio])
    text = (tmp / "out" / "master.m3u8").read_text()
    return Packaged(tmp / "out", result, {key_uri(k.key_id): k.key for k in keys},
                    m3u8.loads(text), text)


def variant(packaged: Packaged, name: str) -> m3u8.Playlist:
    return next(p for p in packaged.master.playlists if p.uri == f"{name}/index.m3u8")


def served_probe(packaged: Packaged, name: str, entries: str, *extra: str) -> Any:
    """ffprobe's JSON for the rendition, read through HTTP with its keys."""
    with support.serve(packaged.out) as server:
        server.keys.update(packaged.keys)
        done = proc.run(["ffprobe", "-v", "error", "-select_streams", "v:0", *extra,
                         "-show_entries", entries, "-of", "json",
                         f"{server.base}/{name}/index.m3u8"], timeout=support.TIMEOUT)
    return json.loads(done.stdout)


def stream_facts(packaged: Packaged, name: str) -> dict[str, Any]:
    data = served_probe(packaged, name, "stream=codec_name,codec_tag_string,profile,pix_fmt,"
                        "color_primaries,color_transfer,color_space,width,height")
    return dict(data["streams"][0])


def test_master_lists_both_families_with_codecs_range_and_resolution(packaged: Packaged,
                                                                     request: Any) -> None:
    kind = request.node.callspec.params["packaged"]
    hdr_range = {"sdr": "SDR", "pq": "PQ", "hlg": "HLG"}[kind]
    h264, hevc = variant(packaged, "180p"), variant(packaged, "180p-hevc")
    assert h264.stream_info.codecs.startswith("avc1.")
    assert h264.stream_info.codecs.endswith(",mp4a.40.2")
    # Main (1, compatible with Main10: 6) for SDR; Main10 (2, itself only: 4) for HDR.
    prefix = "hvc1.1.6.L" if kind == "sdr" else "hvc1.2.4.L"
    assert hevc.stream_info.codecs.startswith(prefix)
    assert hevc.stream_info.codecs.endswith(",mp4a.40.2")
    assert (h264.stream_info.video_range, hevc.stream_info.video_range) == ("SDR", hdr_range)
    assert h264.stream_info.resolution == hevc.stream_info.resolution == (320, 180)
    assert packaged.text.count("VIDEO-RANGE=SDR") == (2 if kind == "sdr" else 1)
    assert packaged.text.count(f"VIDEO-RANGE={hdr_range}") == (2 if kind == "sdr" else 1)
    # What every box plays is listed first; HEVC pays fewer bits for the same picture.
    assert packaged.master.playlists[0].uri == "180p/index.m3u8"
    assert [r.name for r in packaged.result.renditions] == ["180p", "180p-hevc"]
    if kind == "sdr":
        assert "PQ" not in packaged.text and "HLG" not in packaged.text
    # Trick play stays H.264 SDR: every box can scrub.
    (iframes,) = packaged.master.iframe_playlists
    assert iframes.iframe_stream_info.codecs.startswith("avc1.")


def test_every_rendition_decodes_through_the_encrypted_package(packaged: Packaged) -> None:
    with support.serve(packaged.out) as server:
        server.keys.update(packaged.keys)
        for name in ("180p", "180p-hevc"):
            playlist = m3u8.loads((packaged.out / name / "index.m3u8").read_text())
            assert {s.key.method for s in playlist.segments} == {"AES-128"}
            frames = support.decode(f"{server.base}/{name}/index.m3u8")
            assert frames[0] == FRAMES, name  # video, to the exact frame


def test_hevc_rendition_is_really_hevc_in_its_range(packaged: Packaged, request: Any) -> None:
    kind = request.node.callspec.params["packaged"]
    facts = stream_facts(packaged, "180p-hevc")
    assert (facts["codec_name"], facts["codec_tag_string"]) == ("hevc", "hvc1")
    if kind == "sdr":
        assert (facts["profile"], facts["pix_fmt"]) == ("Main", "yuv420p")
        assert facts.get("color_transfer") in (None, "unknown", "bt709")
    else:
        transfer = {"pq": "smpte2084", "hlg": "arib-std-b67"}[kind]
        assert (facts["profile"], facts["pix_fmt"]) == ("Main 10", "yuv420p10le")
        assert (facts["color_primaries"], facts["color_transfer"], facts["color_space"]) == (
            "bt2020", transfer, "bt2020nc")


def test_sdr_ladder_is_really_sdr(packaged: Packaged) -> None:
    facts = stream_facts(packaged, "180p")
    # 8-bit H.264 (ultrafast x264 makes it Constrained Baseline).
    assert (facts["codec_name"], facts["pix_fmt"]) == ("h264", "yuv420p")
    if packaged.master.playlists[1].stream_info.video_range != "SDR":  # tone-mapped
        assert (facts["color_primaries"], facts["color_transfer"], facts["color_space"]) == (
            "bt709", "bt709", "bt709")


def test_pq_rendition_keeps_the_mastering_metadata(packaged: Packaged, request: Any) -> None:
    kind = request.node.callspec.params["packaged"]
    data = served_probe(packaged, "180p-hevc", "frame=side_data_list:frame_side_data",
                        "-read_intervals", "%+#1")
    side = {s["side_data_type"]: s for s in data["frames"][0].get("side_data_list", [])}
    if kind != "pq":
        assert "Mastering display metadata" not in side
        return
    mastering = side["Mastering display metadata"]
    # make_hdr_clip's values, as ffprobe spells them.
    assert (mastering["red_x"], mastering["green_y"], mastering["white_point_x"]) == (
        "34000/50000", "34500/50000", "15635/50000")
    assert (mastering["max_luminance"], mastering["min_luminance"]) == (
        "10000000/10000", "50/10000")
    cll = side["Content light level metadata"]
    assert (cll["max_content"], cll["max_average"]) == (1000, 400)
