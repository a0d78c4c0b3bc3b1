from __future__ import annotations

import dataclasses
import math
from fractions import Fraction
from pathlib import Path

import pytest

from stb_origin.settings import Settings
from stb_origin.transcode.argv import build_argv, build_audio_argv, filter_graph
from stb_origin.transcode.inputs import SAFE_DEMUXERS
from stb_origin.transcode.ladder import plan_ladder
from stb_origin.transcode.loudness import Loudness
from stb_origin.transcode.probe import SourceInfo
from tests.transcode.support import source, track

# The H.264 ladder; test_argv_hevc.py has the HEVC and HDR ones.
SETTINGS = Settings(segment_seconds=4.0, x264_preset="veryfast", hevc=False)
SRC = Path("/media/in/master.mp4")
OUT = Path("/media/out")


def argv_for(src: SourceInfo, settings: Settings = SETTINGS) -> list[str]:
    return build_argv(SRC, src, plan_ladder(src, settings), OUT, settings)


def values(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv) if arg == flag]


def value(argv: list[str], flag: str) -> str:
    (only,) = values(argv, flag)
    return only


SMALL = source(width=640, height=360, video_bitrate=None)


def test_small_source_argv_exactly() -> None:
    assert argv_for(SMALL) == [
        "ffmpeg", "-nostdin", "-hide_banner", "-y", "-loglevel", "error",
        "-nostats", "-progress", "pipe:1",
        "-protocol_whitelist", "file",
        "-format_whitelist", "mov,matroska,mpegts,mpeg,avi,flv,mxf,asf,ogg,dv,wav,mp3,aac,flac",
        "-i", "file:/media/in/master.mp4",
        "-filter_complex",
        ("[0:0]fps=30/1,split=3[s0][s1][st];"
         "[s0]scale=640:360,format=yuv420p,setsar=1[v0];"
         "[s1]scale=416:234,format=yuv420p,setsar=1[v1];"
         "[st]fps=fps=1/2:round=up:start_time=0,select='lt(n,2)+not(mod(n,2))',split=1[t0];"
         "[t0]scale=416:234,format=yuv420p,setsar=1[vt0]"),
        "-map", "[v0]", "-map", "[v1]", "-map", "0:1", "-map", "[vt0]",
        "-map_metadata", "-1", "-map_chapters", "-1",
        "-fps_mode:v", "passthrough",
        "-c:v", "libx264", "-preset", "veryfast", "-sc_threshold:v", "0",
        "-flags:v", "+cgop", "-forced-idr:v", "1",
        "-force_key_frames:v", "expr:gte(t,n_forced*2)",
        "-a53cc:v:0", "0",
        "-b:v:0", "365000", "-maxrate:v:0", "456250", "-bufsize:v:0", "730000",
        "-profile:v:0", "high", "-level:v:0", "3.0", "-g:v:0", "60",
        "-a53cc:v:1", "0",
        "-b:v:1", "145000", "-maxrate:v:1", "181250", "-bufsize:v:1", "290000",
        "-profile:v:1", "high", "-level:v:1", "3.0", "-g:v:1", "60",
        "-a53cc:v:2", "0",
        "-b:v:2", "24336", "-maxrate:v:2", "48672", "-bufsize:v:2", "194688",
        "-profile:v:2", "high", "-level:v:2", "3.0", "-g:v:2", "1",
        "-bsf:v:2", "setts=duration='if(eq(NEXT_PTS,NOPTS),DURATION,NEXT_PTS-PTS)'",
        "-c:a:0", "aac", "-b:a:0", "128000", "-ac:a:0", "2", "-ar:a:0", "48000",
        "-filter:a:0", "aformat=channel_layouts=stereo,apad=whole_dur=60.000",
        "-max_muxing_queue_size", "4096",
        "-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod", "-hls_list_size", "0",
        "-hls_flags", "independent_segments", "-hls_segment_type", "fmp4",
        "-hls_fmp4_init_filename", "init.mp4",
        "-hls_segment_filename", "/media/out/%v/seg_%05d.m4s",
        "-var_stream_map", "v:0,name:360p v:1,name:234p a:0,name:audio0_aac v:2,name:iframes_234p",
        "/media/out/%v/index.m3u8",
    ]


