"""Test media made on the spot with ffmpeg's own sources (testsrc2 + sine).

make_clip covers the sources a transcoder has to cope with: rotated phone
video, odd sizes, interlaced, variable frame rate, 10-bit and 4:2:2, extra
subtitle tracks, audio-only and video-only files; make_audio_tracks_clip makes
masters with several tagged audio tracks (languages, titles, 5.1, mono).
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from stb_origin import proc

TIMEOUT_S = 120.0

# Codecs for each container, when the caller does not choose.
_VIDEO_CODECS = {
    ".webm": ["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "1M"],
    ".mxf": ["-c:v", "mpeg2video", "-q:v", "4"],
}
_AUDIO_CODECS = {
    ".webm": ["-c:a", "libopus"],
    ".mxf": ["-c:a", "pcm_s16le"],
    ".wav": ["-c:a", "pcm_s16le"],
    ".mp3": ["-c:a", "libmp3lame"],
    ".ogg": ["-c:a", "libvorbis"],
    ".flac": ["-c:a", "flac"],
}
_SUBTITLE_CODECS = {".mp4": "mov_text", ".mov": "mov_text", ".mkv": "srt"}


def make_clip(
    path: Path,
    seconds: float = 4,
    size: str = "640x360",
    fps: int | str = 30,
    audio: bool = True,
    extra_output_args: Sequence[str] = (),
    *,
    video: bool = True,
    rotate: int = 0,
    interlaced: bool = False,
    vfr: bool = False,
    pix_fmt: str | None = None,
    subtitles: bool = False,
    audio_channels: int = 2,
    audio_sample_rate: int = 48_000,
) -> Path:
    """Write a test clip to path (container chosen by its suffix) and return path.

    fps: frames a second, an int or a rational string such as "30000/1001".
    rotate: degrees written as display-matrix metadata (mp4/mov only).
    interlaced: top-field-first interlaced H.264 at fps frames a second.
    vfr: the first second at fps, the rest at a third of it, with real timestamps.
    pix_fmt: e.g. "yuv420p10le" (10-bit) or "yuv422p" (4:2:2), encoded with libx264.
    subtitles: adds a subtitle track (mp4/mov/mkv).
    extra_output_args go last, so they can override anything above.
    """
    if not video and not audio:
        raise ValueError("a clip needs video, audio or both")
    suffix = path.suffix.lower()
    width, height = (int(v) for v in size.split("x"))
    argv = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    if video:
        # testsrc2 rounds sizes to even numbers: make it bigger and scale to the odd size.
        src_w, src_h = width + width % 2, height + height % 2
        # Interlaced: two fields make a frame, so start from twice the frame rate.
        rate = Fraction(str(fps)) * (2 if interlaced else 1)
        argv += ["-f", "lavfi", "-i",
                 f"testsrc2=size={src_w}x{src_h}:rate={rate}:duration={seconds}"]
    if audio:
        argv += ["-f", "lavfi", "-i",
                 f"sine=frequency=440:sample_rate={audio_sample_rate}:duration={seconds}"]
    subtitle_input = None
    if subtitles:
        if suffix not in _SUBTITLE_CODECS:
            raise ValueError(f"no subtitle codec for {suffix} clips")
        subtitle_input = path.with_name(path.name + ".srt")
        subtitle_input.write_text(_srt(seconds))
        argv += ["-i", str(subtitle_input)]

    index = 0
    if video:
        argv += ["-map", f"{index}:v"]
        index += 1
    if audio:
        argv += ["-map", f"{index}:a"]
        index += 1
    if subtitles:
        argv += ["-map", f"{index}:s", "-c:s", _SUBTITLE_CODECS[suffix]]

    if video:
        filters = []
        if (width, height) != (src_w, src_h):
            filters.append(f"scale={width}:{height},setsar=1")
        if interlaced:
            filters += ["tinterlace=mode=interleave_top", "fieldorder=tff"]
        if vfr:
            first_second = round(Fraction(str(fps)))
            filters.append(f"select='lt(n\\,{first_second})+not(mod(n\\,3))'")
        if filters:
            argv += ["-vf", ",".join(filters)]
        if vfr:
            argv += ["-fps_mode", "vfr"]
        if suffix in _VIDEO_CODECS and pix_fmt is None:
            argv += _VIDEO_CODECS[suffix]
        else:
            # x264 crops odd sizes in 4:2:0; 4:4:4 keeps every pixel.
            odd = width % 2 or height % 2
            chosen = pix_fmt or ("yuv444p" if odd else "yuv420p")
            argv += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", chosen]
        if interlaced:
            argv += ["-flags", "+ilme+ildct", "-top", "1"]
    if audio:
        argv += _AUDIO_CODECS.get(suffix, ["-c:a", "aac"])
        argv += ["-ac", str(audio_channels)]
    argv += list(extra_output_args)

    target = path.with_name(path.stem + ".unrotated" + path.suffix) if rotate else path
    argv.append(str(target))
    try:
        proc.run(argv, timeout=TIMEOUT_S)
    finally:
        if subtitle_input is not None:
            subtitle_input.unlink(missing_ok=True)
    if rotate:
        if suffix not in (".mp4", ".mov"):
            raise ValueError("rotation metadata needs an mp4 or mov clip")
        # ffmpeg 5.1 drops the rotate tag when encoding but writes it as a display
        # matrix when copying.
        proc.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
                  "-i", str(target), "-map", "0", "-c", "copy",
                  "-metadata:s:v:0", f"rotate={rotate}", str(path)], timeout=TIMEOUT_S)
        target.unlink()
    return path


def make_level_clip(path: Path, volume_db: float, channels: Sequence[int], seconds: float = 4,
                    size: str = "320x180", fps: int = 25) -> Path:
    """A clip (Matroska, FLAC) with one audio track per entry of channels: pink noise
    over a 440 Hz tone, turned by volume_db (-20: about -35 LUFS; +5: about -10 LUFS,
    peaks limited just under full scale), on every channel of the track."""
    layouts = {1: "mono", 2: "stereo", 6: "5.1"}
    argv = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}:duration={seconds}",
            "-f", "lavfi", "-i", f"anoisesrc=color=pink:sample_rate=48000:amplitude=0.5"
            f":seed=7:duration={seconds}",
            "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}"]
    graph = [f"[1][2]amix=inputs=2:normalize=0,volume={volume_db}dB,"
             "alimiter=limit=0.95:level=false:attack=1:release=20,"
             f"asplit={len(channels)}" + "".join(f"[m{n}]" for n in range(len(channels)))]
    for n, count in enumerate(channels):
        every = "|".join(f"c{c}=c0" for c in range(count))
        graph.append(f"[m{n}]pan={layouts[count]}|{every}[a{n}]")
    argv += ["-filter_complex", ";".join(graph), "-map", "0:v",
             *(a for n in range(len(channels)) for a in ("-map", f"[a{n}]")),
             "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "flac", str(path)]
    proc.run(argv, timeout=TIMEOUT_S)
    return path


def make_subtitles_only(path: Path, seconds: float = 2) -> Path:
    """A Matroska file holding one SubRip track and no audio or video."""
    text = path.with_name(path.name + ".srt")
    text.write_text(_srt(seconds))
    try:
        proc.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
                  "-i", str(text), "-c:s", "srt", str(path)], timeout=TIMEOUT_S)
    finally:
        text.unlink()
    return path


def _srt(seconds: float) -> str:
    end = max(0.5, min(seconds, 2.0))
    return f"1\n00:00:00,000 --> 00:00:0{int(end)},{int(end % 1 * 1000):03d}\nhello\n\n"


@dataclass(frozen=True)
class Track:
    """One audio track of make_audio_tracks_clip: a sine tone, tagged as given."""

    channels: int = 2
    language: str | None = None
    title: str | None = None
    default: bool = False
    seconds: float | None = None  # None: as long as the video


def make_audio_tracks_clip(path: Path, tracks: Sequence[Track], seconds: float = 4,
                           size: str = "320x180", fps: int = 25, video: bool = True) -> Path:
    """A clip (Matroska: any title survives) with one audio stream per track, in order:
    AAC at 48 kHz, each at its own frequency, language and title tags, dispositions.
    video=False: the audio tracks alone (name it .mka)."""
    argv = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    if video:
        argv += ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}:duration={seconds}"]
    for n, track in enumerate(tracks):
        argv += ["-f", "lavfi", "-i", f"sine=frequency={330 + 110 * n}:sample_rate=48000"
                 f":duration={track.seconds or seconds}"]
    if video:
        argv += ["-map", "0:v", "-c:v", "libx264", "-preset", "ultrafast"]
    first = 1 if video else 0
    argv += [*(a for n in range(len(tracks)) for a in ("-map", f"{n + first}:a")), "-c:a", "aac"]
    for n, track in enumerate(tracks):
        argv += [f"-ac:a:{n}", str(track.channels),
                 f"-disposition:a:{n}", "default" if track.default else "0"]
        if track.language is not None:
            argv += [f"-metadata:s:a:{n}", f"language={track.language}"]
        if track.title is not None:
            argv += [f"-metadata:s:a:{n}", f"title={track.title}"]
    proc.run([*argv, str(path)], timeout=TIMEOUT_S)
    return path


def video_found(path: Path) -> str:
    """The video streams ffprobe finds in a file, as "codec,width,height" lines.

    For ciphertext: ffprobe names a format for about one noise file in sixty
    (h263, ac3, lrc...), so "nothing found" cannot be the test; the clip's own
    codec and size not being found is.
    """
    probe = subprocess.run(["ffprobe", "-v", "quiet", "-select_streams", "v", "-show_entries",
                            "stream=codec_name,width,height", "-of", "csv=p=0", str(path)],
                           capture_output=True, text=True, check=False, timeout=60)
    return probe.stdout

# HDR10 static metadata as x265 spells it: Display P3 primaries, D65, 1000 cd/m2
# peak and 0.005 minimum (ST 2086 units: 1/50000 and 1/10000 cd/m2); CLL 1000/400.
MASTERING_DISPLAY = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,50)"
MAX_CLL = "1000,400"


def make_hdr_clip(path: Path, transfer: str, seconds: float = 3, size: str = "320x180",
                  fps: int = 25) -> Path:
    """A 10-bit HEVC master in BT.2020 with an AAC track: transfer "smpte2084" (PQ,
    HDR10, with MASTERING_DISPLAY and MAX_CLL in its SEI) or "arib-std-b67" (HLG)."""
    params = ["log-level=error", "colorprim=bt2020", f"transfer={transfer}",
              "colormatrix=bt2020nc"]
    if transfer == "smpte2084":
        params += ["hdr10=1", f"master-display={MASTERING_DISPLAY}", f"max-cll={MAX_CLL}"]
    proc.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
              "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}:duration={seconds}",
              "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
              "-map", "0:v", "-map", "1:a", "-pix_fmt", "yuv420p10le",
              "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", ":".join(params),
              "-color_primaries", "bt2020", "-color_trc", transfer, "-colorspace", "bt2020nc",
              "-c:a", "aac", str(path)], timeout=TIMEOUT_S)
    return path


@dataclass(frozen=True)
class Subtitle:
    """One subtitle track of make_subtitles_clip: cues (start s, end s, text), tagged.

    fmt: "srt" (SubRip source), "ass" (text with ASS styling) or "pgs" (pictures:
    empty PGS display sets at the cue times, which is all a probe needs to see).
    """

    cues: tuple[tuple[float, float, str], ...]
    language: str | None = None
    title: str | None = None
    forced: bool = False
    fmt: str = "srt"


# What each subtitle source becomes in each container ("copy": kept as it is).
_SUBTITLE_STORED = {(".mp4", "srt"): "mov_text", (".mp4", "ass"): "mov_text",
                    (".mkv", "srt"): "srt", (".mkv", "ass"): "ass", (".mkv", "pgs"): "copy"}


def make_subtitles_clip(path: Path, subtitles: Sequence[Subtitle], seconds: float = 4,
                        size: str = "320x180", fps: int = 25, audio_codec: str = "aac"
                        ) -> Path:
    """A clip with H.264 video, one audio track and the subtitle tracks, in order; the
    container (.mp4: mov_text, .mkv: SubRip, ASS or PGS) by the path's suffix.

    In Matroska, AAC's priming makes ffmpeg start the whole file 21 ms early, so
    the video (and every subtitle) starts 21 ms after the file does; FLAC does not.
    """
    argv = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}:duration={seconds}",
            "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}"]
    inputs = []
    for n, sub in enumerate(subtitles):
        written = path.with_name(f"{path.stem}.{n}.{'sup' if sub.fmt == 'pgs' else sub.fmt}")
        if sub.fmt == "pgs":
            written.write_bytes(_pgs(sub.cues, size))
        else:
            written.write_text(_ass(sub.cues) if sub.fmt == "ass" else _srt_cues(sub.cues),
                               encoding="utf-8")
        inputs.append(written)
        argv += ["-i", str(written)]
    argv += ["-map", "0:v", "-map", "1:a",
             *(a for n in range(len(subtitles)) for a in ("-map", f"{n + 2}:s")),
             "-c:v", "libx264", "-preset", "ultrafast", "-c:a", audio_codec]
    for n, sub in enumerate(subtitles):
        argv += [f"-c:s:{n}", _SUBTITLE_STORED[(path.suffix, sub.fmt)],
                 f"-disposition:s:{n}", "forced" if sub.forced else "0"]
        if sub.language is not None:
            argv += [f"-metadata:s:s:{n}", f"language={sub.language}"]
        if sub.title is not None:
            argv += [f"-metadata:s:s:{n}", f"title={sub.title}"]
    try:
        proc.run([*argv, str(path)], timeout=TIMEOUT_S)
    finally:
        for written in inputs:
            written.unlink(missing_ok=True)
    return path


def _stamp(seconds: float, sep: str) -> str:
    ms = round(seconds * 1000)
    hours, minutes, whole = ms // 3_600_000, ms // 60_000 % 60, ms // 1000 % 60
    return f"{hours:02d}:{minutes:02d}:{whole:02d}{sep}{ms % 1000:03d}"


def _srt_cues(cues: Sequence[tuple[float, float, str]]) -> str:
    return "".join(f"{n}\n{_stamp(start, ',')} --> {_stamp(end, ',')}\n{text}\n\n"
                   for n, (start, end, text) in enumerate(cues, 1))


def _ass(cues: Sequence[tuple[float, float, str]]) -> str:
    """ASS with a style and override tags around each line's words."""
    def stamp(seconds: float) -> str:
        cs = round(seconds * 100)
        return f"{cs // 360_000}:{cs // 6000 % 60:02d}:{cs // 100 % 60:02d}.{cs % 100:02d}"

    events = "".join(
        f"Dialogue: 0,{stamp(start)},{stamp(end)},Default,,0,0,0,,"
        + "{\\b1\\pos(10,20)}" + text.replace("\n", "\\N") + "{\\b0}\n"
        for start, end, text in cues)
    return ("[Script Info]\nScriptType: v4.00+\nPlayResX: 320\nPlayResY: 180\n\n"
            "[V4+ Styles]\nFormat: Name, Fontname, Fontsize, PrimaryColour, Bold, Italic\n"
            "Style: Default,Arial,20,&H00FFFFFF,0,0\n\n"
            "[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV,"
            " Effect, Text\n" + events)


