"""The encoder's segment list, read as ffmpeg appends to it."""

from __future__ import annotations

from pathlib import Path

from stb_origin.live.encoder import LIST_NAME, SegmentList


def test_each_read_goes_on_from_the_last_and_waits_for_a_whole_line(tmp_path: Path) -> None:
    listed = SegmentList(tmp_path)
    assert listed.after(0) == []  # ffmpeg has not written it yet
    path = tmp_path / LIST_NAME
    path.write_bytes(b"seg_00000.ts,0.000000,2.000000\nseg_00001.ts,2.0000")
    first = listed.after(0)
    assert [(d.index, d.path.name, d.start, d.end) for d in first] == \
        [(0, "seg_00000.ts", 0.0, 2.0)]
    with path.open("ab") as file:  # the half-written line ends, another follows
        file.write(b"00,4.000000\nseg_00002.ts,4.000000,6.000000\n")
    assert [(d.index, d.start) for d in listed.after(0)] == [(0, 0.0), (1, 2.0), (2, 4.0)]
    assert [d.index for d in listed.after(2)] == [2]  # two published: skipped
    assert [d.index for d in listed.after(2)] == [2]  # nothing new, nothing lost
    with path.open("ab") as file:
        file.write(b"seg_00003.ts,6.000000,8.000000\n")
    assert [d.path.name for d in listed.after(3)] == ["seg_00003.ts"]
