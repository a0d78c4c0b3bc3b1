"""The one ffmpeg command that makes the whole ladder: plain data, built from the plan.

Decode once, split, scale each rung, encode with key frames forced on segment
boundaries (so every rendition can switch at every segment), and let ffmpeg's
hls muxer cut all renditions and the trick-play track in the same pass.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

from stb_origin.settings import Settings
from stb_origin.storage.layout import INIT, MEDIA_PLAYLIST
from stb_origin.transcode import layout
from stb_origin.transcode.audio import AudioRendition
from stb_origin.transcode.inputs import input_args
from stb_origin.transcode.ladder import Ladder, Rendition, exact_rate
from stb_origin.transcode.probe import SourceInfo

HLS_SEGMENT_TYPES = {"fmp4": "fmp4", "ts": "mpegts"}
# setts bitstream filter: a packet lasts until the next one (the last keeps its own).
TRICK_FRAME_DURATIONS = "setts=duration='if(eq(NEXT_PTS,NOPTS),DURATION,NEXT_PTS-PTS)'"


def build_argv(source_path: Path, source: SourceInfo, ladder: Ladder, out_dir: Path,
               settings: Settings) -> list[str]:
    out = out_dir.absolute()
    if "%" in str(out):
        # The hls muxer reads % in output names as a template.
        raise ValueError(f"output directory must not contain '%': {out}")

    argv = ["ffmpeg", "-nostdin", "-hide_banner", "-y", "-loglevel", "error",
            "-nostats", "-progress", "pipe:1"]
    argv += input_args(source_path)
    argv += ["-filter_complex", filter_graph(source, ladder)]
    argv += [arg for i in range(len(ladder.renditions)) for arg in ("-map", f"[v{i}]")]
    # A track made twice (AAC and E-AC-3) is mapped twice: each output stream is one rendition.
    argv += [arg for a in ladder.audio for arg in ("-map", f"0:{a.source_index}")]
    argv += ["-map", "[vt]"]
    # Titles, GPS, encoder names and chapters of the upload stay with the upload.
    argv += ["-map_metadata", "-1", "-map_chapters", "-1"]

    argv += ["-c:v", "libx264", "-preset", settings.x264_preset,
             "-sc_threshold:v", "0", "-flags:v", "+cgop", "-forced-idr:v", "1",
             "-force_key_frames:v", "expr:" + keyframe_expr(ladder)]
    gop = math.ceil(exact_rate(ladder.fps) * Fraction(ladder.segment_seconds))
    for i, rendition in enumerate(ladder.renditions):
        argv += _video_args(i, rendition, gop, ladder.closed_captions)
    # One frame per segment cannot carry captions.
    argv += _video_args(len(ladder.renditions), ladder.trickplay, 1, False)
    if ladder.first_segments > 1:
        # The trick-play frames are irregular then (2, 2, then 4 s apart): ffmpeg's
        # default constant-rate output would fill the gaps with duplicates, and the
        # fMP4 muxer, given each frame the same duration, would pull the frames
        # after a gap forward in time. Each frame lasts until the next one instead.
        trick = len(ladder.renditions)
        argv += [f"-fps_mode:v:{trick}", "passthrough",
                 f"-bsf:v:{trick}", TRICK_FRAME_DURATIONS]

    for i, audio in enumerate(ladder.audio):
        argv += _audio_args(i, audio, source.duration_s)
    # Audio arrives long before the first video packets of six encoders.
    argv += ["-max_muxing_queue_size", "4096"]

    argv += ["-f", "hls", "-hls_time", hls_time(ladder), "-hls_playlist_type", "vod",
             "-hls_list_size", "0", "-hls_flags", "independent_segments",
             "-hls_segment_type", HLS_SEGMENT_TYPES[settings.segment_format]]
    if settings.segment_format == "fmp4":
        # With several variants ffmpeg names it init_<index>.mp4; run.py renames it.
        argv += ["-hls_fmp4_init_filename", INIT]
    argv += ["-hls_segment_filename",
             str(out / "%v" / layout.segment_template(settings.segment_format)),
             "-var_stream_map", var_stream_map(ladder),
             str(out / "%v" / MEDIA_PLAYLIST)]
    return argv


def filter_graph(source: SourceInfo, ladder: Ladder) -> str:
    # Deinterlace and fix the frame rate once, before the split, not once per rung.
    common = []
    if source.interlaced:
        common.append("yadif=mode=send_frame:parity=auto:deint=interlaced")
    common.append(f"fps={_rate(exact_rate(ladder.fps))}")
    n = len(ladder.renditions)
    split_labels = "".join(f"[s{i}]" for i in range(n)) + "[st]"
    chains = [f"[0:{source.video_stream_index}]{','.join(common)},split={n + 1}{split_labels}"]
    for i, rendition in enumerate(ladder.renditions):
        chains.append(f"[s{i}]{_picture(rendition)}[v{i}]")
    chains.append(f"[st]{_trick_frames(ladder)},{_picture(ladder.trickplay)}[vt]")
    return ";".join(chains)


def keyframe_expr(ladder: Ladder) -> str:
    """Key frames on every segment boundary, in the ``-force_key_frames expr:`` language.

    The first segment_seconds has ladder.first_segments boundaries, one every
    segment_seconds / first_segments; then one every segment_seconds, the same
    grid as with no short first segments.
    """
    seg, short, count = _grid(ladder)
    if count == 1:
        return f"gte(t,n_forced*{_number(seg)})"
    return (f"if(lt(n_forced,{count}),gte(t,n_forced*{_number(short)}),"
            f"gte(t,(n_forced-{count - 1})*{_number(seg)}))")


def hls_time(ladder: Ladder) -> str:
    """The muxer cuts at the first key frame at or after hls_time * (segments so far).

    With key frames only on the boundaries, any hls_time up to the shortest
    segment cuts at every one of them; so it is the short length, rounded down
    (rounded up, a boundary could fall just short of it and be skipped).
    ffmpeg's own -hls_init_time cannot do this: with -hls_list_size 0 (VOD) it
    never hands over to -hls_time (ffmpeg 5.1 hlsenc.c).
    """
    _seg, short, _count = _grid(ladder)
    return _seconds(math.floor(short * 1000) / 1000)


def _trick_frames(ladder: Ladder) -> str:
    # One frame per segment, taken at each segment start: the frame every
    # rendition has a key frame on. fps makes one every short length (exact
    # rational time stamps); select then keeps the first segment's and every
    # count-th after it, so no float rounding decides which.
    # start_time=0: a video that starts a little after the file does (Matroska
    # often does) still gets the first segment's frame, the first frame repeated,
    # instead of losing it to rounding up.
    seg, short, count = _grid(ladder)
    if count == 1:
        return f"fps=fps={_rate(1 / seg)}:round=up:start_time=0"
    return (f"fps=fps={_rate(1 / short)}:round=up:start_time=0,"
            f"select='lt(n,{count})+not(mod(n,{count}))'")


def _grid(ladder: Ladder) -> tuple[Fraction, Fraction, int]:
    """(segment length, short first segment length, number of short segments)."""
    seg = Fraction(ladder.segment_seconds).limit_denominator(1000)
    count = max(1, ladder.first_segments)
    return seg, seg / count, count


def var_stream_map(ladder: Ladder) -> str:
    """One variant per rendition, audio ones audio only, the trick-play track last.

    ffmpeg writes no master playlist here (packager/playlists.py does), so the
    variants need no agroup or language: only the name of their folder.
    """
    videos = [f"v:{i},name:{r.name}" for i, r in enumerate(ladder.renditions)]
    audios = [f"a:{i},name:{a.name}" for i, a in enumerate(ladder.audio)]
    trick = f"v:{len(ladder.renditions)},name:{ladder.trickplay.name}"
    return " ".join([*videos, *audios, trick])


def _picture(rendition: Rendition) -> str:
    # 8-bit 4:2:0 whatever came in (10-bit, 4:2:2): what every H.264 decoder plays.
    return f"scale={rendition.width}:{rendition.height},format=yuv420p,setsar=1"


def _video_args(index: int, rendition: Rendition, gop: int, captions: bool) -> list[str]:
    return [
        # libx264 writes the frames' A53 captions back as SEI (ATSC A/53 "GA94").
        f"-a53cc:v:{index}", "1" if captions else "0",
        f"-b:v:{index}", str(rendition.video_bitrate),
        f"-maxrate:v:{index}", str(rendition.maxrate),
        f"-bufsize:v:{index}", str(rendition.bufsize),
        f"-profile:v:{index}", rendition.profile,
        f"-level:v:{index}", rendition.level,
        f"-g:v:{index}", str(gop),
    ]


def _audio_args(index: int, audio: AudioRendition, duration_s: float) -> list[str]:
    return [
        f"-c:a:{index}", audio.codec,
        f"-b:a:{index}", str(audio.bitrate),
        f"-ac:a:{index}", str(audio.channels),
        f"-ar:a:{index}", str(audio.sample_rate),
        # Silence up to the source's length: a track that stops early must still
        # cover every video segment (run.py groups its segments like the video's).
        f"-filter:a:{index}", f"apad=whole_dur={duration_s:.3f}",
    ]


def _rate(rate: Fraction) -> str:
    return f"{rate.numerator}/{rate.denominator}"


def _number(value: Fraction) -> str:
    # An expression term: 2 or (7/3), exact either way.
    return str(value.numerator) if value.denominator == 1 else f"({_rate(value)})"


def _seconds(value: float) -> str:
    return f"{value:g}"