def test_one_ffmpeg_process_one_input_one_output() -> None:
    argv = argv_for(source())
    assert argv[0] == "ffmpeg"
    assert argv.count("-i") == 1
    assert argv.count("-f") == 1 and value(argv, "-f") == "hls"
    assert argv[-1] == "/media/out/%v/index.m3u8"


def test_input_is_locked_to_local_files_and_real_containers() -> None:
    argv = argv_for(source())
    i = argv.index("-i")
    # Input options only count when they come before -i.
    assert argv.index("-protocol_whitelist") < i and argv.index("-format_whitelist") < i
    assert value(argv, "-protocol_whitelist") == "file"
    allowed = set(value(argv, "-format_whitelist").split(","))
    assert allowed == set(SAFE_DEMUXERS)
    for dangerous in ("hls", "applehttp", "concat", "image2", "image2pipe", "tty", "lavfi",
                      "dash", "rtsp", "sdp", "rtp", "http", "data", "subfile", "ffmetadata"):
        assert dangerous not in allowed
    assert value(argv, "-i") == "file:/media/in/master.mp4"


def test_relative_paths_become_absolute_file_urls(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    src = source()
    argv = build_argv(Path("up:load.mp4"), src, plan_ladder(src, SETTINGS), Path("out"), SETTINGS)
    assert value(argv, "-i") == f"file:{tmp_path}/up:load.mp4"
    assert argv[-1] == f"{tmp_path}/out/%v/index.m3u8"


def test_split_once_into_every_rung_plus_trickplay_tiers() -> None:
    src = source()
    ladder = plan_ladder(src, SETTINGS)
    graph = filter_graph(src, ladder)
    assert len(ladder.renditions) == 6
    assert graph.count("split=7") == 1 and "split=7[s0][s1][s2][s3][s4][s5][st]" in graph
    assert graph.startswith("[0:0]fps=30/1,split=7")
    for r in ladder.renditions:
        assert f"scale={r.width}:{r.height},format=yuv420p,setsar=1" in graph
    # The trick-play frames are picked once, then split into the four tiers.
    assert graph.count("fps=fps=") == 1
    assert "select='lt(n,2)+not(mod(n,2))',split=4[t0][t1][t2][t3];" in graph
    for j, t in enumerate(ladder.iframes):
        assert f"[t{j}]scale={t.width}:{t.height},format=yuv420p,setsar=1[vt{j}]" in graph
    assert graph.count("format=yuv420p") == 10
    assert "yadif" not in graph
    argv = argv_for(src)
    assert values(argv, "-map") == [
        "[v0]", "[v1]", "[v2]", "[v3]", "[v4]", "[v5]", "0:1", "[vt0]", "[vt1]", "[vt2]", "[vt3]"]
    assert value(argv, "-var_stream_map").endswith(
        "a:0,name:audio0_aac v:6,name:iframes_1080p v:7,name:iframes_720p"
        " v:8,name:iframes_432p v:9,name:iframes_234p")
    # Every trick-play track all intra, its frames keeping their own time stamps.
    assert value(argv, "-fps_mode:v") == "passthrough"
    for trick in range(6, 10):
        assert value(argv, f"-g:v:{trick}") == "1"


def test_interlaced_source_deinterlaced_once_before_the_split() -> None:
    src = source(interlaced=True, fps=25.0)
    graph = filter_graph(src, plan_ladder(src, SETTINGS))
    assert graph.startswith(
        "[0:0]yadif=mode=send_frame:parity=auto:deint=interlaced,fps=25/1,split=")
    assert graph.count("yadif") == 1


def test_maps_the_probed_streams_not_the_first_of_each_kind() -> None:
    # e.g. a cover picture at index 0, the real video at 2, audio at 1.
    src = source(video_stream_index=2, audio_tracks=(track(1),))
    argv = argv_for(src)
    assert value(argv, "-filter_complex").startswith("[0:2]")
    assert set(values(argv, "-map")) == ({f"[v{i}]" for i in range(6)}
                                         | {f"[vt{j}]" for j in range(4)} | {"0:1"})


def test_keyframes_forced_every_two_seconds() -> None:
    settings = SETTINGS.with_(segment_seconds=2.0)
    src = source(fps=29.97)
    argv = argv_for(src, settings)
    assert value(argv, "-force_key_frames:v") == "expr:gte(t,n_forced*2)"
    assert value(argv, "-sc_threshold:v") == "0"
    assert value(argv, "-flags:v") == "+cgop"
    assert value(argv, "-forced-idr:v") == "1"
    assert value(argv, "-hls_time") == "2"
    # GOP: 2 s of frames (59.94 -> 60) on rungs, every frame on trick-play.
    assert [value(argv, f"-g:v:{i}") for i in range(10)] == ["60"] * 6 + ["1"] * 4
    assert "fps=30000/1001" in value(argv, "-filter_complex")
    assert "fps=fps=1/2:round=up:start_time=0" in value(argv, "-filter_complex")
    assert "select=" not in value(argv, "-filter_complex")


@pytest.mark.parametrize("seconds,gop,hls_time,trick", [
    # 2 s segments are one GOP each, short already.
    (2.0, "2", "2", "fps=fps=1/2:round=up:start_time=0"),
    # 3 s cannot hold whole 2 s GOPs: two of 1.5 s.
    (3.0, "(3/2)", "1.5", "fps=fps=1/3:round=up:start_time=0"),
    (4.0, "2", "2", "fps=fps=1/2:round=up:start_time=0,select='lt(n,2)+not(mod(n,2))'"),
    (6.0, "2", "2", "fps=fps=1/2:round=up:start_time=0,select='lt(n,3)+not(mod(n,3))'"),
    # Exact fractions in the expressions; hls_time rounded down, never past a key frame.
    (7.0, "(7/6)", "1.166", "fps=fps=3/7:round=up:start_time=0,select='lt(n,3)+not(mod(n,3))'"),
])
def test_a_key_frame_every_gop_and_the_muxer_cuts_every_gop(seconds: float, gop: str,
                                                             hls_time: str, trick: str) -> None:
    argv = argv_for(source(), SETTINGS.with_(segment_seconds=seconds))
    assert value(argv, "-force_key_frames:v") == f"expr:gte(t,n_forced*{gop})"
    assert value(argv, "-hls_time") == hls_time
    assert f"[st]{trick},split=4[t0]" in value(argv, "-filter_complex")
    # Irregular trick-play frames keep their time stamps (no duplicates in the gaps),
    # as every video stream does: the filter graph makes the frames.
    assert values(argv, "-fps_mode:v") == ["passthrough"]
    for tier in range(6, 10):
        assert len(values(argv, f"-bsf:v:{tier}")) == (1 if "select" in trick else 0)
    # The GOP ceiling is one GOP's frames: the forced key frames come no later.
    fps = 30
    assert value(argv, "-g:v:0") == str(math.ceil(fps * Fraction(gop.strip("()"))))


def test_gops_longer_than_two_seconds_when_the_plan_says_so() -> None:
    # What bench/gop_cost.py compares: 4 s GOPs in 4 s segments.
    ladder = dataclasses.replace(plan_ladder(source(), SETTINGS), first_segments=1,
                                 gop_seconds=4.0)
    argv = build_argv(SRC, source(), ladder, OUT, SETTINGS)
    assert value(argv, "-force_key_frames:v") == "expr:gte(t,n_forced*4)"
    assert value(argv, "-hls_time") == "4"
    assert value(argv, "-g:v:0") == "120"


def test_a_gop_that_does_not_fill_the_segments_is_refused() -> None:
    ladder = dataclasses.replace(plan_ladder(source(), SETTINGS), gop_seconds=1.5)
    with pytest.raises(ValueError, match="1.5 s GOPs do not fill 2 s segments"):
        build_argv(SRC, source(), ladder, OUT, SETTINGS)


def test_vbv_profile_level_per_rung() -> None:
    src = source()
    ladder = plan_ladder(src, SETTINGS)
    argv = argv_for(src)
    for i, r in enumerate(ladder.renditions):
        assert value(argv, f"-b:v:{i}") == str(r.video_bitrate)
        assert value(argv, f"-maxrate:v:{i}") == str(r.maxrate)
        assert value(argv, f"-bufsize:v:{i}") == str(r.bufsize)
        assert value(argv, f"-profile:v:{i}") == "high"
        assert value(argv, f"-level:v:{i}") == r.level


def test_every_audio_track_is_an_audio_only_variant() -> None:
    src = source(width=640, height=360, audio_tracks=(
        track(1, language="eng"), track(2, language="fra", channels=1),
        track(4, language="deu", channels=6)))
    argv = argv_for(src)
    # Video renditions, then each audio rendition (the 5.1 track twice), then trick play.
    assert values(argv, "-map") == ["[v0]", "[v1]", "0:1", "0:2", "0:4", "0:4", "[vt0]"]
    assert value(argv, "-var_stream_map") == (
        "v:0,name:360p v:1,name:234p a:0,name:audio0_aac a:1,name:audio1_aac"
        " a:2,name:audio2_aac a:3,name:audio2_ec3 v:2,name:iframes_234p")
    assert [value(argv, f"-c:a:{i}") for i in range(4)] == ["aac", "aac", "aac", "eac3"]
    assert [value(argv, f"-ac:a:{i}") for i in range(4)] == ["2", "1", "2", "6"]
    assert [value(argv, f"-b:a:{i}") for i in range(4)] == [
        "128000", "64000", "128000", "384000"]
    assert [value(argv, f"-ar:a:{i}") for i in range(4)] == ["48000"] * 4
    assert value(argv, "-filter:a:0") == "aformat=channel_layouts=stereo,apad=whole_dur=60.000"


def test_audio_only_source_has_no_video_anywhere() -> None:
    src = source(width=0, height=0, fps=0.0, video_stream_index=None, audio_tracks=(
        track(0, language="eng"), track(1, language="fra", channels=6)))
    argv = argv_for(src)
    assert "-filter_complex" not in argv
    assert not any(a.startswith(("-c:v", "-b:v", "-force_key_frames")) for a in argv)
    assert values(argv, "-map") == ["0:0", "0:1", "0:1"]
    assert value(argv, "-var_stream_map") == (
        "a:0,name:audio0_aac a:1,name:audio1_aac a:2,name:audio1_ec3")
    # Cut every short first segment length; run.py joins them on the segment grid.
    assert value(argv, "-hls_time") == "2"


def test_a_track_from_another_input_is_mapped_from_it() -> None:
    # The seam for sidecar audio: a track says which -i it is in.
    src = source(audio_tracks=(track(1), track(0, input_index=1, language="spa")))
    ladder = plan_ladder(src, SETTINGS)
    assert [a.stream for a in ladder.audio] == ["0:1", "1:0"]
    assert values(argv_for(src), "-map")[-6:] == [
        "0:1", "1:0", "[vt0]", "[vt1]", "[vt2]", "[vt3]"]


def test_measured_audio_gets_loudnorm_with_its_values_in_pass_two() -> None:
    src = source(audio_tracks=(track(1), track(2, channels=1)))
    ladder = plan_ladder(src, SETTINGS)
    measured = Loudness(input_i=-31.5, input_tp=-12.25, input_lra=0.0, input_thresh=-41.5,
                        target_offset=0.12, gain_db=8.5, linear=True)
    ladder = dataclasses.replace(ladder, audio=tuple(
        dataclasses.replace(a, loudness=measured) for a in ladder.audio))
    argv = build_argv(SRC, src, ladder, OUT, SETTINGS)
    targets = "loudnorm=I=-23:TP=-1:LRA=50:measured_I=-31.50:measured_TP=-12.25"
    # A range of exactly 0 LU would read as "not measured" and stop the linear mode.
    values_ = ":measured_LRA=0.01:measured_thresh=-41.50:offset=0.12:linear=true"
    assert value(argv, "-filter:a:0") == (
        f"aformat=channel_layouts=stereo,{targets}{values_},apad=whole_dur=60.000")
    assert value(argv, "-filter:a:1") == (
        f"aformat=channel_layouts=mono,{targets}{values_}:dual_mono=true,"
        "apad=whole_dur=60.000")
    assert value(argv, "-ar:a:0") == "48000"  # loudnorm works at 192 kHz: back to the rate
    assert "-dialnorm:a:0" not in argv, "AAC has no dialnorm"


def test_normalised_e_ac_3_states_its_loudness_as_dialnorm() -> None:
    src = source(audio_tracks=(track(1, channels=6),))
    ladder = plan_ladder(src, SETTINGS)
    assert values(build_argv(SRC, src, ladder, OUT, SETTINGS), "-dialnorm:a:1") == []
    measured = Loudness(input_i=-18.0, input_tp=-6.0, input_lra=4.0, input_thresh=-28.0,
                        target_offset=0.0, gain_db=-5.0, linear=True)
    ladder = dataclasses.replace(ladder, audio=tuple(
        dataclasses.replace(a, loudness=measured) for a in ladder.audio))
    argv = build_argv(SRC, src, ladder, OUT, SETTINGS)
    assert [a.codec for a in ladder.audio] == ["aac", "eac3"]
    assert value(argv, "-dialnorm:a:1") == "-23"


def test_video_only_source_has_no_audio_anywhere() -> None:
    src = source(audio_tracks=(), width=640, height=360)
    argv = argv_for(src)
    assert value(argv, "-var_stream_map") == "v:0,name:360p v:1,name:234p v:2,name:iframes_234p"
    assert values(argv, "-map") == ["[v0]", "[v1]", "[vt0]"]
    assert not any(a.startswith(("-c:a", "-b:a")) for a in argv)


def test_ts_segments() -> None:
    argv = argv_for(source(), SETTINGS.with_(segment_format="ts"))
    assert value(argv, "-hls_segment_type") == "mpegts"
    assert "-hls_fmp4_init_filename" not in argv
    assert value(argv, "-hls_segment_filename") == "/media/out/%v/seg_%05d.ts"


def test_metadata_and_chapters_stripped_and_only_mapped_streams_kept() -> None:
    argv = argv_for(source())
    assert value(argv, "-map_metadata") == "-1"
    assert value(argv, "-map_chapters") == "-1"
    assert "0" not in values(argv, "-map")  # never "map everything"


def test_progress_goes_to_stdout() -> None:
    argv = argv_for(source())
    assert value(argv, "-progress") == "pipe:1"
    assert "-nostats" in argv and "-nostdin" in argv and "-y" in argv


def test_percent_in_output_dir_refused() -> None:
    src = source()
    with pytest.raises(ValueError, match="%"):
        build_argv(SRC, src, plan_ladder(src, SETTINGS), Path("/media/100%"), SETTINGS)


def test_captions_go_into_every_rendition_but_the_trick_play_tracks() -> None:
    argv = argv_for(source(closed_captions=True))
    ladder = plan_ladder(source(), SETTINGS)
    flags = [arg for arg in argv if arg.startswith("-a53cc:v:")]
    assert [value(argv, flag) for flag in flags] == (
        ["1"] * len(ladder.renditions) + ["0"] * len(ladder.iframes))


def test_a_sidecar_audio_file_is_another_input_read_no_longer_than_the_master() -> None:
    src = source(width=640, height=360, duration_s=12.5, audio_tracks=(track(1),))
    dub = track(0, language="de", title="Deutsch", input_index=1)
    ladder = plan_ladder(src, SETTINGS, sidecar_audio=[dub])
    argv = build_argv(SRC, src, ladder, OUT, SETTINGS,
                      audio_files=[Path("/media/in/dub.wav")])
    inputs = values(argv, "-i")
    assert inputs == ["file:/media/in/master.mp4", "file:/media/in/dub.wav"]
    dub_input = argv.index("file:/media/in/dub.wav")
    # Its own whitelists and a time limit, as options of that input.
    assert argv[dub_input - 7:dub_input - 1] == [
        "-t", "12.500", "-protocol_whitelist", "file", "-format_whitelist",
        ",".join(SAFE_DEMUXERS)]
    assert values(argv, "-map") == ["[v0]", "[v1]", "0:1", "1:0", "[vt0]"]
    assert [(a.name, a.input_index, a.language, a.label, a.default) for a in ladder.audio] == [
        ("audio0_aac", 0, "en", "English", True), ("audio1_aac", 1, "de", "Deutsch", False)]
    # A long master's audio, encoded whole beside its spans, has the dub too.
    whole = build_audio_argv(SRC, src, ladder, OUT, SETTINGS, [Path("/media/in/dub.wav")])
    assert values(whole, "-i") == inputs and values(whole, "-map") == ["0:1", "1:0"]
