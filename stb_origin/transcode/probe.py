"""What a source really is: ffprobe, read into a frozen SourceInfo, or a MediaError."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from stb_origin import proc
from stb_origin.settings import Settings
from stb_origin.transcode.errors import MediaError
from stb_origin.transcode.inputs import input_args

MIN_SOURCE_SECONDS = 0.5
MAX_DIMENSION = 8192
# Frame rates outside this range are container time bases, not frame rates.
SANE_FPS = (1.0, 240.0)
FALLBACK_FPS = 30.0
# How far back from the end the completeness check starts reading.
TAIL_SECONDS = 3.0

INTERLACED_FIELD_ORDERS = frozenset({"tt", "bb", "tb", "bt"})
# color_transfer values (ffprobe's names) that make a source HDR, and the
# VIDEO-RANGE each is labelled with (RFC 8216bis 4.4.6.2).
HDR_TRANSFERS = {"smpte2084": "PQ", "arib-std-b67": "HLG"}
SDR = "SDR"
# Subtitle codecs as ffprobe names them: text becomes WebVTT, pictures cannot.
TEXT_SUBTITLE_CODECS = frozenset({"mov_text", "subrip", "srt", "ass", "ssa", "webvtt", "text"})
IMAGE_SUBTITLE_CODECS = frozenset({"hdmv_pgs_subtitle", "dvb_subtitle", "dvd_subtitle",
                                   "xsub", "dvb_teletext"})
# Captions are looked for in this much of the start of the video: masters that carry
# CEA-608/708 carry cc_data (padding at least) in every frame.
CAPTIONS_PROBE_SECONDS = 2
A53_SIDE_DATA = "ATSC A53 Part 4 Closed Captions"


@dataclass(frozen=True)
class AudioTrack:
    index: int  # ffprobe stream index, so ffmpeg maps exactly the stream probed
    codec: str | None
    channels: int
    sample_rate: int | None
    # As the upload says, unchecked: ladder.py normalises them before any playlist sees them.
    language: str | None
    title: str | None
    default: bool  # the source's default disposition
    # The ffmpeg input (-i) holding it: 0 is the master; a sidecar file is another.
    input_index: int = 0


@dataclass(frozen=True)
class Colour:
    """The source's colour description, in ffprobe's (and ffmpeg's option) names.

    mastering_display and max_cll are x265's spelling of the HDR10 static
    metadata ("G(x,y)B(x,y)R(x,y)WP(x,y)L(max,min)" and "max,average"), made
    from numbers only, so nothing of the upload's bytes reaches an argv.
    """

    primaries: str | None = None
    transfer: str | None = None
    matrix: str | None = None
    mastering_display: str | None = None
    max_cll: str | None = None

    @property
    def video_range(self) -> str:
        return HDR_TRANSFERS.get(self.transfer or "", SDR)


@dataclass(frozen=True)
class SubtitleTrack:
    index: int  # ffprobe stream index
    codec: str
    # "text" (made into WebVTT), "image" (left out: pictures of text) or "unknown".
    kind: str
    # As the upload says, unchecked: transcode/subtitles.py normalises them.
    language: str | None
    title: str | None
    forced: bool  # the source's forced disposition: text shown even with subtitles off
    default: bool


@dataclass(frozen=True)
class AudioFile:
    """A sidecar audio upload: its one audio stream, and how long it lasts."""

    track: AudioTrack
    duration_s: float


@dataclass(frozen=True)
class SourceInfo:
    duration_s: float
    # Display dimensions: rotation and non-square pixels already applied.
    width: int
    height: int
    fps: float
    variable_frame_rate: bool
    interlaced: bool
    pix_fmt: str
    bit_depth: int
    video_codec: str
    # From the stream, else estimated from the container's overall bit rate.
    video_bitrate: int | None
    # Degrees, as the display matrix says (0, 90, 180 or 270).
    rotation: int
    audio_tracks: tuple[AudioTrack, ...]  # in stream order
    format_name: str
    size_bytes: int
    # ffprobe stream indexes, so ffmpeg maps exactly the streams probed; None: audio
    # only (then the picture fields are 0, "" or None).
    video_stream_index: int | None
    colour: Colour = Colour()
    subtitle_tracks: tuple[SubtitleTrack, ...] = ()  # every one, in stream order
    # How long after the file's start (ffmpeg's time 0 for what it writes) the
    # video starts: the renditions' time 0, where subtitle cues are timed from.
    video_start_s: float = 0.0
    # CEA-608/708 captions in the video (A53 side data on its first frames).
    closed_captions: bool = False

    @property
    def video_range(self) -> str:
        """SDR, or PQ / HLG for an HDR10 / HLG source."""
        return self.colour.video_range

    @property
    def has_audio(self) -> bool:
        return bool(self.audio_tracks)

    @property
    def has_video(self) -> bool:
        return self.video_stream_index is not None

    @property
    def warnings(self) -> list[str]:
        """What the package will leave out of the source, in words for the content team."""
        return [f"subtitle track {t.index} ({t.codec}) is {_LEFT_OUT[t.kind]}: left out"
                for t in self.subtitle_tracks if t.kind != "text"]

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "has_audio": self.has_audio,
                "has_video": self.has_video, "warnings": self.warnings}


_LEFT_OUT = {"image": "made of pictures, which WebVTT cannot carry",
             "unknown": "in a format that cannot be made into WebVTT"}


def probe(path: Path, settings: Settings) -> SourceInfo:
    size = path.stat().st_size  # a missing file is the caller's bug, not bad media
    if size == 0:
        raise MediaError("invalid_media", "the file is empty")
    data = _ffprobe_json(path, settings)
    info = source_from_ffprobe(data, size)
    if info.video_range == "PQ" and info.colour.mastering_display is None:
        # Often only in the bitstream (SEI), which the decoder hands to each frame.
        info = dataclasses.replace(info, colour=_with_side_data(
            info.colour, _first_frame_side_data(path, info, settings)))
    _check_dimensions(info)
    if info.duration_s > 0:
        _check_duration(info, settings)  # before reading any media data
    start = _float((data.get("format") or {}).get("start_time")) or 0.0
    info = _checked_complete(info, _media_end(path, info, start, settings))
    _check_duration(info, settings)
    return dataclasses.replace(info, closed_captions=has_captions(path, info, settings))


def probe_audio_file(path: Path, settings: Settings) -> AudioFile:
    """A sidecar audio file: exactly one audio stream, no video, a duration; else MediaError."""
    data = _ffprobe_json(path, settings)
    streams = data.get("streams") or []
    if any(_is_picture_stream(s) for s in streams):
        raise MediaError("video_in_audio_track",
                         "the file has a video stream: a sidecar audio track is audio only")
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    if len(audio) != 1:
        raise MediaError("not_one_audio_stream", f"the file has {len(audio)} audio streams;"
                         " a sidecar audio track has exactly one")
    duration = (_float((data.get("format") or {}).get("duration"))
                or _float(audio[0].get("duration")) or 0.0)
    if duration < MIN_SOURCE_SECONDS:
        raise MediaError("no_duration", "the audio has no duration (or under"
                         f" {MIN_SOURCE_SECONDS:g} s)")
    return AudioFile(_audio_track(audio[0]), duration)


def _ffprobe_json(path: Path, settings: Settings) -> dict[str, Any]:
    argv = [
        "ffprobe", "-hide_banner", "-v", "error",
        *input_args(path),
        "-of", "json", "-show_format", "-show_streams",
    ]
    try:
        done = proc.run(argv, timeout=settings.probe_timeout_s)
    except proc.ProcessFailed as exc:
        if exc.timed_out:
            raise _probe_timeout(settings) from None
        raise MediaError("invalid_media", _open_failure(exc.stderr_tail)) from None
    try:
        data = json.loads(done.stdout)
    except ValueError:
        raise MediaError("invalid_media", "not a readable media file") from None
    if not isinstance(data, dict):
        raise MediaError("invalid_media", "not a readable media file")
    return data


def _open_failure(stderr_tail: str) -> str:
    # Fixed wording only: the tail of stderr may quote bytes of the file.
    if "not on whitelist" in stderr_tail:
        return ("not a supported container (accepted: MP4/MOV, MKV/WebM, MPEG-TS,"
                " MPEG-PS, AVI, FLV, MXF, WMV, Ogg; audio only: WAV, MP3, AAC, FLAC)")
    if "moov atom not found" in stderr_tail:
        return "truncated or incomplete MP4/MOV file: its index (moov atom) is missing"
    if "Invalid data found" in stderr_tail:
        return "not a readable media file (invalid data)"
    return "not a readable media file"


def source_from_ffprobe(data: dict[str, Any], size_bytes: int) -> SourceInfo:
    """Pure: ffprobe's JSON (format + streams) to a SourceInfo, refusing what we can't use."""
    fmt = data.get("format") or {}
    streams = data.get("streams") or []
    video = next((s for s in streams if _is_picture_stream(s)), None)
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    if video is None:
        if not audio:
            raise MediaError("no_media", "no audio or video stream")
        return _audio_only(fmt, audio, size_bytes)
    if not video.get("codec_name"):
        raise MediaError("unsupported_media", "the video codec is not supported")

    coded_w, coded_h = _int(video.get("width")) or 0, _int(video.get("height")) or 0
    if coded_w <= 0 or coded_h <= 0:
        raise MediaError("invalid_media", "the video stream has no picture size")
    rotation = _rotation(video)
    width, height = _display_size(coded_w, coded_h, video.get("sample_aspect_ratio"), rotation)
    interlaced = video.get("field_order") in INTERLACED_FIELD_ORDERS
    fps, vfr = _frame_rate(video.get("avg_frame_rate"), video.get("r_frame_rate"), interlaced)

    duration = _float(fmt.get("duration")) or _float(video.get("duration")) or 0.0
    return SourceInfo(
        duration_s=duration,
        width=width,
        height=height,
        fps=fps,
        variable_frame_rate=vfr,
        interlaced=interlaced,
        pix_fmt=str(video.get("pix_fmt") or "unknown"),
        bit_depth=_bit_depth(video),
        video_codec=str(video["codec_name"]),
        video_bitrate=_video_bitrate(video, audio, fmt),
        rotation=rotation,
        audio_tracks=tuple(_audio_track(s) for s in audio),
        format_name=str(fmt.get("format_name") or "unknown"),
        size_bytes=size_bytes,
        video_stream_index=int(video["index"]),
        colour=_with_side_data(_colour(video), video.get("side_data_list") or []),
        subtitle_tracks=tuple(_subtitle_track(s) for s in streams
                              if s.get("codec_type") == "subtitle"),
        video_start_s=_video_start(video, fmt),
    )


def _audio_only(fmt: dict[str, Any], audio: list[dict[str, Any]], size_bytes: int
                ) -> SourceInfo:
    duration = _float(fmt.get("duration")) or max(
        (_float(a.get("duration")) or 0.0 for a in audio), default=0.0)
    return SourceInfo(
        duration_s=duration, width=0, height=0, fps=0.0, variable_frame_rate=False,
        interlaced=False, pix_fmt="", bit_depth=0, video_codec="", video_bitrate=None,
        rotation=0, audio_tracks=tuple(_audio_track(s) for s in audio),
        format_name=str(fmt.get("format_name") or "unknown"), size_bytes=size_bytes,
        video_stream_index=None,
    )


# ffprobe's values are plain names; anything else (a hostile or broken file) is dropped.
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")


def _colour(video: dict[str, Any]) -> Colour:
    def name(key: str) -> str | None:
        value = str(video.get(key) or "")
        return value if _NAME.fullmatch(value) and value != "unknown" else None

    return Colour(primaries=name("color_primaries"), transfer=name("color_transfer"),
                  matrix=name("color_space"))


def _with_side_data(colour: Colour, side_data: list[Any]) -> Colour:
    for side in side_data:
        if not isinstance(side, dict):
            continue
        kind = side.get("side_data_type")
        if kind == "Mastering display metadata" and colour.mastering_display is None:
            colour = dataclasses.replace(colour, mastering_display=_mastering_display(side))
        elif kind == "Content light level metadata" and colour.max_cll is None:
            cll = (_int(side.get("max_content")), _int(side.get("max_average")))
            if all(v is not None and 0 <= v <= 65535 for v in cll):
                colour = dataclasses.replace(colour, max_cll=f"{cll[0]},{cll[1]}")
    return colour


def _mastering_display(side: dict[str, Any]) -> str | None:
    """x265's master-display: chromaticities in 1/50000, luminance in 1/10000 cd/m2
    (the SMPTE ST 2086 SEI units); None when any value is missing or out of range."""
    def scaled(key: str, unit: int, limit: int) -> int | None:
        ratio = _ratio(side.get(key), "/")
        value = round(ratio * unit) if ratio is not None else None
        return value if value is not None and 0 <= value <= limit else None

    xy = {k: scaled(k, 50_000, 50_000) for k in (
        "green_x", "green_y", "blue_x", "blue_y", "red_x", "red_y",
        "white_point_x", "white_point_y")}
    lum = {k: scaled(k, 10_000, 2**32 - 1) for k in ("max_luminance", "min_luminance")}
    values = {**xy, **lum}
    if any(v is None for v in values.values()):
        return None
    return ("G({green_x},{green_y})B({blue_x},{blue_y})R({red_x},{red_y})"
            "WP({white_point_x},{white_point_y})L({max_luminance},{min_luminance})"
            .format(**values))


def _first_frame_side_data(path: Path, info: SourceInfo, settings: Settings) -> list[Any]:
    argv = ["ffprobe", "-hide_banner", "-v", "error", *input_args(path),
            "-select_streams", str(info.video_stream_index), "-read_intervals", "%+#1",
            "-show_entries", "frame=side_data_list:frame_side_data", "-of", "json"]
    try:
        done = proc.run(argv, timeout=settings.probe_timeout_s)
        frames = json.loads(done.stdout).get("frames") or []
    except (proc.ProcessFailed, ValueError, AttributeError):
        return []  # the metadata is optional; the transcode reports unreadable media
    return list((frames[0] if frames else {}).get("side_data_list") or [])



def _video_start(video: dict[str, Any], fmt: dict[str, Any]) -> float:
    start = _float(video.get("start_time"))
    file_start = _float(fmt.get("start_time"))
    if start is None or file_start is None:
        return 0.0
    return max(0.0, start - file_start)


def _subtitle_track(stream: dict[str, Any]) -> SubtitleTrack:
    tags = {str(k).lower(): v for k, v in (stream.get("tags") or {}).items()}
    disposition = stream.get("disposition") or {}
    codec = str(stream.get("codec_name") or "unknown")
    kind = ("text" if codec in TEXT_SUBTITLE_CODECS
            else "image" if codec in IMAGE_SUBTITLE_CODECS else "unknown")
    return SubtitleTrack(
        index=int(stream["index"]), codec=codec, kind=kind,
        language=str(tags["language"]) if tags.get("language") else None,
        title=str(tags["title"]) if tags.get("title") else None,
        forced=bool(disposition.get("forced")), default=bool(disposition.get("default")))


def _audio_track(stream: dict[str, Any]) -> AudioTrack:
    tags = {str(k).lower(): v for k, v in (stream.get("tags") or {}).items()}
    return AudioTrack(
        index=int(stream["index"]),
        codec=str(stream["codec_name"]) if stream.get("codec_name") else None,
        channels=_int(stream.get("channels")) or 2,
        sample_rate=_int(stream.get("sample_rate")),
        language=str(tags["language"]) if tags.get("language") else None,
        title=str(tags["title"]) if tags.get("title") else None,
        default=bool((stream.get("disposition") or {}).get("default")),
    )


def _is_picture_stream(stream: dict[str, Any]) -> bool:
    # Cover art in an audio file is a "video" stream of one picture: not video.
    disposition = stream.get("disposition") or {}
    return stream.get("codec_type") == "video" and not disposition.get("attached_pic")


def _rotation(video: dict[str, Any]) -> int:
    degrees: float = 0.0
    for side in video.get("side_data_list") or []:
        if "rotation" in side:
            degrees = float(side["rotation"])
            break
    else:
        degrees = _float((video.get("tags") or {}).get("rotate")) or 0.0
    return round(degrees / 90.0) * 90 % 360


def _display_size(width: int, height: int, sar: Any, rotation: int) -> tuple[int, int]:
    ratio = _ratio(sar, ":")
    if ratio is not None and ratio > 0 and ratio != 1:
        width = max(1, round(width * ratio))
    if rotation in (90, 270):
        width, height = height, width
    return width, height


def _frame_rate(avg: Any, real: Any, interlaced: bool) -> tuple[float, bool]:
    avg_fps, r_fps = _sane_fps(avg), _sane_fps(real)
    if avg_fps is None and r_fps is None:
        return FALLBACK_FPS, True
    if avg_fps is None or r_fps is None:
        return float(avg_fps or r_fps or FALLBACK_FPS), True
    # Interlaced streams may report the field rate as r_frame_rate.
    if interlaced and abs(r_fps - 2 * avg_fps) <= 0.01 * r_fps:
        return avg_fps, False
    return avg_fps, abs(avg_fps - r_fps) > 0.01 * r_fps


def _sane_fps(value: Any) -> float | None:
    ratio = _ratio(value, "/")
    if ratio is None:
        return None
    fps = float(ratio)
    return fps if SANE_FPS[0] <= fps <= SANE_FPS[1] else None


def _bit_depth(video: dict[str, Any]) -> int:
    raw = _int(video.get("bits_per_raw_sample"))
    if raw:
        return raw
    match = re.search(r"p(\d+)(?:le|be)$", str(video.get("pix_fmt") or ""))
    return int(match.group(1)) if match else 8


def _video_bitrate(video: dict[str, Any], audio: list[dict[str, Any]],
                   fmt: dict[str, Any]) -> int | None:
    own = _int(video.get("bit_rate"))
    if own:
        return own
    total = _int(fmt.get("bit_rate"))
    if not total:
        return None
    audio_rate = sum(_int(a.get("bit_rate")) or 0 for a in audio)
    return total - audio_rate if total > audio_rate else total


def has_captions(path: Path, info: SourceInfo, settings: Settings) -> bool:
    # ffprobe's own closed_captions flag stays 0 for streams whose first frames
    # carry captions (its decoder never outputs a frame while probing).
    if not info.has_video:
        return False
    argv = ["ffprobe", "-hide_banner", "-v", "error", *input_args(path),
            "-select_streams", str(info.video_stream_index),
            "-read_intervals", f"%+{CAPTIONS_PROBE_SECONDS}",
            "-show_entries", "frame_side_data=side_data_type", "-of", "csv=p=0"]
    try:
        done = proc.run(argv, timeout=settings.probe_timeout_s)
    except proc.ProcessFailed as exc:
        if exc.timed_out:
            raise _probe_timeout(settings) from None
        raise MediaError("invalid_media", "the video cannot be decoded") from None
    return A53_SIDE_DATA in done.stdout


def _media_end(path: Path, info: SourceInfo, start: float, settings: Settings
               ) -> float | None:
    """Where the last packet of any stream ends, relative to the start; None when unknown.

    Demuxing only from a few seconds before the claimed end keeps this cheap; a
    file cut short (an MP4 with its index first, say) has no packets there.
    """
    if info.duration_s > TAIL_SECONDS:
        # -read_intervals takes timestamps, which count from the file's start time.
        seek = start + info.duration_s - TAIL_SECONDS
        end = _last_packet_end(path, settings, f"{seek:.3f}%")
        if end is not None:
            return end
    return _last_packet_end(path, settings, None)


def _last_packet_end(path: Path, settings: Settings, interval: str | None) -> float | None:
    start = [0.0]
    seen = [False]
    last = [float("-inf")]

    def on_line(line: str) -> None:
        # "packet|pts_time=1.42|duration_time=0.03|..." or "format|start_time=1.40"
        section, *pairs = line.split("|")
        values = dict(pair.partition("=")[::2] for pair in pairs)
        if section == "format":
            start[0] = _float(values.get("start_time")) or 0.0
            return
        pts = _float(values.get("pts_time"))
        if section != "packet" or pts is None:
            return
        seen[0] = True
        last[0] = max(last[0], pts + (_float(values.get("duration_time")) or 0.0))

    argv = ["ffprobe", "-hide_banner", "-v", "error", *input_args(path)]
    if interval is not None:
        argv += ["-read_intervals", interval]
    argv += ["-show_entries", "packet=pts_time,duration_time:format=start_time", "-of", "compact"]
    try:
        proc.run(argv, timeout=settings.probe_timeout_s, on_line=on_line)
    except proc.ProcessFailed as exc:
        if exc.timed_out:
            raise _probe_timeout(settings) from None
        raise MediaError("invalid_media", "the media data cannot be read") from None
    return last[0] - start[0] if seen[0] else None


def _checked_complete(info: SourceInfo, end: float | None) -> SourceInfo:
    if end is None:
        raise MediaError("invalid_media", "the file holds no readable media data")
    if info.duration_s <= 0:
        # The container does not say (a live recording, say): trust the packets.
        return dataclasses.replace(info, duration_s=max(end, 0.0))
    missing = info.duration_s - end
    if missing > max(1.0, 0.02 * info.duration_s):
        raise MediaError(
            "invalid_media",
            f"truncated file: media data stops at {max(end, 0.0):.1f} s"
            f" of {info.duration_s:.1f} s",
        )
    return info


def _probe_timeout(settings: Settings) -> MediaError:
    return MediaError("probe_timeout",
                      f"reading the file took longer than {settings.probe_timeout_s:g} s")


def _check_dimensions(info: SourceInfo) -> None:
    if info.width > MAX_DIMENSION or info.height > MAX_DIMENSION:
        raise MediaError(
            "too_large_dimensions",
            f"{info.width}x{info.height} is larger than {MAX_DIMENSION} pixels on a side",
        )


def _check_duration(info: SourceInfo, settings: Settings) -> None:
    if info.duration_s < MIN_SOURCE_SECONDS:
        raise MediaError(
            "too_short",
            f"duration {info.duration_s:.2f} s is under the minimum {MIN_SOURCE_SECONDS:g} s",
        )
    if info.duration_s > settings.max_source_seconds:
        raise MediaError(
            "too_long",
            f"duration {info.duration_s:.0f} s is over the limit"
            f" of {settings.max_source_seconds:.0f} s",
        )


def _ratio(value: Any, sep: str) -> Fraction | None:
    try:
        num, den = str(value).split(sep)
        if int(den) == 0:
            return None
        return Fraction(int(num), int(den))
    except (ValueError, TypeError):
        return None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None
