"""HLS playlists built with the ``m3u8`` library: media, I-frame and master.

Every segment carries its own EXT-X-KEY with an explicit IV (fresh per
segment), so a player may start or seek anywhere without deriving IVs from
media sequence numbers. The fMP4 init section has an IV of its own: RFC 8216
§4.3.2.5 decrypts it with the EXT-X-KEY in effect at its EXT-X-MAP, so the
playlist opens with that key line, then the EXT-X-MAP, then the first
segment's key line. ffmpeg's hls demuxer (``parse_playlist`` copies the current
key and IV into the init section when it meets EXT-X-MAP) and hls.js
(``m3u8-parser.ts`` gives the init fragment the level keys current at MAP and
copies them before a later KEY replaces one) both read it that way.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import m3u8

HLS_VERSION = 7  # EXT-X-MAP outside I-frame playlists needs 6; we say 7 for fMP4 and TS alike
# The variant listed first, where players start: the highest whose peak BANDWIDTH
# is at most this (bench/start_time.py measured the choice).
START_BANDWIDTH = 3_000_000
# Printable ASCII without spaces or '"', not starting with '#'.
_URI = re.compile(r"[\x21\x24-\x7e][\x21\x23-\x7e]*")
# RFC 6381 codec names, comma-separated: printable ASCII without '"'.
_CODECS = re.compile(r"[\x20\x21\x23-\x7e]+")
_GROUP_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
# BCP-47 as transcode/languages.py writes it: letters, digits and '-'.
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8}){0,4}")
_CHANNELS = re.compile(r"[1-9][0-9]?")
MAX_NAME = 64


def _check_encrypted(uri: str, key_uri: str, iv: bytes) -> None:
    for value in (uri, key_uri):
        _check_uri(value)
    if len(iv) != 16:
        raise ValueError("an AES-128 IV is 16 bytes")


@dataclass(frozen=True)
class MediaSegment:
    uri: str
    duration: float
    key_uri: str
    iv: bytes

    def __post_init__(self) -> None:
        _check_encrypted(self.uri, self.key_uri, self.iv)


@dataclass(frozen=True)
class InitSection:
    """An encrypted fMP4 Media Initialization Section and the key it is under."""

    uri: str
    key_uri: str
    iv: bytes

    def __post_init__(self) -> None:
        _check_encrypted(self.uri, self.key_uri, self.iv)


@dataclass(frozen=True)
class VariantEntry:
    uri: str
    bandwidth: int
    average_bandwidth: int
    codecs: str
    # None for an audio-only variant: no RESOLUTION or FRAME-RATE.
    width: int | None = None
    height: int | None = None
    frame_rate: float | None = None
    audio_group: str | None = None  # AUDIO: the GROUP-ID of the EXT-X-MEDIA it plays with


@dataclass(frozen=True)
class AudioEntry:
    """An audio rendition: one EXT-X-MEDIA of TYPE=AUDIO."""

    uri: str
    group_id: str
    name: str
    language: str | None  # BCP-47; None: no LANGUAGE attribute
    channels: int
    default: bool

    def __post_init__(self) -> None:
        _check_relative(self.uri)
        if not _GROUP_ID.fullmatch(self.group_id):
            raise ValueError(f"unusable GROUP-ID in a playlist: {self.group_id!r}")
        if self.language is not None and not _LANGUAGE.fullmatch(self.language):
            raise ValueError(f"not a BCP-47 language tag: {self.language!r}")
        if not _CHANNELS.fullmatch(str(self.channels)):
            raise ValueError(f"unusable CHANNELS in a playlist: {self.channels!r}")
        _check_name(self.name)


@dataclass(frozen=True)
class IFrameEntry:
    uri: str
    bandwidth: int
    average_bandwidth: int
    codecs: str
    width: int
    height: int


def target_duration(durations: Sequence[float]) -> int:
    # RFC 8216 §4.3.3.1: each EXTINF rounded to the nearest integer must not exceed it.
    return max(1, max(int(d + 0.5) for d in durations))


def media_playlist(segments: Sequence[MediaSegment], init: InitSection | None = None,
                   i_frames_only: bool = False) -> str:
    if not segments:
        raise ValueError("a media playlist needs at least one segment")
    playlist = m3u8.M3U8()
    playlist.version = HLS_VERSION
    playlist.target_duration = target_duration([s.duration for s in segments])
    playlist.playlist_type = "vod"
    playlist.is_independent_segments = True
    playlist.is_i_frames_only = i_frames_only
    playlist.is_endlist = True
    for segment in segments:
        playlist.add_segment(m3u8.Segment(uri=segment.uri, duration=segment.duration,
                                          keyobject=_key(segment.key_uri, segment.iv)))
    text = str(playlist.dumps(infspec="microseconds"))
    if init is None:
        return text
    # The m3u8 library writes a segment's EXT-X-MAP after that segment's key line,
    # so the init section would share the first segment's IV; its key line and
    # EXT-X-MAP go in front of the first segment's key line instead.
    lines = text.splitlines(keepends=True)
    first_key = next(i for i, line in enumerate(lines) if line.startswith("#EXT-X-KEY:"))
    section = m3u8.model.InitializationSection(base_uri=None, uri=init.uri)
    lines[first_key:first_key] = [f"{_key(init.key_uri, init.iv)}\n", f"{section}\n"]
    return "".join(lines)


def _key(uri: str, iv: bytes) -> m3u8.Key:
    return m3u8.Key(method="AES-128", base_uri=None, uri=uri, iv=iv_attribute(iv))


def _check_uri(value: str) -> None:
    # The m3u8 library writes values as given: a quote or any line break (players
    # may honour U+2028 or NEL too) would end the attribute or the line early, and
    # a line that starts with "#" is a tag. URIs are ASCII (RFC 3986), spaces encoded.
    if not _URI.fullmatch(value):
        raise ValueError(f"unusable URI in a playlist: {value!r}")


def _check_name(value: str) -> None:
    # NAME is a quoted-string shown to people (UTF-8 allowed): no '"', no control,
    # format or separator character (line breaks of every kind), no padding.
    if not value or len(value) > MAX_NAME or value != value.strip() or '"' in value or any(
            unicodedata.category(c)[0] in "CZ" and c != " " for c in value):
        raise ValueError(f"unusable NAME in a playlist: {value!r}")


def _check_audio_groups(audio: Sequence[AudioEntry], variants: Sequence[VariantEntry]) -> None:
    """RFC 8216 §4.3.4.1.1: NAMEs unique in a group, DEFAULT=YES on one; and every
    AUDIO a variant names is a group listed here."""
    groups: dict[str, list[AudioEntry]] = {}
    for entry in audio:
        groups.setdefault(entry.group_id, []).append(entry)
    for group_id, entries in groups.items():
        if len({e.name for e in entries}) != len(entries):
            raise ValueError(f"audio group {group_id!r} repeats a NAME")
        if sum(e.default for e in entries) != 1:
            raise ValueError(f"audio group {group_id!r} needs exactly one DEFAULT=YES")
    for variant in variants:
        if variant.audio_group is not None and variant.audio_group not in groups:
            raise ValueError(f"variant {variant.uri!r} names no listed audio group")


def _check_codecs(value: str) -> None:
    if not _CODECS.fullmatch(value):
        raise ValueError(f"unusable CODECS in a playlist: {value!r}")


def _check_relative(uri: str) -> None:
    """A URI that resolves under the playlist's own folder: no scheme, no leading
    "/", no "." or ".." step (percent-encoded or not)."""
    _check_uri(uri)
    if urlsplit(uri).scheme or uri.startswith("/") or any(
            unquote(step) in (".", "..") for step in urlsplit(uri).path.split("/")):
        raise ValueError(f"a URI outside the version prefix: {uri!r}")


def iv_attribute(iv: bytes) -> str:
    if len(iv) != 16:
        raise ValueError("an AES-128 IV is 16 bytes")
    return "0x" + iv.hex()


def master_playlist(variants: Sequence[VariantEntry],
                    iframes: Sequence[IFrameEntry] = (),
                    start_bandwidth: int | None = START_BANDWIDTH,
                    session_key_uri: str | None = None,
                    audio: Sequence[AudioEntry] = ()) -> str:
    """The start variant first, then the others highest bandwidth first; see
    ``order_variants``. session_key_uri: the key of the first segments, as an
    EXT-X-SESSION-KEY, so that a player may fetch it while it reads the rest.
    audio: the audio renditions, as EXT-X-MEDIA, that variants name by group."""
    if not variants:
        raise ValueError("a master playlist needs at least one variant")
    _check_audio_groups(audio, variants)
    playlist = m3u8.M3U8()
    playlist.version = HLS_VERSION
    playlist.is_independent_segments = True
    if session_key_uri is not None:
        _check_uri(session_key_uri)
        # Same METHOD as the EXT-X-KEY with this URI (RFC 8216 4.3.4.5); no IV: each
        # segment's EXT-X-KEY carries its own.
        playlist.session_keys.append(
            m3u8.model.SessionKey(method="AES-128", base_uri=None, uri=session_key_uri))
    for uri, codecs in [(e.uri, e.codecs) for e in variants] + [(e.uri, e.codecs) for e in iframes]:
        _check_relative(uri)
        _check_codecs(codecs)
    for a in audio:
        playlist.add_media(m3u8.Media(
            uri=a.uri, type="AUDIO", group_id=a.group_id, language=a.language, name=a.name,
            default="YES" if a.default else "NO", autoselect="YES", channels=str(a.channels),
            base_uri=None))
    for v in order_variants(variants, start_bandwidth):
        # The library writes AUDIO="<group>" from the media it is given, not from stream_info.
        picture = {} if v.width is None or v.height is None or v.frame_rate is None else {
            "resolution": f"{v.width}x{v.height}", "frame_rate": round(v.frame_rate, 3)}
        playlist.add_playlist(m3u8.Playlist(
            uri=v.uri, media=playlist.media, base_uri=None,
            stream_info={
                "bandwidth": v.bandwidth,
                "average_bandwidth": v.average_bandwidth,
                "codecs": v.codecs,
                **picture,
                "audio": v.audio_group,
            },
        ))
    for i in sorted(iframes, key=lambda e: e.bandwidth, reverse=True):
        playlist.add_iframe_playlist(m3u8.IFramePlaylist(
            base_uri=None, uri=i.uri,
            iframe_stream_info={
                "bandwidth": i.bandwidth,
                "average_bandwidth": i.average_bandwidth,
                "codecs": i.codecs,
                "resolution": f"{i.width}x{i.height}",
            },
        ))
    return str(playlist.dumps())


def order_variants(variants: Sequence[VariantEntry],
                   start_bandwidth: int | None = START_BANDWIDTH) -> list[VariantEntry]:
    """The start variant, then the rest highest bandwidth first (ties keep the
    caller's order).

    Players start on the first listed variant (AVPlayer, many STB middleware
    stacks; hls.js takes its first bandwidth estimate from it), and the time to
    the first picture is mostly the download of that variant's first segment.
    So the first listed is the highest variant whose BANDWIDTH is at most
    start_bandwidth (the lowest when none is), and players step up after a
    segment or two on a fast link. None: highest first, no start variant.
    With audio groups the start variant has the first variant's group: callers
    list first the group every player decodes (AAC), not E-AC-3.
    """
    ranked = sorted(variants, key=lambda v: v.bandwidth, reverse=True)
    if start_bandwidth is None:
        return ranked
    startable = [v for v in ranked if v.audio_group == variants[0].audio_group]
    start = next((v for v in startable if v.bandwidth <= start_bandwidth), startable[-1])
    return [start, *(v for v in ranked if v is not start)]


def rewrite_master_uris(text: str, prefix: str) -> str:
    """The same master with every variant, I-frame and rendition URI under prefix
    (e.g. "v1a2/"); ValueError for a URI that would resolve outside it."""
    playlist = m3u8.loads(text)
    if not playlist.is_variant:
        raise ValueError("not a master playlist")
    for entry in [*playlist.playlists, *playlist.iframe_playlists,
                  *(m for m in playlist.media if m.uri is not None)]:
        _check_relative(entry.uri)
        entry.uri = prefix + entry.uri
    return str(playlist.dumps())


__all__ = [
    "HLS_VERSION", "START_BANDWIDTH", "AudioEntry", "IFrameEntry", "InitSection",
    "MediaSegment", "VariantEntry",
    "iv_attribute", "master_playlist", "media_playlist", "order_variants", "rewrite_master_uris",
    "target_duration",
]
