"""The HEVC and HDR parts of the one ffmpeg command: argv compared, nothing run."""

from __future__ import annotations

from pathlib import Path

from stb_origin.settings import Settings
from stb_origin.transcode.argv import build_argv, filter_graph
from stb_origin.transcode.ladder import plan_ladder
from stb_origin.transcode.probe import Colour, SourceInfo
from tests.transcode.support import source

SETTINGS = Settings(segment_seconds=4.0, x265_preset="fast", hevc_min_height=0)
SMALL = source(width=640, height=360, video_bitrate=None)
PQ = Colour(primaries="bt2020", transfer="smpte2084", matrix="bt2020nc",
            mastering_display="G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)"
                              "L(10000000,50)",
            max_cll="1000,400")
HLG = Colour(primaries="bt2020", transfer="arib-std-b67", matrix="bt2020nc")


def argv_for(src: SourceInfo, settings: Settings = SETTINGS) -> list[str]:
    return build_argv(Path("/in/m.mp4"), src, plan_ladder(src, settings), Path("/out"), settings)


def stream_args(argv: list[str], index: int) -> dict[str, str]:
    """The per-stream options of output video stream ``index``, by option name."""
    suffix = f":v:{index}"
    return {arg.removesuffix(suffix): argv[i + 1] for i, arg in enumerate(argv)
            if arg.endswith(suffix)}


def test_hevc_rungs_are_more_outputs_of_the_same_split() -> None:
    graph = filter_graph(SMALL, plan_ladder(SMALL, SETTINGS))
    # One split of the source; the picked trick-play frames are split per tier.
    assert graph.count("split=") == 2 and "split=1[t0];" in graph
    assert graph.startswith("[0:0]fps=30/1,split=5[s0][s1][s2][s3][st];")
    assert "[s2]scale=640:360,format=yuv420p,setsar=1[v2]" in graph
    assert "[s3]scale=416:234,format=yuv420p,setsar=1[v3]" in graph
    assert "zscale" not in graph and "tonemap" not in graph


def test_hevc_rung_uses_x265_with_hvc1_on_the_same_key_frame_grid() -> None:
    argv = argv_for(SMALL)
    h264, hevc, trick = stream_args(argv, 0), stream_args(argv, 2), stream_args(argv, 4)
    assert "-c" not in h264 and "-c" not in trick  # the x264 default every stream gets
    assert hevc == {
        "-b": "237250", "-maxrate": "296562", "-bufsize": "474500", "-profile": "main",
        "-g": "60", "-c": "libx265", "-preset": "fast", "-tag": "hvc1",
        "-x265-params": "log-level=error:scenecut=0:open-gop=0",
    }
    # The per-stream codec comes after the default, so it wins.
    assert argv.index("-c:v") < argv.index("-c:v:2")
    # One key-frame expression for every video stream: the segment grid is shared.
    assert len([a for a in argv if a.startswith("-force_key_frames")]) == 1
    assert argv[argv.index("-var_stream_map") + 1] == (
        "v:0,name:360p v:1,name:234p v:2,name:360p-hevc v:3,name:234p-hevc"
        " a:0,name:audio0_aac v:4,name:iframes_234p")


def test_sdr_source_keeps_its_colours_untouched() -> None:
    argv = argv_for(SMALL)
    assert not [a for a in argv if a.startswith(("-color", "-colorspace"))]


def test_pq_source_splits_once_for_hdr_and_once_after_the_tone_map() -> None:
    src = source(width=640, height=360, video_bitrate=None, colour=PQ)
    graph = filter_graph(src, plan_ladder(src, SETTINGS))
    chains = graph.split(";")
    assert chains[0] == "[0:0]fps=30/1,split=2[hdr][sdr]"
    assert chains[1] == "[hdr]split=2[s2][s3]"
    assert chains[2] == (
        "[sdr]zscale=tin=smpte2084:pin=2020:min=2020_ncl:t=linear:npl=100,format=gbrpf32le,"
        "zscale=p=709,tonemap=tonemap=hable:desat=0,zscale=t=709:m=709:r=tv,split=3[s0][s1][st]")
    assert "[s2]scale=640:360,format=yuv420p10le,setsar=1[v2]" in graph
    assert "[s0]scale=640:360,format=yuv420p,setsar=1[v0]" in graph


def test_pq_rung_is_main10_hdr10_with_the_source_mastering_metadata() -> None:
    argv = argv_for(source(width=640, height=360, colour=PQ))
    hdr = stream_args(argv, 2)
    assert hdr["-profile"] == "main10"
    assert hdr["-x265-params"] == (
        "log-level=error:scenecut=0:open-gop=0:colorprim=bt2020:transfer=smpte2084"
        ":colormatrix=bt2020nc:hdr10=1"
        ":master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,50)"
        ":max-cll=1000,400")
    assert (hdr["-color_primaries"], hdr["-color_trc"], hdr["-colorspace"]) == (
        "bt2020", "smpte2084", "bt2020nc")
    for sdr in (stream_args(argv, 0), stream_args(argv, 4)):  # a rung and trick play
        assert (sdr["-color_primaries"], sdr["-color_trc"], sdr["-colorspace"]) == (
            "bt709", "bt709", "bt709")
        assert "-c" not in sdr


def test_hlg_rung_keeps_hlg_and_gets_no_hdr10_metadata() -> None:
    argv = argv_for(source(width=640, height=360, colour=HLG))
    params = stream_args(argv, 2)["-x265-params"]
    assert "transfer=arib-std-b67" in params
    assert "hdr10" not in params and "master-display" not in params
    assert "zscale=tin=arib-std-b67:" in argv[argv.index("-filter_complex") + 1]


def test_hdr_source_without_hevc_is_tone_mapped_without_an_hdr_branch() -> None:
    src = source(width=640, height=360, video_bitrate=None, colour=PQ)
    graph = filter_graph(src, plan_ladder(src, SETTINGS.with_(hevc=False)))
    assert graph.startswith("[0:0]fps=30/1,zscale=tin=smpte2084:")
    assert "[hdr]" not in graph and "yuv420p10le" not in graph
