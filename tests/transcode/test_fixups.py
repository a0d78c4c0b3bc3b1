from __future__ import annotations

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
