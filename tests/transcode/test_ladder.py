from __future__ import annotations

import pytest

from stb_origin.settings import Settings
from stb_origin.transcode.ladder import (
    KEYFRAME_SECONDS,
    START_SEGMENT_SECONDS,
    Ladder,
    exact_rate,
    grid,
    h264_level,
    output_fps,
    plan_ladder,
)
from tests.transcode.support import source, track

# The H.264 ladder; test_ladder_hevc.py has the HEVC and HDR ones.
SETTINGS = Settings(segment_seconds=4.0, hevc=False)


def sizes(ladder: Ladder) -> list[tuple[str, int, int]]:
    return [(r.name, r.width, r.height) for r in ladder.renditions]


def test_full_hd_source_gets_the_whole_apple_style_ladder() -> None:
    ladder = plan_ladder(source(), SETTINGS)
    assert sizes(ladder) == [
        ("1080p", 1920, 1080), ("720p", 1280, 720), ("540p", 960, 540),
        ("432p", 768, 432), ("360p", 640, 360), ("234p", 416, 234),
    ]
    assert [r.video_bitrate for r in ladder.renditions] == [
        6_000_000, 3_000_000, 2_000_000, 1_100_000, 365_000, 145_000]
    assert [r.level for r in ladder.renditions] == ["4.0", "3.1", "3.1", "3.0", "3.0", "3.0"]
    assert {r.profile for r in ladder.renditions} == {"high"}
    for r in ladder.renditions:
        assert r.maxrate > r.video_bitrate
        assert r.bufsize >= r.maxrate
    assert ladder.fps == 30.0
    assert ladder.segment_seconds == 4.0
    (audio,) = ladder.audio
    assert (audio.group, audio.codec, audio.channels, audio.bitrate, audio.sample_rate) == (
        "audio-aac", "aac", 2, 128_000, 48_000)


def test_never_upscales() -> None:
    ladder = plan_ladder(source(width=1280, height=720), SETTINGS)
    assert sizes(ladder)[0] == ("720p", 1280, 720)
    assert all(r.height <= 720 and r.width <= 1280 for r in ladder.renditions)


def test_4k_source_tops_out_at_1080p() -> None:
    ladder = plan_ladder(source(width=3840, height=2160), SETTINGS)
    assert sizes(ladder)[0] == ("1080p", 1920, 1080)


def test_source_just_under_a_rung_gets_that_rung_at_source_size() -> None:
    ladder = plan_ladder(source(width=1900, height=1068), SETTINGS)
    assert sizes(ladder)[0] == ("1080p", 1900, 1068)


def test_odd_source_gives_even_sizes_no_larger_than_the_source() -> None:
    ladder = plan_ladder(source(width=641, height=359), SETTINGS)
    for r in ladder.renditions:
        assert r.width % 2 == 0 and r.height % 2 == 0
        assert r.width <= 641 and r.height <= 359
    assert sizes(ladder)[0] == ("360p", 640, 358)


@pytest.mark.parametrize("width,height", [(1920, 1080), (1440, 1080), (1920, 800), (1024, 576),
                                          (1080, 1920), (720, 1280), (853, 480)])
def test_aspect_ratio_kept_and_sizes_even(width: int, height: int) -> None:
    ladder = plan_ladder(source(width=width, height=height), SETTINGS)
    for r in (*ladder.renditions, *ladder.iframes):
        assert r.width % 2 == 0 and r.height % 2 == 0
        # Within the rounding to even numbers.
        assert abs(r.width / r.height - width / height) <= 2.5 / r.height * (width / height)


def test_scope_source_keeps_full_width_and_pays_for_fewer_pixels() -> None:
    ladder = plan_ladder(source(width=1920, height=800), SETTINGS)
    top = ladder.renditions[0]
    assert (top.name, top.width, top.height) == ("1080p", 1920, 800)
    assert top.video_bitrate < 6_000_000


def test_portrait_source_gets_portrait_rungs() -> None:
    # A phone video: probe already reports display dimensions (rotation applied).
    ladder = plan_ladder(source(width=1080, height=1920, rotation=90), SETTINGS)
    assert sizes(ladder)[:3] == [("1080p", 1080, 1920), ("720p", 720, 1280), ("540p", 540, 960)]
    assert all(r.height > r.width for r in ladder.renditions)


