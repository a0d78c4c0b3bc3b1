"""The one ffmpeg command that makes the whole ladder: plain data, built from the plan.

Decode once, split, scale each rung, encode with a key frame forced every GOP
(the same frames in every rung, so every rendition can switch at every one),
and let ffmpeg's hls muxer cut all renditions and the trick-play tracks in the
same pass: one part per GOP, which run.py joins into segments (see hls_time).
HEVC renditions are more outputs of the same split, with x265 in place of x264;
an HDR source is split once more, before a tone-map, for its SDR renditions.

The trick-play (I-frame) tracks are encoded on their own, one per resolution
tier (ladder.iframe_tiers), one intra frame per segment, cut on the renditions'
segment boundaries: each entry of an I-frame playlist is then one whole segment.
Byte ranges into the renditions' own key frames (as Apple's and Shaka's tools
make) cost nothing to encode, but cannot be decrypted here: AES-128 encrypts
each segment whole, CBC restarted and padded per segment (RFC 8216 4.3.2.4), so
a sub-range has neither its IV nor its padding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

from stb_origin.settings import Settings
from stb_origin.storage.layout import INIT, MEDIA_PLAYLIST
from stb_origin.transcode import layout, spans
from stb_origin.transcode.audio import AudioRendition, priming_delay
from stb_origin.transcode.inputs import input_args
from stb_origin.transcode.ladder import HEVC, Ladder, Rendition, exact_rate, grid
from stb_origin.transcode.loudness import TARGET_I, normalise_filter
from stb_origin.transcode.probe import SDR, SourceInfo
from stb_origin.transcode.spans import Span

HLS_SEGMENT_TYPES = {"fmp4": "fmp4", "ts": "mpegts"}
# setts bitstream filter: a packet lasts until the next one (the last keeps its own).
TRICK_FRAME_DURATIONS = "setts=duration='if(eq(NEXT_PTS,NOPTS),DURATION,NEXT_PTS-PTS)'"
# HDR to SDR: to linear light (PQ: 10000 cd/m2 peak, scaled so that 100 is SDR
# white), to BT.709 primaries, Hable's curve (keeps highlights' detail, desat=0
# keeps their colour), back to BT.709 gamma and limited range. zscale reads the
# source's transfer as given here, not trusting frames an upload may mislabel.
TONEMAP = ("zscale=tin={transfer}:pin=2020:min=2020_ncl:t=linear:npl=100,format=gbrpf32le,"
           "zscale=p=709,tonemap=tonemap=hable:desat=0,zscale=t=709:m=709:r=tv")
# HDR10 and HLG are both BT.2020: what an HDR source that does not say is taken as.
HDR_PRIMARIES, HDR_MATRIX = "bt2020", "bt2020nc"
SDR_FROM_HDR = ("bt709", "bt709", "bt709")  # primaries, transfer, matrix


def build_argv(source_path: Path, source: SourceInfo, ladder: Ladder, out_dir: Path,
               settings: Settings, span: Span | None = None,
               audio_files: Sequence[Path] = ()) -> list[str]:
    """The whole ladder in one run; or, given a span, only its video (spans.py).
    audio_files: sidecar audio, inputs 1, 2, ... (AudioRendition.input_index)."""
    audio = ladder.audio if span is None else ()
    argv = _start(out_dir)
    if span is not None:
        argv += spans.seek_args(ladder, span)
    argv += input_args(source_path)
    if audio:
        argv += _sidecar_inputs(source, audio_files)
    # An audio-only ladder has no video at all.
    if ladder.renditions:
        argv += ["-filter_complex", filter_graph(source, ladder, span)]
    argv += [arg for i in range(len(ladder.renditions)) for arg in ("-map", f"[v{i}]")]
    # A track made twice (AAC and E-AC-3) is mapped twice: each output stream is one rendition.
    argv += [arg for a in audio for arg in ("-map", a.stream)]
    argv += [arg for j in range(len(ladder.iframes)) for arg in ("-map", f"[vt{j}]")]
    # Titles, GPS, encoder names and chapters of the upload stay with the upload.
    argv += ["-map_metadata", "-1", "-map_chapters", "-1"]
    if ladder.renditions:
        argv += _video_codec_args(source, ladder, settings, span)

    for i, track in enumerate(audio):
        argv += _audio_args(i, track, source.duration_s)
    # Audio arrives long before the first video packets of six encoders.
    argv += ["-max_muxing_queue_size", "4096"]
    if span is not None:
        # Where the one run, encoding audio beside it, puts the video (audio.py).
        delay = priming_delay(ladder.audio)
        argv += ["-output_ts_offset", f"{float(delay):.6f}"] if delay else []
        argv += ["-start_number", str(span.first_file)] if span.first_file else []
    return argv + _hls_output(ladder, out_dir, settings, var_stream_map(ladder, audio))


def build_audio_argv(source_path: Path, source: SourceInfo, ladder: Ladder, out_dir: Path,
                     settings: Settings, audio_files: Sequence[Path] = ()) -> list[str]:
    """Only the audio renditions, whole: what goes with the spans' video."""
    argv = _start(out_dir) + input_args(source_path) + _sidecar_inputs(source, audio_files)
    argv += [arg for a in ladder.audio for arg in ("-map", a.stream)]
    argv += ["-map_metadata", "-1", "-map_chapters", "-1"]
    for i, track in enumerate(ladder.audio):
        argv += _audio_args(i, track, source.duration_s)
    audio_map = " ".join(f"a:{i},name:{a.name}" for i, a in enumerate(ladder.audio))
    return argv + _hls_output(ladder, out_dir, settings, audio_map)


