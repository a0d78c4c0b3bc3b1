"""HDR detection: PQ and HLG from the stream's colour_transfer, HDR10 metadata from
the container's or the first frame's side data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stb_origin.settings import Settings
from stb_origin.transcode import probe
from stb_origin.transcode.probe import Colour, source_from_ffprobe
from tests.support.media import MASTERING_DISPLAY, MAX_CLL, make_hdr_clip
from tests.transcode.support import Clip

SETTINGS = Settings(segment_seconds=2.0)


@pytest.fixture(scope="module")
def hdr_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hdr")


def test_pq_master_with_its_mastering_metadata(hdr_dir: Path, ffmpeg: None) -> None:
    # x265 writes the metadata as SEI only: the probe reads it from the first frame.
    info = probe(make_hdr_clip(hdr_dir / "pq.mp4", "smpte2084"), SETTINGS)
    assert info.video_range == "PQ"
    assert info.colour == Colour("bt2020", "smpte2084", "bt2020nc", MASTERING_DISPLAY, MAX_CLL)
    assert info.bit_depth == 10


def test_hlg_master(hdr_dir: Path, ffmpeg: None) -> None:
    info = probe(make_hdr_clip(hdr_dir / "hlg.mp4", "arib-std-b67"), SETTINGS)
    assert info.video_range == "HLG"
    assert info.colour == Colour("bt2020", "arib-std-b67", "bt2020nc")


def test_sdr_master_is_sdr_even_when_ten_bit(clip: Clip) -> None:
    info = probe(clip("ten-bit-sdr.mp4", pix_fmt="yuv420p10le"), SETTINGS)
    assert info.video_range == "SDR"
    assert info.colour.mastering_display is None


def stream(**fields: Any) -> dict[str, Any]:
    return {"streams": [{"index": 0, "codec_type": "video", "codec_name": "hevc",
                         "width": 3840, "height": 2160, "avg_frame_rate": "24/1",
                         "r_frame_rate": "24/1", **fields}],
            "format": {"duration": "10.0"}}


def test_container_side_data_is_read_and_converted_to_x265_units() -> None:
    info = source_from_ffprobe(stream(
        color_transfer="smpte2084", color_primaries="bt2020", color_space="bt2020nc",
        side_data_list=[
            {"side_data_type": "Mastering display metadata",
             "red_x": "17/25", "red_y": "8/25", "green_x": "53/200", "green_y": "69/100",
             "blue_x": "3/20", "blue_y": "3/50", "white_point_x": "3127/10000",
             "white_point_y": "329/1000", "min_luminance": "1/10000",
             "max_luminance": "4000/1"},
            {"side_data_type": "Content light level metadata", "max_content": 4000,
             "max_average": 0}]), 1)
    assert info.colour.mastering_display == (
        "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(40000000,1)")
    assert info.colour.max_cll == "4000,0"


@pytest.mark.parametrize("side_data", [
    # Missing a value, out of range, not a number, a name smuggled into a number.
    [{"side_data_type": "Mastering display metadata", "red_x": "1/2"}],
    [{"side_data_type": "Content light level metadata", "max_content": 70000,
      "max_average": 1}],
    [{"side_data_type": "Content light level metadata", "max_content": "1:x=2",
      "max_average": 1}],
])
def test_unusable_side_data_is_dropped_not_passed_on(side_data: list[Any]) -> None:
    info = source_from_ffprobe(stream(color_transfer="smpte2084", side_data_list=side_data), 1)
    assert info.video_range == "PQ"
    assert (info.colour.mastering_display, info.colour.max_cll) == (None, None)


def test_odd_colour_names_are_not_passed_on() -> None:
    info = source_from_ffprobe(stream(color_transfer="smpte2084:x=1", color_primaries="unknown"),
                               1)
    assert info.colour == Colour()
    assert info.video_range == "SDR"
