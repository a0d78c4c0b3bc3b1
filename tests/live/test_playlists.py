"""Live, start-over and catch-up playlists as written from index rows; parsed back by
the m3u8 library."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import m3u8
import pytest

from stb_origin.live.playlists import (
    Segment,
    master_playlist,
    media_playlist,
    rendition_run,
    target_duration,
)
from stb_origin.live.served import Window, _Index, parse_window

T0 = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)


def rows(count: int, first_seq: int = 100, discontinuity_at: tuple[int, ...] = (),
         renditions: tuple[str, ...] = ("720p", "360p")) -> list[Segment]:
    made, disc, at = [], 5, T0
    for n in range(count):
        if n in discontinuity_at:
            disc += 1
            at += timedelta(seconds=0.5)  # an encoder restart leaves a gap
        made.append(Segment(first_seq + n, at, 2.0, disc, 3, f"k{n // 4}", f"{n:032x}",
                            renditions))
        at += timedelta(seconds=2)
    return made


def key_uri(key_id: str) -> str:
    return f"https://keys.example/keys/c/{key_id}"


def test_a_live_window_with_a_discontinuity_parses_back() -> None:
    segments = rows(6, discontinuity_at=(3,))
    text = media_playlist(segments, "720p", 2, key_uri, "live")
    parsed = m3u8.loads(text)
    assert parsed.media_sequence == 100 and parsed.discontinuity_sequence == 5
    assert parsed.target_duration == 2 and not parsed.is_endlist
    assert [s.discontinuity for s in parsed.segments] == [False] * 3 + [True] + [False] * 2
    assert [s.uri for s in parsed.segments][:2] == ["../seg/720p/3-100.ts", "../seg/720p/3-101.ts"]
    assert parsed.segments[4].key.uri == "https://keys.example/keys/c/k1"
    assert parsed.segments[4].key.iv == "0x" + f"{4:032x}"
    assert [s.program_date_time for s in parsed.segments] == [s.starts_at for s in segments]
    assert text.count("#EXT-X-PROGRAM-DATE-TIME:2026-12-07T06:00:00.000Z") == 1


def test_the_window_slid_past_the_discontinuity_keeps_counting() -> None:
    segments = rows(6, discontinuity_at=(3,))[3:]
    parsed = m3u8.loads(media_playlist(segments, "720p", 2, key_uri, "live"))
    # The first listed segment opens discontinuity 6: no tag, the sequence says it.
    assert parsed.discontinuity_sequence == 6
    assert not any(s.discontinuity for s in parsed.segments)


def test_catch_up_ends_and_start_over_is_an_event() -> None:
    segments = rows(3)
    vod = media_playlist(segments, "360p", 2, key_uri, "vod")
    event = media_playlist(segments, "360p", 2, key_uri, "event")
    assert m3u8.loads(vod).is_endlist and m3u8.loads(vod).playlist_type == "vod"
    assert not m3u8.loads(event).is_endlist and m3u8.loads(event).playlist_type == "event"


def test_a_rendition_dropped_by_a_ladder_change_ends_at_the_change() -> None:
    old = rows(3, renditions=("720p", "360p"))
    new = rows(2, first_seq=103, renditions=("360p",))
    assert rendition_run(old + new, "360p") == 0
    assert rendition_run(old + new, "720p") == 5  # none
    assert rendition_run(new + old, "720p") == 2


def test_the_target_is_the_segment_duration_unless_a_segment_was_longer() -> None:
    assert target_duration(2.0, rows(3)) == 2
    assert target_duration(1.5, []) == 2
    long = [Segment(1, T0, 4.6, 0, 1, "k", "0" * 32, ("source",))]
    assert target_duration(2.0, long) == 5


def test_the_master_lists_each_rendition_with_what_it_is() -> None:
    text = master_playlist([
        {"name": "720p", "codecs": "avc1.64001f,mp4a.40.2", "bandwidth": 3_900_000,
         "width": 1280, "height": 720},
        {"name": "source", "codecs": "", "bandwidth": 1_000_000}])
    parsed = m3u8.loads(text)
    assert [p.uri for p in parsed.playlists] == ["720p.m3u8", "source.m3u8"]
    assert parsed.playlists[0].stream_info.resolution == (1280, 720)
    assert parsed.playlists[0].stream_info.codecs == "avc1.64001f,mp4a.40.2"
    assert parsed.playlists[1].stream_info.codecs is None


@pytest.mark.parametrize("folder", [
    "catchup-20-10", "catchup-10-10", "catchup-0-10", "catchup--5-10", "catchup-10-",
    "catchup-1-999999999999999999999", "catchup-10-100000", "startover-", "startover-0",
    "startover--1", "startover-1e9", "startover-99999999999999999999", "livex", "Live"])
def test_hostile_or_impossible_windows_name_nothing(folder: str) -> None:
    assert parse_window(folder) is None


def test_windows_are_read_as_unix_seconds() -> None:
    window = parse_window("catchup-1767225600-1767229200")
    assert window is not None and window.kind == "vod"
    assert window.start == datetime(2026, 1, 1, tzinfo=UTC)
    assert window.end == datetime(2026, 1, 1, 1, tzinfo=UTC)
    started = parse_window("startover-1767225600")
    assert started is not None and started.kind == "event" and started.end is None


def test_a_window_lists_the_segments_that_overlap_it() -> None:
    index = _Index()
    for segment in rows(6):  # 2 s each from T0
        index.segments.append(segment)
        index.starts.append(segment.starts_at)
    at = lambda s: T0 + timedelta(seconds=s)  # noqa: E731
    # The segment running at the start is the first; none starting at the end is listed.
    assert index.window(Window("vod", at(3), at(7)), 2.0, 60) == (1, 4)
    assert index.window(Window("vod", at(4), at(8)), 2.0, 60) == (2, 4)
    assert index.window(Window("event", at(9)), 2.0, 60) == (4, 6)
    assert index.window(Window("event", at(-50)), 2.0, 60) == (0, 6)
    assert index.window(Window("vod", at(20), at(30)), 2.0, 60) == (6, 6)
    assert index.window(Window("live"), 2.0, 6) == (3, 6)
    index.forget_before(at(4))
    assert [s.seq for s in index.segments] == [102, 103, 104, 105]