def _sidecar_inputs(source: SourceInfo, audio_files: Sequence[Path]) -> list[str]:
    # Read no further than the master lasts: a longer dub would add segments
    # that no video segment matches.
    return [arg for path in audio_files
            for arg in ("-t", f"{source.duration_s:.3f}", *input_args(path))]


def _start(out_dir: Path) -> list[str]:
    if "%" in str(out_dir.absolute()):
        # The hls muxer reads % in output names as a template.
        raise ValueError(f"output directory must not contain '%': {out_dir.absolute()}")
    return ["ffmpeg", "-nostdin", "-hide_banner", "-y", "-loglevel", "error",
            "-nostats", "-progress", "pipe:1"]


def _hls_output(ladder: Ladder, out_dir: Path, settings: Settings, stream_map: str) -> list[str]:
    out = out_dir.absolute()
    argv = ["-f", "hls", "-hls_time", hls_time(ladder), "-hls_playlist_type", "vod",
            "-hls_list_size", "0", "-hls_flags", "independent_segments",
            "-hls_segment_type", HLS_SEGMENT_TYPES[settings.segment_format]]
    if settings.segment_format == "fmp4":
        # With several variants ffmpeg names it init_<index>.mp4; run.py renames it.
        argv += ["-hls_fmp4_init_filename", INIT]
    return argv + ["-hls_segment_filename",
                   str(out / "%v" / layout.segment_template(settings.segment_format)),
                   "-var_stream_map", stream_map, str(out / "%v" / MEDIA_PLAYLIST)]


def _video_codec_args(source: SourceInfo, ladder: Ladder, settings: Settings,
                      span: Span | None) -> list[str]:
    # The filter graph decides the frames (fps, trim). ffmpeg's own constant-rate
    # output sync would add a copy of the first frame when the video starts a
    # little after the file (an AAC track's priming does that in Matroska).
    argv = ["-fps_mode:v", "passthrough"]
    argv += ["-c:v", "libx264", "-preset", settings.x264_preset,
             "-sc_threshold:v", "0", "-flags:v", "+cgop", "-forced-idr:v", "1",
             "-force_key_frames:v", "expr:" + (
                 spans.keyframe_expr(ladder, span) if span is not None and span.start_unit
                 else keyframe_expr(ladder))]
    # A ceiling only: the forced key frames come first (59.94 fps: every 60 or 59 frames).
    gop = math.ceil(exact_rate(ladder.fps) * grid(ladder).gop)
    for i, rendition in enumerate(ladder.renditions):
        argv += _video_args(i, rendition, gop, ladder.closed_captions)
        argv += _encoder_args(i, rendition, source, settings)
    for j, trickplay in enumerate(ladder.iframes):
        trick = len(ladder.renditions) + j
        # One frame per segment cannot carry captions.
        argv += _video_args(trick, trickplay, 1, False)
        argv += _encoder_args(trick, trickplay, source, settings)
        if ladder.first_segments > 1 and (span is None or span.start_unit == 0):
            # The trick-play frames are irregular then (2, 2, then 4 s apart): the fMP4
            # muxer, given each frame the same duration, would pull the frames after a
            # gap forward in time. Each frame lasts until the next one instead.
            argv += [f"-bsf:v:{trick}", TRICK_FRAME_DURATIONS]
    return argv


