from __future__ import annotations

import dataclasses

import pytest

from stb_origin.settings import Settings
from stb_origin.transcode import probe
from stb_origin.transcode.complexity import (
    MIN_SHARE,
    PROBE_PIXELS,
    WINDOW_SECONDS,
    WINDOWS,
    Complexity,
    analyse,
    probe_size,
    rung_bitrate,
    windows,
)
from stb_origin.transcode.ladder import DEFAULT_RUNGS, MIN_VIDEO_BITRATE, plan_ladder
from tests.support.media import CONTENT_KINDS, make_content_clip
from tests.transcode.support import Clip, source

# The H.264 ladder: what the analysis sets (HEVC rungs take their share of it).
SETTINGS = Settings(x264_preset="ultrafast", segment_seconds=2.0, hevc=False)


@pytest.fixture(scope="module")
def analysed(ffmpeg: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Complexity]:
    directory = tmp_path_factory.mktemp("content")
    found = {}
    for kind in CONTENT_KINDS:
        path = make_content_clip(directory / f"{kind}.mp4", kind, seconds=4, size="320x180")
        result = analyse(path, probe(path, SETTINGS), SETTINGS)
        assert result is not None, kind
        found[kind] = result
    return found


def test_the_four_kinds_of_content_rank_in_order_of_complexity(analysed) -> None:
    ranked = sorted(CONTENT_KINDS, key=lambda kind: analysed[kind].bits_per_pixel)
    assert ranked == list(CONTENT_KINDS), {k: v.bits_per_pixel for k, v in analysed.items()}
    top_rates = [plan_ladder(source(), SETTINGS, analysed[kind]).renditions[0].video_bitrate
                 for kind in CONTENT_KINDS]
    assert top_rates == sorted(top_rates)


def test_a_simple_title_gets_lower_bit_rates_never_above_the_caps(analysed) -> None:
    fixed = plan_ladder(source(), SETTINGS)
    for kind in ("slides", "cartoon", "talking_head"):
        ladder = plan_ladder(source(), SETTINGS, analysed[kind])
        assert [r.name for r in ladder.renditions] == [r.name for r in fixed.renditions]
        for own, cap in zip(ladder.renditions, fixed.renditions, strict=True):
            assert own.video_bitrate <= cap.video_bitrate, (kind, own.name)
            assert own.video_bitrate >= max(MIN_VIDEO_BITRATE, MIN_SHARE * cap.video_bitrate)
            assert own.maxrate <= cap.maxrate and own.bufsize <= cap.bufsize
        # The big rungs, where the bits are, are the ones that shrink.
        assert ladder.renditions[0].video_bitrate < fixed.renditions[0].video_bitrate, kind
    slides = plan_ladder(source(), SETTINGS, analysed["slides"])
    assert slides.renditions[0].video_bitrate <= DEFAULT_RUNGS[0].bitrate // 2


def test_a_rung_needs_more_bits_the_bigger_and_busier_it_is() -> None:
    calm = Complexity(bits_per_pixel=0.01, sampled_seconds=10.0, probe_width=320,
                      probe_height=180)
    busy = dataclasses.replace(calm, bits_per_pixel=0.02)
    cap = 500_000
    assert rung_bitrate(calm, 1280, 720, 30, cap) < rung_bitrate(calm, 1920, 1080, 30, cap)
    assert rung_bitrate(busy, 1280, 720, 30, cap) == 2 * rung_bitrate(calm, 1280, 720, 30, cap)
    # Less than in proportion to the pixels: 2.25x the pixels, about 1.84x the bits.
    ratio = rung_bitrate(calm, 1920, 1080, 30, cap) / rung_bitrate(calm, 1280, 720, 30, cap)
    assert 1.7 < ratio < 2.0
    assert rung_bitrate(busy, 1920, 1080, 30, 200_000) == 200_000
    assert rung_bitrate(calm, 320, 180, 30, cap) == MIN_SHARE * cap


def test_a_noisy_high_motion_title_keeps_the_caps(analysed) -> None:
    assert plan_ladder(source(), SETTINGS, analysed["high_motion"]) == plan_ladder(
        source(), SETTINGS)


def test_per_title_rates_stay_under_a_source_that_is_cheaper_still(analysed) -> None:
    cheap = source(video_bitrate=500_000)
    ladder = plan_ladder(cheap, SETTINGS, analysed["talking_head"])
    assert all(r.video_bitrate <= 500_000 for r in ladder.renditions)


