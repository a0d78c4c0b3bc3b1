"""Span by span (the chunked path) makes what one run makes: the same frames, key
frames and segments in every rendition and the trick-play track."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from stb_origin import proc
from stb_origin.settings import Settings
from stb_origin.storage.layout import MEDIA_PLAYLIST
from stb_origin.transcode import fixups, plan_ladder, probe, transcode
from stb_origin.transcode.run import finish, transcode_audio, transcode_span
from stb_origin.transcode.spans import Span, boundary, plan_spans
from stb_origin.transcode.stitch import stitch
from tests.transcode.support import Clip

TIMEOUT = 120.0


def _packets(playlist: Path) -> list[tuple[str, bool]]:
    """(pts_time, key frame) of every video packet, read through the playlist."""
    out = proc.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                    "packet=pts_time,flags", "-of", "json", str(playlist)],
                   timeout=TIMEOUT).stdout
    return [(p["pts_time"], "K" in p["flags"]) for p in json.loads(out)["packets"]]


def _frames(playlist: Path) -> int:
    """Frames ffmpeg decodes from the playlist."""
    out = proc.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(playlist), "-map", "0:v:0",
                    "-f", "framecrc", "-"], timeout=TIMEOUT).stdout
    return sum(1 for line in out.splitlines() if line and not line.startswith("#"))


def _encode_in_spans(source_path: Path, settings: Settings, out: Path,
                     span_seconds: float) -> tuple[Span, ...]:
    source = probe(source_path, settings)
    ladder = plan_ladder(source, settings)
    spans = plan_spans(ladder, source.duration_s, span_seconds)
    dirs = [out.parent / f"span{s.index}" for s in spans]
    for span, span_dir in zip(spans, dirs, strict=True):
        transcode_span(source_path, source, ladder, span, span_dir, settings)
    transcode_audio(source_path, source, ladder, out, settings)
    stitch(dirs, spans, ladder, out)
    finish(out, ladder, settings, source.duration_s)
    return spans


@pytest.mark.parametrize("segment_format", ["fmp4", "ts"])
def test_spans_stitch_to_what_one_run_makes(clip: Clip, tmp_path: Path,
                                            segment_format: str) -> None:
    # 29.97 fps: 4 s segments are 119.88 frames, so boundaries fall 120, 120, 119... apart.
    source_path = clip("spans.mp4", seconds=30, size="640x360", fps="30000/1001")
    settings = Settings(x264_preset="ultrafast", segment_seconds=4.0,
                        segment_format=segment_format)
    source = probe(source_path, settings)
    ladder = plan_ladder(source, settings)
    whole = tmp_path / "whole"
    transcode(source_path, source, ladder, whole, settings)
    stitched = tmp_path / "spans" / "out"
    spans = _encode_in_spans(source_path, settings, stitched, span_seconds=8)
    assert len(spans) == 5  # 8 s, then the last two halved: 4, 4, 4, and the rest

    for name in [r.name for r in ladder.renditions] + [t.name for t in ladder.iframes]:
        one = (whole / name / MEDIA_PLAYLIST).read_text()
        many = (stitched / name / MEDIA_PLAYLIST).read_text()
        assert fixups.durations(many) == fixups.durations(one), name
        assert _packets(stitched / name / MEDIA_PLAYLIST) == \
            _packets(whole / name / MEDIA_PLAYLIST), name
    for rendition in ladder.renditions:
        assert _frames(stitched / rendition.name / MEDIA_PLAYLIST) == 900
    for audio in ladder.audio:
        assert (stitched / audio.name / MEDIA_PLAYLIST).read_text() == \
            (whole / audio.name / MEDIA_PLAYLIST).read_text()
    leftovers = {p.name for p in stitched.rglob("init_*.mp4")}
    assert not leftovers


def test_plan_spans_cuts_on_the_regular_grid() -> None:
    settings = Settings(segment_seconds=4.0)
    ladder = dataclasses.replace(
        plan_ladder(_source(), settings), fps=30000 / 1001, first_segments=2)
    spans = plan_spans(ladder, 41.0, span_seconds=20)
    assert [(s.start_unit, s.end_unit) for s in spans] == [(0, 5), (5, None)]
    assert [s.start_frame for s in spans] == [0, 600]  # ceil(20 s * 29.97)
    assert [s.end_frame for s in spans] == [600, None]
    # Files are one 2 s GOP each, numbered as in one run: two per 4 s unit.
    assert [s.first_file for s in spans] == [0, 10]
    assert boundary(ladder, 1) == 120 and boundary(ladder, 9) == 1079


def test_the_last_two_spans_are_cut_in_half_so_no_worker_waits_for_a_whole_one() -> None:
    ladder = plan_ladder(_source(), Settings(segment_seconds=4.0))
    spans = plan_spans(ladder, 61.0, span_seconds=20)
    assert [(s.start_unit, s.end_unit) for s in spans] == [
        (0, 5), (5, 7), (7, 10), (10, 12), (12, None)]
    assert [s.index for s in spans] == [0, 1, 2, 3, 4]
    # 10 min in 60 s spans: eight whole ones, then four halves.
    ten = plan_spans(ladder, 600.0, span_seconds=60)
    assert [s.start_unit for s in ten] == [0, 15, 30, 45, 60, 75, 90, 105, 120, 127, 135, 142]
    # A span of one segment has no half: nothing is cut.
    assert len(plan_spans(ladder, 61.0, span_seconds=4)) == 15


def test_a_master_shorter_than_two_spans_is_one_span() -> None:
    ladder = plan_ladder(_source(), Settings(segment_seconds=4.0))
    assert [(s.start_unit, s.end_unit) for s in plan_spans(ladder, 30.0, 20)] == [(0, None)]
    assert [(s.start_unit, s.end_unit) for s in plan_spans(ladder, 3.0, 20)] == [(0, None)]


def _source():  # type: ignore[no-untyped-def]
    from tests.transcode.support import source

    return source(duration_s=61.0)