def filter_graph(source: SourceInfo, ladder: Ladder, span: Span | None = None) -> str:
    if not ladder.renditions or source.video_stream_index is None:
        raise ValueError("an audio-only ladder has no video to filter")
    # Deinterlace and fix the frame rate once, before the split, not once per rung.
    common = []
    if source.interlaced:
        common.append("yadif=mode=send_frame:parity=auto:deint=interlaced")
    common.append(f"fps={_rate(exact_rate(ladder.fps))}")
    if span is not None and (trim := spans.video_trim(span)):
        common.append(trim)
    label = f"[0:{source.video_stream_index}]"
    sdr = [f"[s{i}]" for i, r in enumerate(ladder.renditions) if r.video_range == SDR] + ["[st]"]
    hdr = [f"[s{i}]" for i, r in enumerate(ladder.renditions) if r.video_range != SDR]
    chains = []
    if source.video_range != SDR:
        if hdr:
            chains += [f"{label}{','.join(common)},split=2[hdr][sdr]",
                       f"[hdr]split={len(hdr)}{''.join(hdr)}"]
            label, common = "[sdr]", []
        common.append(TONEMAP.format(transfer=source.colour.transfer))
    chains.append(f"{label}{','.join([*common, f'split={len(sdr)}'])}{''.join(sdr)}")
    for i, rendition in enumerate(ladder.renditions):
        chains.append(f"[s{i}]{_picture(rendition)}[v{i}]")
    # The trick-play frames are picked once, then scaled for each tier.
    k = len(ladder.iframes)
    tier_labels = "".join(f"[t{j}]" for j in range(k))
    chains.append(f"[st]{_trick_frames(ladder, span)},split={k}{tier_labels}")
    for j, trickplay in enumerate(ladder.iframes):
        chains.append(f"[t{j}]{_picture(trickplay)}[vt{j}]")
    return ";".join(chains)


def keyframe_expr(ladder: Ladder) -> str:
    """A key frame every GOP, in the ``-force_key_frames expr:`` language: the first
    frame at or after each multiple of the GOP, which every segment boundary is."""
    return f"gte(t,n_forced*{_number(grid(ladder).gop)})"


def hls_time(ladder: Ladder) -> str:
    """The muxer cuts at the first key frame at or after hls_time * (parts so far)
    (ffmpeg 5.1 hlsenc.c, hls_write_packet): with hls_time the GOP it cuts every GOP.

    It cannot cut a whole number of GOPs itself: one hls_time for 2 s short
    segments and 4 s ones after them does not exist; -hls_init_time never hands
    over to -hls_time with -hls_list_size 0 (VOD); and the split_by_time flag cuts
    between key frames. So it cuts every GOP and run.py joins the parts into the
    grid's segments, as it joins the audio's. (-hls_segment_options only passes
    options to the segment muxer.) The trick-play tracks, one frame per segment,
    are cut at every frame: each is at least a GOP after the one before. Rounded
    down: a key frame just short of a multiple of hls_time would otherwise be skipped.
    """
    return _seconds(math.floor(grid(ladder).gop * 1000) / 1000)


def _trick_frames(ladder: Ladder, span: Span | None = None) -> str:
    # One frame per segment, taken at each segment start: the frame every
    # rendition has a key frame on. fps makes one every short length (exact
    # rational time stamps); select then keeps the first segment's and every
    # count-th after it, so no float rounding decides which.
    # start_time=0: a video that starts a little after the file does (Matroska
    # often does) still gets the first segment's frame, the first frame repeated,
    # instead of losing it to rounding up.
    # In a span, frame time stamps count its output rate (1/seg or 1/short) from the
    # start of the source: trimmed to the span's segments like its video.
    g = grid(ladder)
    if span is not None and span.start_unit:
        end = f":end_pts={span.end_unit}" if span.end_unit is not None else ""
        start = _seconds(float(span.start_unit * g.segment))
        return (f"fps=fps={_rate(1 / g.segment)}:round=up:start_time={start},"
                f"trim=start_pts={span.start_unit}{end}")
    end = (f",trim=end_pts={span.end_unit * g.count}"
           if span is not None and span.end_unit is not None else "")
    if g.count == 1:
        return f"fps=fps={_rate(1 / g.segment)}:round=up:start_time=0{end}"
    return (f"fps=fps={_rate(1 / g.short)}:round=up:start_time=0,"
            f"select='lt(n,{g.count})+not(mod(n,{g.count}))'{end}")


def var_stream_map(ladder: Ladder, audio: tuple[AudioRendition, ...] | None = None) -> str:
    """One variant per rendition, audio ones audio only, the trick-play tracks last.

    ffmpeg writes no master playlist here (packager/playlists.py does), so the
    variants need no agroup or language: only the name of their folder.
    """
    videos = [f"v:{i},name:{r.name}" for i, r in enumerate(ladder.renditions)]
    audio = ladder.audio if audio is None else audio
    audios = [f"a:{i},name:{a.name}" for i, a in enumerate(audio)]
    n = len(ladder.renditions)
    tricks = [f"v:{n + j},name:{t.name}" for j, t in enumerate(ladder.iframes)]
    return " ".join([*videos, *audios, *tricks])


