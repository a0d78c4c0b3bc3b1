"""Which renditions to make of a source: a pure function of the probe, the
complexity analysis (per-title bit rates) and the settings."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from stb_origin.settings import Settings
from stb_origin.storage.layout import iframes_name
from stb_origin.transcode.audio import AudioRendition, plan_audio
from stb_origin.transcode.complexity import Complexity, rung_bitrate
from stb_origin.transcode.probe import SDR, AudioTrack, SourceInfo

H264 = "h264"
HEVC = "hevc"


@dataclass(frozen=True)
class Rendition:
    name: str
    width: int
    height: int
    video_bitrate: int  # bits per second, the encoder's target average
    maxrate: int
    bufsize: int
    profile: str
    level: str | None  # None: the encoder picks the lowest that fits (x265 does)
    codec: str = H264
    # SDR, PQ or HLG: the VIDEO-RANGE of its variant. An SDR rendition of an HDR
    # source is tone-mapped; a PQ/HLG one keeps the source's colours, 10-bit.
    video_range: str = SDR

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Ladder:
    renditions: tuple[Rendition, ...]  # highest first; none for an audio-only source
    # Constant output rate; exact_rate(fps) gives it back as 30000/1001 and the like.
    fps: float
    segment_seconds: float
    # Key frames this far apart in every rendition: at most KEYFRAME_SECONDS, and a
    # whole number of them in every segment (Grid checks it).
    gop_seconds: float
    # The I-frame (trick-play) tracks, one per resolution tier (iframe_tiers), highest
    # first: video only, one key frame per segment; none when there is no video.
    iframes: tuple[Rendition, ...]
    # Audio-only renditions, in their groups; the video renditions carry no audio.
    audio: tuple[AudioRendition, ...] = ()
    # The first segment_seconds of the stream is cut into this many equal segments:
    # a player's first download is then a short one, which is most of its start time.
    # After that every segment is segment_seconds long, on the same grid as without.
    first_segments: int = 1
    # CEA-608/708 captions of the source carried on in the renditions' video.
    closed_captions: bool = False
    # What the plan leaves out of the source, in words for the content team.
    warnings: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Ladder:
        """The ladder to_json gave: a plan handed to another worker (chunked.py)."""
        return cls(**{**data,
                      "renditions": tuple(Rendition(**r) for r in data["renditions"]),
                      "iframes": tuple(Rendition(**r) for r in data["iframes"]),
                      "audio": tuple(AudioRendition.from_json(a) for a in data["audio"])})

    def to_json(self) -> dict[str, Any]:
        return {
            "renditions": [r.to_json() for r in self.renditions],
            "fps": self.fps,
            "segment_seconds": self.segment_seconds,
            "gop_seconds": self.gop_seconds,
            "first_segments": self.first_segments,
            "iframes": [r.to_json() for r in self.iframes],
            "audio": [a.to_json() for a in self.audio],
            "closed_captions": self.closed_captions,
        }


@dataclass(frozen=True)
class Grid:
    """Where segments and key frames fall, exactly: `count` short segments of `short`
    seconds, then segments of `segment` seconds, each a whole number of GOPs."""

    segment: Fraction
    short: Fraction
    count: int
    gop: Fraction

    @property
    def gops_per_short(self) -> int:
        return int(self.short / self.gop)

    @property
    def gops_per_segment(self) -> int:
        return int(self.segment / self.gop)


def grid(ladder: Ladder) -> Grid:
    segment = Fraction(ladder.segment_seconds).limit_denominator(1000)
    count = max(1, ladder.first_segments)
    gop = Fraction(ladder.gop_seconds).limit_denominator(1000)
    short = segment / count
    if (short / gop).denominator != 1:
        raise ValueError(f"{ladder.gop_seconds} s GOPs do not fill {float(short):g} s segments")
    return Grid(segment, short, count, gop)


def gop_seconds(segment_seconds: float, first_segments: int) -> float:
    """The longest GOP of at most KEYFRAME_SECONDS that the short first segments
    (and so every segment) hold a whole number of: 2 s for even segment lengths."""
    short = Fraction(segment_seconds).limit_denominator(1000) / max(1, first_segments)
    return float(short / math.ceil(short / Fraction(KEYFRAME_SECONDS)))


@dataclass(frozen=True)
class Rung:
    name: str
    width: int  # landscape box; portrait sources use it turned on its side
    height: int
    bitrate: int  # for <= 30 fps; the cap, which per-title bit rates never exceed


# Modelled on Apple's HLS authoring spec (H.264, 16:9), highest first.
DEFAULT_RUNGS = (
    Rung("1080p", 1920, 1080, 6_000_000),
    Rung("720p", 1280, 720, 3_000_000),
    Rung("540p", 960, 540, 2_000_000),
    Rung("432p", 768, 432, 1_100_000),
    Rung("360p", 640, 360, 365_000),
    Rung("234p", 416, 234, 145_000),
)

# HEVC only, for 4K sources: Apple's HEVC table gives 11.6 Mb/s at 2160p (30 fps);
# stated here as H.264 bits (/ HEVC_BITRATE_FACTOR) like the others. H.264 stops
# at 1080p, as Apple's H.264 table does.
UHD_RUNG = Rung("2160p", 3840, 2160, 17_850_000)
# An HEVC rung's bit rate against the H.264 one of the same size. Ohm et al.,
# "Comparison of the Coding Efficiency of Video Coding Standards" (IEEE TCSVT
# 2012), measured HEVC at about 35 % fewer bits than H.264 High for equal PSNR
# on entertainment video; Apple's authoring tables are more cautious (0.75 at
# 1080p, 4.5 vs 6 Mb/s). 0.65 follows the measurement.
HEVC_BITRATE_FACTOR = 0.65
HEVC_SUFFIX = "-hevc"

MAX_FPS = 60
# Above 30 fps a rung gets this much more (Apple: 1080p 6000k -> 7800k at 60).
HIGH_FPS_FACTOR = 1.3
# A source up to this much smaller than a rung's box still gets that rung, at source size.
BOX_SLACK = 1.1
MIN_VIDEO_BITRATE = 64_000
MAXRATE_FACTOR = 1.25
BUFSIZE_FACTOR = 2.0
# The resolution tiers that get an I-frame track (Apple's 16:9 ladder's 1080p,
# 720p, 432p and 234p-ish sizes): one for each kind of screen that scrubs, a few
# hundred kb/s each, without one for every rung.
IFRAME_TIERS = ("1080p", "720p", "432p", "234p")
# The first segments are at least this long. hls.js starts after one segment, so
# 1 s would start it about 150 ms sooner still (bench/start_time.py, 20 Mb/s);
# but players that buffer ~2.5 s before they start (ExoPlayer's default) would
# only make more requests for it. And 2 s segments stay exactly as they are.
START_SEGMENT_SECONDS = 2.0
# Apple's HLS authoring spec 1.9: key frames (IDR) every 2 s, so that a player can
# switch or seek there, and trick play has a picture every 2 s to show.
KEYFRAME_SECONDS = 2.0
TRICKPLAY_BITS_PER_PIXEL = 1.0  # per I-frame; they are few, let them look good
# Frame rates that a VFR average or a rounded float should snap to.
STANDARD_RATES = tuple(
    Fraction(r) for r in ("24000/1001", "24", "25", "30000/1001", "30",
                          "48", "50", "60000/1001", "60")
)


def plan_ladder(source: SourceInfo, settings: Settings, complexity: Complexity | None = None,
                rungs: tuple[Rung, ...] = DEFAULT_RUNGS, *,
                sidecar_audio: Sequence[AudioTrack] = ()) -> Ladder:
    """The H.264 ladder (SDR; tone-mapped from an HDR source), then the HEVC one.

    complexity: the title's analysis (complexity.analyse), which sets each rung's
    bit rate under its cap; None: the caps.
    HEVC: only when settings.hevc and the segments are fMP4; on the rungs at
    least hevc_min_height tall (all of them for an HDR source, in its range,
    Main10), plus the 2160p rung for a 4K source when settings.uhd_rung.
    sidecar_audio: tracks of sidecar audio files, after the master's in the audio groups.
    """
    first_segments = count_first_segments(settings.segment_seconds)
    gop = gop_seconds(settings.segment_seconds, first_segments)
    audio = plan_audio((*source.audio_tracks, *sidecar_audio))
    if not source.has_video:
        return Ladder(renditions=(), fps=0.0, segment_seconds=settings.segment_seconds,
                      gop_seconds=gop, iframes=(), audio=audio, first_segments=first_segments)
    fps = output_fps(source.fps, source.variable_frame_rate)
    h264 = _family(source, _fitted_sizes(source.width, source.height, rungs), fps, H264,
                   complexity)
    hevc: list[Rendition] = []
    if settings.hevc and settings.segment_format == "fmp4":
        hdr = source.video_range != SDR
        fitted = _fitted_sizes(source.width, source.height,
                               (UHD_RUNG, *rungs) if settings.uhd_rung else rungs)
        hevc = _family(source, [s for s in fitted
                                if hdr or s.rung_height >= settings.hevc_min_height],
                       fps, HEVC, complexity)
    captions, warnings = _captions(source, fps)
    if hevc and captions:
        # ffmpeg 5.1's libx265 has no a53cc: HEVC renditions would lose the captions,
        # and a viewer who needs them must never be switched to one.
        hevc = []
        warnings += ("HEVC renditions left out: they cannot carry the closed captions",)
    return Ladder(
        renditions=(*h264, *hevc),
        fps=float(fps),
        segment_seconds=settings.segment_seconds,
        gop_seconds=gop,
        # From the H.264 ladder: what every box that scrubs decodes.
        iframes=tuple(_trickplay(r, settings.segment_seconds) for r in iframe_tiers(h264)),
        audio=audio,
        first_segments=first_segments,
        closed_captions=captions,
        warnings=warnings,
    )


def _family(source: SourceInfo, sizes: list[_Size], fps: Fraction, codec: str,
            complexity: Complexity | None) -> list[Rendition]:
    fps_factor = HIGH_FPS_FACTOR if fps > 30 else 1.0
    codec_factor = HEVC_BITRATE_FACTOR if codec == HEVC else 1.0
    renditions: list[Rendition] = []
    for size in sizes:
        bitrate = int(size.bitrate * fps_factor)
        if complexity is not None:
            # The analysis measures H.264; HEVC takes its share of that.
            bitrate = rung_bitrate(complexity, size.width, size.height, float(fps), bitrate)
        bitrate = int(bitrate * codec_factor)
        if source.video_bitrate:
            bitrate = min(bitrate, source.video_bitrate)
        bitrate = max(bitrate, MIN_VIDEO_BITRATE)
        # A capped rung no cheaper than the one above it buys nothing: keep the sharper one.
        if renditions and bitrate >= renditions[-1].video_bitrate:
            continue
        if codec == HEVC:
            renditions.append(_hevc_rendition(size, bitrate, source.video_range))
        else:
            renditions.append(_rendition(size.name, size.width, size.height, bitrate, fps))
    return renditions


def _captions(source: SourceInfo, fps: Fraction) -> tuple[bool, tuple[str, ...]]:
    """Captions ride on frames (a byte pair or two each): they survive only when
    every source frame becomes exactly one output frame. The fps filter drops or
    repeats frames, with their caption bytes, whenever the rate changes."""
    if not source.closed_captions:
        return False, ()
    # A rate the probe rounded (29.97 for 30000/1001) is the same rate.
    if source.variable_frame_rate or abs(float(fps) - source.fps) > 1e-5 * source.fps:
        return False, (f"closed captions left out: the frame rate changes from"
                       f" {source.fps:.3f} to {float(fps):.3f} fps, which would garble them",)
    return True, ()


def count_first_segments(segment_seconds: float, shortest: float = START_SEGMENT_SECONDS) -> int:
    """How many segments the first segment_seconds become: each at least shortest long."""
    return max(1, int(segment_seconds / shortest + 1e-9))


def output_fps(source_fps: float, variable: bool = False) -> Fraction:
    """Constant output rate: the source's, snapped to a standard rate, at most MAX_FPS.

    A variable rate's average goes up to the next standard rate, so that on
    average no motion is thrown away.
    """
    fps = exact_rate(source_fps)
    nearest = min(STANDARD_RATES, key=lambda r: abs(r - fps))
    if abs(nearest - fps) <= nearest / 100:
        fps = nearest
    elif variable:
        whole = [r for r in STANDARD_RATES if r.denominator == 1]
        fps = next((r for r in whole if r >= fps), whole[-1])
    # Halving (or thirding) keeps every other frame: smoother than 100 -> 60.
    divisor = math.ceil(fps / MAX_FPS)
    return fps / divisor if divisor > 1 else fps


def exact_rate(fps: float) -> Fraction:
    """The rational behind a float rate: 29.97002997... -> 30000/1001."""
    return Fraction(fps).limit_denominator(1001)


@dataclass(frozen=True)
class _Size:
    """A rung fitted to the source."""

    name: str
    width: int
    height: int
    bitrate: int  # H.264, <= 30 fps
    rung_height: int  # the rung's own, as a landscape box: what policy goes by


def _fitted_sizes(width: int, height: int, rungs: tuple[Rung, ...]) -> list[_Size]:
    """Each rung the source can fill, never upscaled."""
    portrait = height > width
    max_w, max_h = _even_down(width), _even_down(height)
    sizes: list[_Size] = []
    for rung in rungs:
        box_w, box_h = (rung.height, rung.width) if portrait else (rung.width, rung.height)
        scale = min(box_w / width, box_h / height)
        if scale > BOX_SLACK:
            continue  # would be an upscale
        scale = min(scale, 1.0)
        w = min(_even(width * scale), max_w)
        h = min(_even(height * scale), max_h)
        if any((w, h) == (s.width, s.height) for s in sizes):
            continue
        # Narrower than 16:9 (4:3, scope) means fewer pixels to pay for.
        area = min(1.0, max(0.5, (w * h) / (box_w * box_h)))
        sizes.append(_Size(rung.name, w, h, int(rung.bitrate * area), rung.height))
    if not sizes:
        # Smaller than the smallest rung: one rung at source size.
        smallest = rungs[-1]
        area = (max_w * max_h) / (smallest.width * smallest.height)
        sizes.append(_Size(f"{min(max_w, max_h)}p", max_w, max_h,
                           int(smallest.bitrate * area), min(max_w, max_h)))
    return sizes


def _rendition(name: str, width: int, height: int, bitrate: int, fps: Fraction) -> Rendition:
    maxrate = int(bitrate * MAXRATE_FACTOR)
    return Rendition(
        name=name, width=width, height=height, video_bitrate=bitrate,
        maxrate=maxrate, bufsize=int(bitrate * BUFSIZE_FACTOR),
        profile="high", level=h264_level(width, height, fps, maxrate),
    )


def _hevc_rendition(size: _Size, bitrate: int, video_range: str) -> Rendition:
    # HDR is 10-bit (Main10); SDR stays 8-bit Main, which every HEVC decoder plays.
    maxrate = int(bitrate * MAXRATE_FACTOR)
    return Rendition(
        name=size.name + HEVC_SUFFIX, width=size.width, height=size.height,
        video_bitrate=bitrate, maxrate=maxrate, bufsize=int(bitrate * BUFSIZE_FACTOR),
        profile="main" if video_range == SDR else "main10", level=None, codec=HEVC,
        video_range=video_range,
    )


def iframe_tiers(renditions: Sequence[Rendition]) -> list[Rendition]:
    """The renditions that get an I-frame track: those of IFRAME_TIERS, and the
    smallest always (a small source's only rung may be of none)."""
    return [r for r in renditions if r.name in IFRAME_TIERS or r is renditions[-1]]


def _trickplay(tier: Rendition, segment_seconds: float) -> Rendition:
    width, height = tier.width, tier.height
    frame_bits = int(width * height * TRICKPLAY_BITS_PER_PIXEL)
    bitrate = int(frame_bits / segment_seconds)
    fps = 1 / Fraction(segment_seconds).limit_denominator(1000)
    return Rendition(
        name=iframes_name(tier.name), width=width, height=height, video_bitrate=bitrate,
        # One frame per segment: the buffer must hold a whole frame with room to spare.
        maxrate=2 * bitrate, bufsize=2 * frame_bits,
        profile="high", level=h264_level(width, height, fps, 2 * bitrate),
    )


# (level, max macroblocks per second, max frame size in macroblocks, max High-profile kb/s)
H264_LEVELS = (
    ("3.0", 40_500, 1_620, 12_500),
    ("3.1", 108_000, 3_600, 17_500),
    ("3.2", 216_000, 5_120, 25_000),
    ("4.0", 245_760, 8_192, 25_000),
    ("4.1", 245_760, 8_192, 62_500),
    ("4.2", 522_240, 8_704, 62_500),
    ("5.0", 589_824, 22_080, 168_750),
    ("5.1", 983_040, 36_864, 300_000),
    ("5.2", 2_073_600, 36_864, 300_000),
)


def h264_level(width: int, height: int, fps: Fraction | float, maxrate: int) -> str:
    """The lowest H.264 level (3.0 at least) that admits this size, rate and peak bit rate."""
    frame_mbs = math.ceil(width / 16) * math.ceil(height / 16)
    mbs_per_s = frame_mbs * float(fps)
    for level, max_mbps, max_fs, max_kbps in H264_LEVELS:
        if frame_mbs <= max_fs and mbs_per_s <= max_mbps and maxrate <= max_kbps * 1000:
            return level
    return H264_LEVELS[-1][0]


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)


def _even_down(value: int) -> int:
    return max(2, value - value % 2)