def test_tiny_source_gets_one_rung_at_its_own_size() -> None:
    ladder = plan_ladder(source(width=321, height=181, video_bitrate=None), SETTINGS)
    assert sizes(ladder) == [("180p", 320, 180)]
    only = ladder.renditions[0]
    assert 64_000 <= only.video_bitrate <= 145_000
    assert [(t.name, t.width, t.height) for t in ladder.iframes] == [("iframes_180p", 320, 180)]


def test_bitrates_capped_by_the_source_without_duplicate_rungs() -> None:
    ladder = plan_ladder(source(video_bitrate=2_500_000), SETTINGS)
    rates = [r.video_bitrate for r in ladder.renditions]
    assert max(rates) == 2_500_000
    assert rates == sorted(rates, reverse=True) and len(set(rates)) == len(rates)
    # 1080p and 720p would both be 2.5 Mb/s: the sharper one stays.
    assert sizes(ladder)[:2] == [("1080p", 1920, 1080), ("540p", 960, 540)]


def test_unknown_source_bitrate_leaves_the_table_alone() -> None:
    ladder = plan_ladder(source(video_bitrate=None), SETTINGS)
    assert ladder.renditions[0].video_bitrate == 6_000_000


def test_high_frame_rate_gets_more_bits_and_a_higher_level() -> None:
    ladder = plan_ladder(source(fps=60.0), SETTINGS)
    top = ladder.renditions[0]
    assert ladder.fps == 60.0
    assert top.video_bitrate == 7_800_000
    assert top.level == "4.2"


@pytest.mark.parametrize("fps,vfr,expected", [
    (30.0, False, "30"),
    (29.97, False, "30000/1001"),
    (23.976, False, "24000/1001"),
    (25.0, False, "25"),
    (59.94, False, "60000/1001"),
    (120.0, False, "60"),
    (100.0, False, "50"),
    (15.0, False, "15"),
    (14.2, True, "24"),
    (29.4, True, "30"),
    (200.0, True, "60"),
])
def test_output_frame_rate(fps: float, vfr: bool, expected: str) -> None:
    assert str(output_fps(fps, vfr)) == expected


def test_variable_frame_rate_source_becomes_constant() -> None:
    ladder = plan_ladder(source(fps=29.3, variable_frame_rate=True), SETTINGS)
    assert ladder.fps == 30.0
    assert exact_rate(plan_ladder(source(fps=29.97), SETTINGS).fps) == exact_rate(30000 / 1001)


def test_video_only_source() -> None:
    assert plan_ladder(source(audio_tracks=()), SETTINGS).audio == ()


@pytest.mark.parametrize("rate,kept", [(44_100, 44_100), (32_000, 48_000), (96_000, 48_000)])
def test_audio_sample_rate_44k1_kept_others_become_48k(rate: int, kept: int) -> None:
    ladder = plan_ladder(source(audio_tracks=(track(1, sample_rate=rate),)), SETTINGS)
    assert [a.sample_rate for a in ladder.audio] == [kept]


def test_one_iframe_track_per_resolution_tier() -> None:
    ladder = plan_ladder(source(), SETTINGS.with_(segment_seconds=2.0))
    assert [(t.name, t.width, t.height) for t in ladder.iframes] == [
        ("iframes_1080p", 1920, 1080), ("iframes_720p", 1280, 720),
        ("iframes_432p", 768, 432), ("iframes_234p", 416, 234)]
    by_name = {r.name: r for r in ladder.renditions}
    for trick in ladder.iframes:
        # One intra frame per 2 s segment at 1 bit a pixel: cheaper than the rendition.
        assert trick.video_bitrate == trick.width * trick.height // 2
        assert trick.video_bitrate < by_name[trick.name.removeprefix("iframes_")].video_bitrate
        assert trick.bufsize >= 2 * trick.width * trick.height


@pytest.mark.parametrize("width,height,tiers", [
    # Only the tiers the source fills; the smallest rung always.
    (1280, 720, ["720p", "432p", "234p"]),
    (960, 540, ["432p", "234p"]),
    (640, 360, ["234p"]),
    (321, 181, ["180p"]),
    (1080, 1920, ["1080p", "720p", "432p", "234p"]),
])
def test_iframe_tiers_follow_the_ladder(width: int, height: int, tiers: list[str]) -> None:
    ladder = plan_ladder(source(width=width, height=height, video_bitrate=None), SETTINGS)
    assert [t.name for t in ladder.iframes] == [f"iframes_{tier}" for tier in tiers]
    sizes_by_name = {r.name: (r.width, r.height) for r in ladder.renditions}
    for tier, trick in zip(tiers, ladder.iframes, strict=True):
        assert (trick.width, trick.height) == sizes_by_name[tier]