def _picture(rendition: Rendition) -> str:
    # 8-bit 4:2:0 whatever came in (10-bit, 4:2:2): what every H.264 decoder plays;
    # HDR stays 10-bit (HEVC Main10), as HDR10 and HLG require.
    pix_fmt = "yuv420p" if rendition.video_range == SDR else "yuv420p10le"
    return f"scale={rendition.width}:{rendition.height},format={pix_fmt},setsar=1"


def _video_args(index: int, rendition: Rendition, gop: int, captions: bool) -> list[str]:
    level = [] if rendition.level is None else [f"-level:v:{index}", rendition.level]
    # libx264 writes the frames' A53 captions back as SEI (ATSC A/53 "GA94");
    # libx265 has no such option (plan_ladder makes no HEVC when there are captions).
    a53 = [] if rendition.codec == HEVC else [f"-a53cc:v:{index}", "1" if captions else "0"]
    return [
        *a53,
        f"-b:v:{index}", str(rendition.video_bitrate),
        f"-maxrate:v:{index}", str(rendition.maxrate),
        f"-bufsize:v:{index}", str(rendition.bufsize),
        f"-profile:v:{index}", rendition.profile,
        *level,
        f"-g:v:{index}", str(gop),
    ]


def _encoder_args(index: int, rendition: Rendition, source: SourceInfo,
                  settings: Settings) -> list[str]:
    """What an HEVC rendition, or any rendition of an HDR source, adds to the
    x264 options every video stream gets; the later, per-stream ones win."""
    args: list[str] = []
    colour = _colour_of(rendition, source)
    if colour is not None:
        primaries, transfer, matrix = colour
        # In the container (colr box) as well as in the bitstream's VUI.
        args += [f"-color_primaries:v:{index}", primaries, f"-color_trc:v:{index}", transfer,
                 f"-colorspace:v:{index}", matrix]
    if rendition.codec != HEVC:
        return args
    # x265 knows no -sc_threshold or +cgop: the same grid is asked for its own way.
    params = ["log-level=error", "scenecut=0", "open-gop=0"]
    if colour is not None:
        primaries, transfer, matrix = colour
        params += [f"colorprim={primaries}", f"transfer={transfer}", f"colormatrix={matrix}"]
    if rendition.video_range == "PQ":
        params.append("hdr10=1")
        if source.colour.mastering_display is not None:
            params.append(f"master-display={source.colour.mastering_display}")
        if source.colour.max_cll is not None:
            params.append(f"max-cll={source.colour.max_cll}")
    # hvc1: parameter sets in the sample entry only, what HLS players expect.
    return args + [f"-c:v:{index}", "libx265", f"-preset:v:{index}", settings.x265_preset,
                   f"-tag:v:{index}", "hvc1", f"-x265-params:v:{index}", ":".join(params)]


def _colour_of(rendition: Rendition, source: SourceInfo) -> tuple[str, str, str] | None:
    """(primaries, transfer, matrix) to write, or None to pass the source's through
    (an SDR source)."""
    if source.video_range == SDR:
        return None
    if rendition.video_range == SDR:
        return SDR_FROM_HDR
    colour = source.colour
    return (colour.primaries or HDR_PRIMARIES, str(colour.transfer), colour.matrix or HDR_MATRIX)


def _audio_args(index: int, audio: AudioRendition, duration_s: float) -> list[str]:
    chain = [audio.downmix]
    if audio.loudness is not None:
        chain.append(normalise_filter(audio.loudness, audio.channels))
    # Silence up to the source's length: a track that stops early must still
    # cover every video segment (run.py groups its segments like the video's).
    chain.append(f"apad=whole_dur={duration_s:.3f}")
    argv = [
        f"-c:a:{index}", audio.codec,
        f"-b:a:{index}", str(audio.bitrate),
        f"-ac:a:{index}", str(audio.channels),
        # Also brings loudnorm's 192 kHz back to the rendition's rate.
        f"-ar:a:{index}", str(audio.sample_rate),
        f"-filter:a:{index}", ",".join(chain),
    ]
    if audio.codec == "eac3" and audio.loudness is not None:
        # Dolby decoders level every programme by its dialnorm (A/85: it must state
        # the real loudness); the encoder's default (-31) would have them play this 8 dB loud.
        argv += [f"-dialnorm:a:{index}", f"{TARGET_I:.0f}"]
    return argv


def _rate(rate: Fraction) -> str:
    return f"{rate.numerator}/{rate.denominator}"


def _number(value: Fraction) -> str:
    # An expression term: 2 or (7/3), exact either way.
    return str(value.numerator) if value.denominator == 1 else f"({_rate(value)})"


def _seconds(value: float) -> str:
    return f"{value:g}"