def test_without_an_analysis_the_ladder_is_the_fixed_one() -> None:
    full = Complexity(bits_per_pixel=1.0, sampled_seconds=10.0,
                      probe_width=320, probe_height=180)
    assert plan_ladder(source(), SETTINGS, None) == plan_ladder(source(), SETTINGS, full)
    assert [r.video_bitrate for r in plan_ladder(source(), SETTINGS).renditions] == [
        rung.bitrate for rung in DEFAULT_RUNGS]


def test_the_analysis_is_deterministic(clip: Clip) -> None:
    path = clip("complexity-twelve.mp4", seconds=12, size="320x180", audio=False)
    info = probe(path, SETTINGS)
    first = analyse(path, info, SETTINGS)
    assert first is not None
    # Twelve seconds: sampled in windows, not whole.
    assert first.sampled_seconds == pytest.approx(WINDOWS * WINDOW_SECONDS, abs=0.1)
    assert analyse(path, info, SETTINGS) == first


@pytest.mark.parametrize("name, kwargs", [
    ("complexity-one-second.mp4", {"seconds": 1}),
    ("complexity-two-by-two.mkv", {"size": "2x2", "seconds": 2}),
    ("complexity-odd.mp4", {"size": "641x359", "seconds": 2}),
    ("complexity-vfr.mkv", {"vfr": True, "seconds": 3}),
    ("complexity-portrait.mp4", {"rotate": 90, "seconds": 2}),
    ("complexity-interlaced.mp4", {"interlaced": True, "seconds": 2}),
    ("complexity-ten-bit.mp4", {"pix_fmt": "yuv420p10le", "seconds": 2}),
])
def test_odd_and_short_sources_are_analysed(clip: Clip, name: str, kwargs: dict) -> None:
    path = clip(name, audio=False, **kwargs)
    info = probe(path, SETTINGS)
    result = analyse(path, info, SETTINGS)
    assert result is not None
    assert result.bits_per_pixel > 0
    # Shorter than the windows together: the whole source, once.
    assert result.sampled_seconds == pytest.approx(info.duration_s, abs=0.1)
    assert (result.probe_width > result.probe_height) == (info.width > info.height)
    fixed, own = plan_ladder(info, SETTINGS), plan_ladder(info, SETTINGS, result)
    assert [r.name for r in own.renditions] == [r.name for r in fixed.renditions]
    assert all(o.video_bitrate <= f.video_bitrate
               for o, f in zip(own.renditions, fixed.renditions, strict=True))


def test_a_probe_that_cannot_run_leaves_the_caps(clip: Clip) -> None:
    path = clip("complexity-no-audio.mp4", seconds=2, audio=False)
    info = dataclasses.replace(probe(path, SETTINGS), video_stream_index=7)
    assert analyse(path, info, SETTINGS) is None


def test_windows_are_spread_over_the_source_and_inside_it() -> None:
    assert windows(4.0) == [(0.0, 4.0)]
    assert windows(WINDOWS * WINDOW_SECONDS) == [(0.0, WINDOWS * WINDOW_SECONDS)]
    spans = windows(7200.0)
    assert len(spans) == WINDOWS
    assert all(length == WINDOW_SECONDS for _, length in spans)
    starts = [start for start, _ in spans]
    assert starts == sorted(starts) and starts[0] > 0 and starts[-1] + WINDOW_SECONDS < 7200
    # Evenly: one in each fifth of the film.
    assert [int(start // 1440) for start in starts] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("width, height, expected", [
    (1920, 1080, (320, 180)),
    (3840, 2160, (320, 180)),
    (1080, 1920, (180, 320)),
    (320, 180, (320, 180)),
    (2, 2, (2, 2)),
    (641, 359, (320, 180)),
    (100, 60, (100, 60)),
])
def test_probe_size_keeps_the_shape_without_upscaling(width: int, height: int,
                                                      expected: tuple[int, int]) -> None:
    w, h = probe_size(width, height)
    assert (w, h) == expected
    assert w * h <= max(PROBE_PIXELS, width * height) * 1.05


def test_an_audio_only_master_has_nothing_to_analyse(clip: Clip) -> None:
    path = clip("complexity-audio.m4a", seconds=2, video=False)
    assert analyse(path, probe(path, SETTINGS), SETTINGS) is None