def _pgs(cues: Sequence[tuple[float, float, str]], size: str) -> bytes:
    """A Blu-ray .sup stream: at each cue's start and end an empty display set (a
    presentation composition with no objects, then an end segment)."""
    width, height = (int(v) for v in size.split("x"))
    out = bytearray()
    for number, (start, end, _text) in enumerate(cues):
        for at in (start, end):
            pts = round(at * 90_000).to_bytes(4, "big")
            composition = (width.to_bytes(2, "big") + height.to_bytes(2, "big") + b"\x10"
                           + number.to_bytes(2, "big") + b"\x80\x00\x00\x00")
            for kind, data in ((0x16, composition), (0x80, b"")):
                out += b"PG" + pts + bytes(4) + bytes([kind]) + len(data).to_bytes(2, "big")
                out += data
    return bytes(out)



# Kinds of picture make_content_clip makes, from the cheapest to encode to the dearest.
CONTENT_KINDS = ("slides", "cartoon", "talking_head", "high_motion")


def make_content_clip(path: Path, kind: str, seconds: float = 4, size: str = "320x180",
                      fps: int = 30, bitrate: str | None = None) -> Path:
    """A video-only clip of one kind of content (CONTENT_KINDS), near-lossless H.264:

    slides: a plain page with a chart that changes every 3 s; cartoon: boxes of flat colour
    moving over a flat background; talking_head: a detailed, soft-focus still
    background, one small part of the picture moving slowly, light sensor noise;
    high_motion: a busy moving picture under heavy film-grain-like noise.
    bitrate: constant, padded with filler, as a mezzanine master's (which then caps
    no rung of plan_ladder); else near-lossless, as small as the picture allows.
    """
    width, height = (int(v) for v in size.split("x"))
    source = f"testsrc2=size={size}:rate={fps}"
    inputs: list[str]
    if kind == "slides":
        # A detailed chart on a plain page, a new one every 3 s.
        chart = f"{width // 3 // 2 * 2}x{height // 3 // 2 * 2}"
        inputs = [f"color=c=0xf4f4f0:size={size}:rate={fps}", f"testsrc2=size={chart}:rate=1/3"]
        graph = f"[1]fps={fps}[chart];[0][chart]overlay=x={width // 8}:y={height // 4}"
    elif kind == "cartoon":
        box_a, box_b = f"{width // 4}x{width // 4}", f"{width // 7}x{height // 2}"
        inputs = [f"color=c=0x3070c0:size={size}:rate={fps}",
                  f"color=c=0xf0d020:size={box_a}:rate={fps}",
                  f"color=c=0xd03030:size={box_b}:rate={fps}"]
        graph = (f"[0][1]overlay=x='{width // 16}+t*{width // 10}'"
                 f":y='{height // 6}+{height // 9}*sin(t*2)'[a];"
                 f"[a][2]overlay=x='{width * 3 // 4}-t*{width // 12}':y={height // 4}")
    elif kind == "talking_head":
        face = f"{width // 4}x{height // 2}"
        inputs = [source, f"testsrc2=size={face}:rate={fps}"]
        graph = (f"[0]trim=end_frame=1,loop=loop=-1:size=1,setpts=N/{fps}/TB,gblur=sigma=3[room];"
                 f"[1]hue=s=0.3[face];"
                 f"[room][face]overlay=x='{width * 3 // 8}+{width // 64}*sin(t*2)'"
                 f":y='{height // 4}+{height // 60}*sin(t*3)',noise=alls=3:allf=t")
    elif kind == "high_motion":
        inputs, graph = [source], "[0]noise=alls=24:allf=t+u"
    else:
        raise ValueError(f"kind must be one of {', '.join(CONTENT_KINDS)}, not {kind!r}")
    argv = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    for lavfi in inputs:
        argv += ["-f", "lavfi", "-i", lavfi]
    # -t ends the endless sources; a key frame a second, as in a mezzanine master.
    argv += ["-filter_complex", f"{graph},format=yuv420p[v]", "-map", "[v]", "-t", f"{seconds:g}",
             "-c:v", "libx264", "-preset", "ultrafast", "-g", str(fps)]
    if bitrate is None:
        argv += ["-crf", "8"]
    else:
        argv += ["-b:v", bitrate, "-minrate", bitrate, "-maxrate", bitrate, "-bufsize", bitrate,
                 "-x264-params", "nal-hrd=cbr"]
    proc.run([*argv, str(path)], timeout=TIMEOUT_S)
    return path