@pytest.mark.parametrize("width,height,fps,maxrate,level", [
    (1920, 1080, 30, 7_500_000, "4.0"),
    (1920, 1080, 60, 9_750_000, "4.2"),
    (1920, 1080, 30, 40_000_000, "4.1"),
    (1280, 720, 30, 3_750_000, "3.1"),
    (1280, 720, 60, 4_875_000, "3.2"),
    (416, 234, 30, 200_000, "3.0"),
    (3840, 2160, 30, 20_000_000, "5.1"),
])
def test_h264_level(width: int, height: int, fps: float, maxrate: int, level: str) -> None:
    assert h264_level(width, height, fps, maxrate) == level


@pytest.mark.parametrize("seconds,first", [
    (1.0, 1), (2.0, 1), (3.0, 1), (4.0, 2), (5.0, 2), (6.0, 3), (10.0, 5), (20.0, 10),
])
def test_first_segment_duration_cut_into_short_segments(seconds: float, first: int) -> None:
    # None shorter than START_SEGMENT_SECONDS; 2 s segments (the e2e tests') stay as they are.
    ladder = plan_ladder(source(), SETTINGS.with_(segment_seconds=seconds))
    assert ladder.first_segments == first
    assert first == 1 or seconds / first >= START_SEGMENT_SECONDS
    assert ladder.to_json()["first_segments"] == first


def test_audio_only_source_has_audio_renditions_and_no_video() -> None:
    src = source(width=0, height=0, fps=0.0, video_stream_index=None, video_bitrate=None,
                 audio_tracks=(track(0, language="eng"), track(1, language="fra")))
    ladder = plan_ladder(src, SETTINGS.with_(segment_seconds=6.0))
    assert ladder.renditions == () and ladder.iframes == ()
    assert [a.name for a in ladder.audio] == ["audio0_aac", "audio1_aac"]
    assert (ladder.segment_seconds, ladder.first_segments) == (6.0, 3)
    assert ladder.to_json()["iframes"] == []


@pytest.mark.parametrize("seconds,gop", [
    (1.0, 1.0), (2.0, 2.0), (3.0, 1.5), (4.0, 2.0), (5.0, 1.25), (6.0, 2.0), (7.0, 7 / 6),
    (10.0, 2.0), (20.0, 2.0),
])
def test_key_frames_every_two_seconds_or_the_nearest_that_fills_a_segment(
        seconds: float, gop: float) -> None:
    ladder = plan_ladder(source(), SETTINGS.with_(segment_seconds=seconds))
    assert ladder.gop_seconds == pytest.approx(gop)
    assert ladder.gop_seconds <= KEYFRAME_SECONDS == 2.0
    g = grid(ladder)
    # Every segment, short or not, is a whole number of GOPs.
    assert g.gops_per_short * g.gop == g.short
    assert g.gops_per_segment * g.gop == g.segment
    assert ladder.to_json()["gop_seconds"] == ladder.gop_seconds


def test_captions_are_kept_when_every_frame_is() -> None:
    ladder = plan_ladder(source(closed_captions=True, fps=29.97), SETTINGS)
    assert ladder.closed_captions and ladder.warnings == ()
    assert not plan_ladder(source(), SETTINGS).closed_captions


@pytest.mark.parametrize("changes", [{"fps": 120.0}, {"fps": 24.0, "variable_frame_rate": True}])
def test_captions_are_left_out_with_a_warning_when_frames_are_dropped_or_repeated(
        changes: dict[str, object]) -> None:
    ladder = plan_ladder(source(closed_captions=True, **changes), SETTINGS)
    assert not ladder.closed_captions
    (warning,) = ladder.warnings
    assert warning.startswith("closed captions left out: the frame rate changes")


def test_sidecar_audio_comes_after_the_master_s_tracks() -> None:
    dub = track(0, language="ita", title="Italiano", input_index=2, channels=6)
    ladder = plan_ladder(source(audio_tracks=(track(1, default=True),)), SETTINGS,
                         sidecar_audio=[dub])
    assert [(a.name, a.group, a.input_index, a.source_index, a.default)
            for a in ladder.audio] == [
        ("audio0_aac", "audio-aac", 0, 1, True), ("audio1_aac", "audio-aac", 2, 0, False),
        ("audio1_ec3", "audio-ec3", 2, 0, True)]
