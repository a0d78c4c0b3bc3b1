"""Turn a transcode work dir into an encrypted HLS package on local disk.

Input (one ffmpeg ``hls`` run): ``{name}/index.m3u8`` per track (video
renditions, audio-only ones and I-frame tracks, one intra frame a segment),
segments and (fMP4) an init section next to each. Output in out_dir:
``{name}/index.m3u8``, ``{name}/init.mp4``, ``{name}/seg_00000.m4s`` (or
``.ts``) ... for each, and ``master.m3u8`` with relative URIs: audio renditions
as EXT-X-MEDIA, each video rendition once per audio group, its BANDWIDTH and
CODECS including the group's audio, and each I-frame track as
EXT-X-I-FRAME-STREAM-INF.

Segment i of every track is encrypted under ``keys[i // rotation_segments]``:
the same key for the same instant in every rendition and I-frame track, so a
rendition switch or a trick-play seek never needs another key fetch.

Subtitles are written here, from their cues, as ``subs{n}/index.m3u8`` and
``subs{n}/seg_00000.vtt`` ..., one segment per video segment with the video's
EXTINFs. They are left clear. hls.js would decrypt them (its subtitle stream
controller runs AES-128 fragments through its decrypter), but the keys are there
to protect pictures and sound, not text that is in the open on every screen;
a clear segment costs a player no key fetch on a seek; and players whose
subtitle path cannot decrypt (native WebVTT renderers on some boxes) still show
clear ones. So they carry no EXT-X-KEY.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import m3u8

from stb_origin import proc
from stb_origin.drm.keys import ContentKey
from stb_origin.packager import playlists
from stb_origin.packager.codecs import read_codecs
from stb_origin.packager.encrypt import encrypt_file
from stb_origin.storage.layout import INIT, MASTER, MEDIA_PLAYLIST, segment_name
from stb_origin.transcode.webvtt import Cue, segment_webvtt

KeyUri = Callable[[str], str]


class PackagingError(Exception):
    pass


class NotEnoughKeys(PackagingError):
    pass


@dataclass(frozen=True)
class VariantInput:
    name: str
    width: int
    height: int
    frame_rate: float
    video_range: str = "SDR"  # or PQ, HLG: its VIDEO-RANGE in the master


@dataclass(frozen=True)
class AudioInput:
    name: str
    group: str
    label: str  # NAME
    language: str | None  # BCP-47
    channels: int
    default: bool


@dataclass(frozen=True)
class SubtitleInput:
    name: str
    label: str  # NAME
    language: str | None  # BCP-47
    forced: bool
    cues: tuple[Cue, ...]  # timed from the first video frame


@dataclass(frozen=True)
class SubtitleFacts:
    name: str
    group: str
    label: str
    language: str | None
    forced: bool
    cue_count: int
    segment_count: int

    def to_json(self) -> dict[str, Any]:
        return {"type": "subtitles", **asdict(self)}


@dataclass(frozen=True)
class RenditionFacts:
    name: str
    width: int
    height: int
    bandwidth: int
    average_bandwidth: int
    codecs: str
    frame_rate: float
    segment_count: int
    video_range: str = "SDR"

    def to_json(self) -> dict[str, Any]:
        return {"type": "video", **asdict(self)}


@dataclass(frozen=True)
class AudioFacts:
    name: str
    group: str
    label: str
    language: str | None
    channels: int
    default: bool
    bandwidth: int
    average_bandwidth: int
    codecs: str
    segment_count: int

    def to_json(self) -> dict[str, Any]:
        return {"type": "audio", **asdict(self)}


@dataclass(frozen=True)
class _Written:
    """What encrypting one track measured."""

    codecs: str
    bandwidth: int
    average_bandwidth: int
    segment_count: int


@dataclass(frozen=True)
class PackageResult:
    out_dir: Path
    renditions: tuple[RenditionFacts, ...]
    audio: tuple[AudioFacts, ...]
    subtitles: tuple[SubtitleFacts, ...]
    iframes: tuple[RenditionFacts, ...]
    segment_count: int
    duration_s: float
    key_ids: tuple[str, ...]  # the keys the playlists name, in segment order


@dataclass(frozen=True)
class _Source:
    """One track of the work dir as ffmpeg listed it."""

    name: str
    init: Path | None
    segments: tuple[Path, ...]
    durations: tuple[float, ...]


def keys_needed(segment_count: int, rotation_segments: int) -> int:
    if rotation_segments < 1:
        raise ValueError("rotation_segments must be at least 1")
    return max(1, math.ceil(segment_count / rotation_segments))


def count_segments(work_dir: Path) -> int:
    """Segments per track; every track of one transcode run has the same count."""
    playlists_found = sorted(work_dir.glob(f"*/{MEDIA_PLAYLIST}"))
    if not playlists_found:
        raise PackagingError(f"no */{MEDIA_PLAYLIST} under {work_dir}")
    counts = {p.parent.name: len(read_track(p.parent).segments) for p in playlists_found}
    if len(set(counts.values())) != 1:
        raise PackagingError(f"tracks disagree on segment count: {counts}")
    return next(iter(counts.values()))


def package(
    work_dir: Path,
    variants: Sequence[VariantInput],
    keys: Sequence[ContentKey],
    key_uri: KeyUri,
    rotation_segments: int,
    out_dir: Path,
    iframes: Sequence[VariantInput] = (),
    probe_timeout: float = 60.0,
    start_bandwidth: int | None = playlists.START_BANDWIDTH,
    session_key: bool = True,
    audio: Sequence[AudioInput] = (),
    subtitles: Sequence[SubtitleInput] = (),
    closed_captions: bool = False,
) -> PackageResult:
    """Encrypt every track of work_dir into out_dir and write its playlists.

    iframes: the I-frame tracks, each listed in the master at its size.
    start_bandwidth picks the variant listed first (``playlists.order_variants``)
    among those of the first audio group; session_key names the first segments'
    key in the master as EXT-X-SESSION-KEY. audio: the audio-only renditions,
    groups in the order the variants are to be listed. subtitles: WebVTT
    renditions to cut on the video's segments. closed_captions: the video carries
    CEA-608 captions.
    """
    if not variants and not audio:
        raise PackagingError("no renditions to package")
    names = ([v.name for v in variants] + [a.name for a in audio] + [i.name for i in iframes]
             + [s.name for s in subtitles])
    if len(set(names)) != len(names):
        raise PackagingError(f"track names must be unique: {names}")

    sources = [read_track(work_dir / v.name) for v in variants]
    audio_sources = [read_track(work_dir / a.name) for a in audio]
    iframe_sources = [read_track(work_dir / i.name) for i in iframes]
    tracks = [*sources, *audio_sources, *iframe_sources]
    count = len(tracks[0].segments)
    for source in tracks:
        if len(source.segments) != count:
            raise PackagingError(f"{source.name} has {len(source.segments)} segments,"
                                 f" {tracks[0].name} has {count}: the keyframes are not aligned")
    needed = keys_needed(count, rotation_segments)
    if len(keys) < needed:
        raise NotEnoughKeys(f"{count} segments rotating every {rotation_segments} need"
                            f" {needed} keys, got {len(keys)}")
    schedule = [keys[i // rotation_segments] for i in range(count)]

    if out_dir.exists() and any(out_dir.iterdir()):
        # Leftovers of another run would be published alongside this one.
        raise PackagingError(f"{out_dir} is not empty")
    out_dir.mkdir(parents=True, exist_ok=True)
    renditions = [_video_facts(variant, _write_track(source, schedule, key_uri,
                                                     out_dir / variant.name, False))
                  for variant, source in zip(variants, sources, strict=True)]
    audio_facts = [_audio_facts(a, _write_track(source, schedule, key_uri, out_dir / a.name,
                                                False))
                   for a, source in zip(audio, audio_sources, strict=True)]
    subtitle_facts = []
    if subtitles:
        mpegts = first_video_pts(sources[0], probe_timeout)
        subtitle_facts = [_write_subtitles(sub, sources[0].durations, mpegts,
                                           out_dir / sub.name) for sub in subtitles]

    iframe_facts = [_video_facts(i, _write_track(source, schedule, key_uri,
                                                 out_dir / i.name, True))
                    for i, source in zip(iframes, iframe_sources, strict=True)]

    (out_dir / MASTER).write_text(playlists.master_playlist(
        _variant_entries(renditions, audio_facts), [_iframe_entry(i) for i in iframe_facts],
        start_bandwidth=start_bandwidth,
        session_key_uri=key_uri(schedule[0].key_id) if session_key else None,
        audio=[_audio_entry(a) for a in audio_facts],
        subtitles=[playlists.SubtitleEntry(f"{f.name}/{MEDIA_PLAYLIST}", f.label, f.language,
                                           f.forced) for f in subtitle_facts],
        closed_captions=closed_captions))
    return PackageResult(
        out_dir=out_dir,
        renditions=tuple(renditions),
        audio=tuple(audio_facts),
        subtitles=tuple(subtitle_facts),
        iframes=tuple(iframe_facts),
        segment_count=count,
        duration_s=round(sum(tracks[0].durations), 6),
        key_ids=tuple(dict.fromkeys(k.key_id for k in schedule)),
    )


def read_track(track_dir: Path) -> _Source:
    path = track_dir / MEDIA_PLAYLIST
    try:
        parsed = m3u8.loads(path.read_text())
    except FileNotFoundError:
        raise PackagingError(f"missing {path}") from None
    if parsed.is_variant or not parsed.segments:
        raise PackagingError(f"{path} is not a media playlist with segments")
    if any(key is not None for key in parsed.keys):
        raise PackagingError(f"{path} is already encrypted")
    maps = {s.init_section.uri for s in parsed.segments if s.init_section is not None}
    if len(maps) > 1:
        raise PackagingError(f"{path} switches init sections mid-stream")
    uris = [s.uri for s in parsed.segments] + list(maps)
    for uri in uris:
        # Only plain names: the work dir is ours, nothing may point outside it.
        if "/" in uri or "\\" in uri or uri in (".", "..") or not (track_dir / uri).is_file():
            raise PackagingError(f"{path} names {uri!r}, which is not a file beside it")
    init = track_dir / maps.pop() if maps else None
    segments = tuple(track_dir / s.uri for s in parsed.segments)
    durations = tuple(float(s.duration) for s in parsed.segments)
    if any(d <= 0 for d in durations):
        raise PackagingError(f"{path} has a segment without a positive duration")
    return _Source(track_dir.name, init, segments, durations)


def _write_track(source: _Source, schedule: Sequence[ContentKey], key_uri: KeyUri, dst: Path,
                 i_frames_only: bool) -> _Written:
    dst.mkdir(parents=True, exist_ok=True)
    codecs = read_codecs(source.init if source.init is not None else source.segments[0])
    ivs = [os.urandom(16) for _ in source.segments]
    init_size = 0
    init: playlists.InitSection | None = None
    if source.init is not None:
        # Segment 0's key, but an IV of its own: CBC under one key and IV encrypts
        # equal leading blocks of two files alike, which shows where they match.
        init = playlists.InitSection(INIT, key_uri(schedule[0].key_id), os.urandom(16))
        init_size = encrypt_file(source.init, dst / INIT, schedule[0].key, init.iv)
    sizes: list[int] = []
    entries: list[playlists.MediaSegment] = []
    for i, (segment, duration) in enumerate(zip(source.segments, source.durations,
                                                strict=True)):
        name = segment_name(i, segment.suffix)
        sizes.append(encrypt_file(segment, dst / name, schedule[i].key, ivs[i]))
        entries.append(playlists.MediaSegment(name, duration, key_uri(schedule[i].key_id),
                                              ivs[i]))
    text = playlists.media_playlist(entries, init, i_frames_only=i_frames_only)
    (dst / MEDIA_PLAYLIST).write_text(text)
    target = playlists.target_duration(source.durations)
    return _Written(
        codecs=str(codecs),
        bandwidth=peak_bitrate(sizes, source.durations, target, init_size),
        average_bandwidth=math.ceil((init_size + sum(sizes)) * 8 / sum(source.durations)),
        segment_count=len(sizes),
    )


def _write_subtitles(sub: SubtitleInput, durations: Sequence[float], mpegts: int,
                     dst: Path) -> SubtitleFacts:
    dst.mkdir(parents=True, exist_ok=True)
    boundaries = [0.0, *itertools.accumulate(durations)]
    entries = []
    for i, (text, duration) in enumerate(zip(segment_webvtt(sub.cues, boundaries, mpegts),
                                             durations, strict=True)):
        name = segment_name(i, ".vtt")
        (dst / name).write_text(text, encoding="utf-8")
        entries.append(playlists.MediaSegment(name, duration, None, None))
    (dst / MEDIA_PLAYLIST).write_text(playlists.media_playlist(entries))
    return SubtitleFacts(name=sub.name, group=playlists.SUBTITLES_GROUP, label=sub.label,
                         language=sub.language, forced=sub.forced, cue_count=len(sub.cues),
                         segment_count=len(entries))


def first_video_pts(source: _Source, timeout: float) -> int:
    """The first video frame's presentation time in 90 kHz units, on the clock the
    segments carry: a TS segment's own PTS; in fMP4, the fragment's decode time
    plus the frame's composition offset, no edit list applied (transcode/webvtt.py
    says why)."""
    first = str(source.segments[0])
    if source.init is not None:
        first = f"concat:{source.init}|{first}"
    done = proc.run([
        "ffprobe", "-v", "error", "-select_streams", "v:0", "-read_intervals", "%+#16",
        "-show_entries", "stream=time_base:packet=pts", "-of", "json", first,
    ], timeout=timeout)
    data = json.loads(done.stdout)
    streams, packets = data.get("streams") or [], data.get("packets") or []
    stamps = [int(p["pts"]) for p in packets if p.get("pts") is not None]
    if not streams or not stamps:
        raise PackagingError(f"no video frames in {first}")
    # The smallest of the first packets: with B-frames the first decoded is not the first shown.
    return round(min(stamps) * 90_000 * Fraction(streams[0]["time_base"]))


def _video_facts(variant: VariantInput, written: _Written) -> RenditionFacts:
    return RenditionFacts(
        name=variant.name, width=variant.width, height=variant.height,
        bandwidth=written.bandwidth, average_bandwidth=written.average_bandwidth,
        codecs=written.codecs, frame_rate=variant.frame_rate,
        segment_count=written.segment_count, video_range=variant.video_range)


def _audio_facts(audio: AudioInput, written: _Written) -> AudioFacts:
    return AudioFacts(
        name=audio.name, group=audio.group, label=audio.label, language=audio.language,
        channels=audio.channels, default=audio.default, bandwidth=written.bandwidth,
        average_bandwidth=written.average_bandwidth, codecs=written.codecs,
        segment_count=written.segment_count)


def peak_bitrate(sizes: Sequence[int], durations: Sequence[float], target: int,
                 init_size: int = 0) -> int:
    """RFC 8216 §4.3.4.2 peak segment bit rate, in bits per second.

    The largest bit rate of any run of contiguous segments lasting 0.5 to 1.5
    times the target duration. Each run also pays for the init section once:
    that is what a player switching into this variant at that run downloads.
    Short runs (such as a short final segment alone) are excluded by the
    definition; with no qualifying run at all, the whole stream counts.
    """
    lo, hi = 0.5 * target, 1.5 * target
    peak = 0.0
    for start in range(len(sizes)):
        total_bytes, total_s = init_size, 0.0
        for end in range(start, len(sizes)):
            total_bytes += sizes[end]
            total_s += durations[end]
            if total_s > hi + 1e-9:
                break
            if total_s >= lo - 1e-9:
                peak = max(peak, total_bytes * 8 / total_s)
    if peak == 0.0:
        peak = (init_size + sum(sizes)) * 8 / sum(durations)
    return math.ceil(peak)


def _variant_entries(videos: Sequence[RenditionFacts], audio: Sequence[AudioFacts]
                     ) -> list[playlists.VariantEntry]:
    """Each video rendition once per audio group (once, with no audio), paying for
    the group's dearest rendition (RFC 8216 §4.3.4.2). With no video, each audio
    group is one variant: its default rendition, the others its alternatives."""
    groups: dict[str | None, list[AudioFacts]] = {}
    for a in audio:
        groups.setdefault(a.group, []).append(a)
    entries = []
    for group, members in (groups or {None: []}).items():
        codecs = {a.codecs for a in members}
        if len(codecs) > 1:
            raise PackagingError(f"audio group {group!r} mixes codecs: {sorted(codecs)}")
        peak = max((a.bandwidth for a in members), default=0)
        average = max((a.average_bandwidth for a in members), default=0)
        if not videos:
            default = next(a for a in members if a.default)
            entries.append(playlists.VariantEntry(
                uri=f"{default.name}/{MEDIA_PLAYLIST}", bandwidth=peak, average_bandwidth=average,
                codecs=default.codecs, audio_group=group))
        for v in videos:
            entries.append(playlists.VariantEntry(
                uri=f"{v.name}/{MEDIA_PLAYLIST}", bandwidth=v.bandwidth + peak,
                average_bandwidth=v.average_bandwidth + average,
                codecs=",".join([v.codecs, *codecs]), width=v.width, height=v.height,
                frame_rate=v.frame_rate, audio_group=group, video_range=v.video_range))
    return entries


def _iframe_entry(facts: RenditionFacts) -> playlists.IFrameEntry:
    return playlists.IFrameEntry(
        uri=f"{facts.name}/{MEDIA_PLAYLIST}", bandwidth=facts.bandwidth,
        average_bandwidth=facts.average_bandwidth, codecs=facts.codecs,
        width=facts.width, height=facts.height)


def _audio_entry(facts: AudioFacts) -> playlists.AudioEntry:
    return playlists.AudioEntry(
        uri=f"{facts.name}/{MEDIA_PLAYLIST}", group_id=facts.group, name=facts.label,
        language=facts.language, channels=facts.channels, default=facts.default)


__all__ = [
    "MASTER", "AudioFacts", "AudioInput", "KeyUri", "NotEnoughKeys", "PackageResult",
    "PackagingError", "RenditionFacts", "SubtitleFacts", "SubtitleInput", "VariantInput",
    "count_segments", "first_video_pts", "keys_needed", "package", "peak_bitrate",
]
