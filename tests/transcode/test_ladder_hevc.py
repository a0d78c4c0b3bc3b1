"""The HEVC ladder beside the H.264 one, and what an HDR source gets."""

from __future__ import annotations

from stb_origin.settings import Settings
from stb_origin.transcode.ladder import HEVC, plan_ladder
from stb_origin.transcode.probe import Colour
from tests.transcode.support import source

SETTINGS = Settings(segment_seconds=4.0)
PQ = Colour(primaries="bt2020", transfer="smpte2084", matrix="bt2020nc")
HLG = Colour(primaries="bt2020", transfer="arib-std-b67", matrix="bt2020nc")


def family(ladder, codec):  # type: ignore[no-untyped-def]
    return [r for r in ladder.renditions if r.codec == codec]


def test_hd_source_gets_hevc_on_its_top_rungs_at_lower_bit_rates() -> None:
    ladder = plan_ladder(source(), SETTINGS)
    h264 = {r.name: r for r in ladder.renditions if r.codec == "h264"}
    hevc = family(ladder, HEVC)
    assert [(r.name, r.width, r.height) for r in hevc] == [
        ("1080p-hevc", 1920, 1080), ("720p-hevc", 1280, 720)]
    for r in hevc:
        twin = h264[r.name.removesuffix("-hevc")]
        assert r.video_bitrate == int(twin.video_bitrate * 0.65)
        assert (r.profile, r.level, r.video_range) == ("main", None, "SDR")
        assert r.maxrate > r.video_bitrate and r.bufsize >= r.maxrate
    # H.264 first: what every box plays leads the ladder.
    assert ladder.renditions[0].name == "1080p"
    assert len(h264) == 6


def test_hevc_policy_is_a_setting() -> None:
    every = plan_ladder(source(), SETTINGS.with_(hevc_min_height=0))
    assert len(family(every, HEVC)) == 6
    assert family(plan_ladder(source(), SETTINGS.with_(hevc=False)), HEVC) == []


def test_no_hevc_in_mpeg_ts() -> None:
    # Apple's HLS authoring spec 1.5: HEVC only in fMP4.
    ladder = plan_ladder(source(), SETTINGS.with_(segment_format="ts"))
    assert family(ladder, HEVC) == []


def test_4k_source_gets_a_2160p_rung_in_hevc_only() -> None:
    ladder = plan_ladder(source(width=3840, height=2160, video_bitrate=None), SETTINGS)
    assert ladder.renditions[0].name == "1080p"
    (uhd, *_rest) = family(ladder, HEVC)
    assert (uhd.name, uhd.width, uhd.height) == ("2160p-hevc", 3840, 2160)
    # Apple's HEVC table: 11.6 Mb/s at 2160p, up to 30 fps.
    assert 11_500_000 <= uhd.video_bitrate <= 11_700_000
    no_uhd = plan_ladder(source(width=3840, height=2160), SETTINGS.with_(uhd_rung=False))
    assert family(no_uhd, HEVC)[0].name == "1080p-hevc"


def test_hd_source_gets_no_2160p_rung() -> None:
    assert "2160p-hevc" not in [r.name for r in plan_ladder(source(), SETTINGS).renditions]


def test_pq_source_gets_main10_pq_on_every_rung_and_an_sdr_h264_ladder() -> None:
    ladder = plan_ladder(source(colour=PQ, pix_fmt="yuv420p10le", bit_depth=10), SETTINGS)
    h264, hevc = [r for r in ladder.renditions if r.codec == "h264"], family(ladder, HEVC)
    assert len(h264) == len(hevc) == 6
    assert {(r.profile, r.video_range) for r in hevc} == {("main10", "PQ")}
    assert {r.video_range for r in h264} == {"SDR"}
    assert {t.video_range for t in ladder.iframes} == {"SDR"}


def test_hlg_source_is_labelled_hlg() -> None:
    ladder = plan_ladder(source(colour=HLG), SETTINGS)
    assert {r.video_range for r in family(ladder, HEVC)} == {"HLG"}


def test_hdr_source_without_hevc_is_only_tone_mapped_sdr() -> None:
    ladder = plan_ladder(source(colour=PQ), SETTINGS.with_(hevc=False))
    assert {(r.codec, r.video_range) for r in ladder.renditions} == {("h264", "SDR")}


def test_sdr_source_never_gets_an_hdr_label() -> None:
    ladder = plan_ladder(source(colour=Colour("bt709", "bt709", "bt709")),
                         SETTINGS.with_(hevc_min_height=0))
    assert {r.video_range for r in ladder.renditions} == {"SDR"}
