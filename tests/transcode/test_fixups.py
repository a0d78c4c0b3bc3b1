from __future__ import annotations

import pytest

from stb_origin.transcode import fixups
from stb_origin.transcode.fixups import durations, init_uri, retimed, with_init_uri

TRICK = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI="init_6.mp4"
#EXTINF:2.000000,
seg_00000.m4s
#EXTINF:2.000000,
seg_00001.m4s
#EXTINF:2.000000,
seg_00002.m4s
#EXT-X-ENDLIST
"""


def test_durations_and_init_uri() -> None:
    assert durations(TRICK) == ["2.000000"] * 3
    assert init_uri(TRICK) == "init_6.mp4"
    assert init_uri("#EXTM3U\n#EXTINF:2.0,\nseg_00000.ts\n") is None
    renamed = with_init_uri(TRICK, "init.mp4")
    assert init_uri(renamed) == "init.mp4"
    assert renamed.replace('init.mp4"', 'init_6.mp4"') == TRICK


def test_retimed_takes_the_reference_durations() -> None:
    text, dropped = retimed(TRICK, ["2.002000", "2.002000", "0.500000"])
    assert dropped == []
    assert durations(text) == ["2.002000", "2.002000", "0.500000"]
    assert text == TRICK.replace("2.000000,\nseg_00000", "2.002000,\nseg_00000").replace(
        "2.000000,\nseg_00001", "2.002000,\nseg_00001").replace(
        "2.000000,\nseg_00002", "0.500000,\nseg_00002")


def test_retimed_drops_the_extra_last_frame() -> None:
    text, dropped = retimed(TRICK, ["2.002000", "2.002000"])
    assert dropped == ["seg_00002.m4s"]
    assert durations(text) == ["2.002000", "2.002000"]
    assert "seg_00002" not in text
    assert text.endswith("seg_00001.m4s\n#EXT-X-ENDLIST\n")


AUDIO = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:2
#EXT-X-MAP:URI="init.mp4"
#EXTINF:2.005146,
seg_00000.m4s
#EXTINF:2.005438,
seg_00001.m4s
#EXTINF:2.005667,
seg_00002.m4s
#EXTINF:1.041000,
seg_00003.m4s
#EXT-X-ENDLIST
"""


def test_audio_segments_grouped_on_the_video_boundaries() -> None:
    track = fixups.extinf_values(AUDIO)
    assert fixups.grouping(track, [2.0, 4.0, 1.04]) == [1, 2, 1]
    assert fixups.grouping(track, [2.0, 2.0, 2.0, 1.04]) == [1, 1, 1, 1]
    assert fixups.grouping(track, [7.05]) == [4]
    with pytest.raises(ValueError, match="near 3.000"):
        fixups.grouping(track, [3.0, 4.05])
    with pytest.raises(ValueError, match="ends before"):
        fixups.grouping([2.0, 2.0], [2.0, 2.0, 2.0])


def test_regrouped_playlist() -> None:
    text, runs = fixups.regrouped(AUDIO, [1, 2, 1])
    assert runs == [["seg_00000.m4s"], ["seg_00001.m4s", "seg_00002.m4s"], ["seg_00003.m4s"]]
    assert fixups.durations(text) == ["2.005146", "4.011105", "1.041000"]
    assert text.startswith(AUDIO.split("#EXTINF")[0]) and text.endswith("#EXT-X-ENDLIST\n")
    assert "seg_00002" not in text
    with pytest.raises(ValueError, match="4 segments"):
        fixups.regrouped(AUDIO, [1, 1])
    with pytest.raises(ValueError, match="between"):
        fixups.regrouped(AUDIO.replace("seg_00001.m4s", "#EXT-X-DISCONTINUITY\nx"), [4])


def _box(kind: bytes, body: bytes = b"") -> bytes:
    return (8 + len(body)).to_bytes(4, "big") + kind + body


def test_joined_fmp4_keeps_one_styp_and_no_sidx() -> None:
    parts = [_box(b"styp", b"a") + _box(b"sidx", b"1") + _box(b"moof", b"m1")
             + _box(b"mdat", b"d1"),
             _box(b"styp", b"a") + _box(b"sidx", b"2") + _box(b"moof", b"m2")
             + _box(b"mdat", b"d2")]
    assert fixups.joined_fmp4(parts) == (_box(b"styp", b"a") + _box(b"moof", b"m1")
                                         + _box(b"mdat", b"d1") + _box(b"moof", b"m2")
                                         + _box(b"mdat", b"d2"))
    with pytest.raises(ValueError, match="malformed"):
        fixups.joined_fmp4([_box(b"moof", b"m1")[:-1]])


@pytest.mark.parametrize("parts,expected", [
    # 2 s GOPs, 4 s segments whose first 4 s are two 2 s ones.
    (7, [1, 1, 2, 2, 1]),
    (6, [1, 1, 2, 2]),
    (2, [1, 1]),
    (1, [1]),
])
def test_gop_groups_follow_the_grid(parts: int, expected: list[int]) -> None:
    assert fixups.gop_groups(parts, 1, 2, 2) == expected


def test_gop_groups_with_several_gops_in_each_short_segment() -> None:
    # 7 s segments: three short ones of 7/3 s, each two GOPs of 7/6 s; then six a segment.
    assert fixups.gop_groups(20, 2, 3, 6) == [2, 2, 2, 6, 6, 2]
