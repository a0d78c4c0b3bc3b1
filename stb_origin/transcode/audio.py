"""Which audio renditions to make: every audio track of the source, each on its own.

Every track becomes AAC-LC in the ``audio-aac`` group (mono stays mono, the rest
become stereo), and every multichannel track also becomes 5.1 E-AC-3 in the
``audio-ec3`` group, for boxes that decode it (Apple's HLS authoring spec lists
the variants once per audio group). Titles and language tags come from the
upload: they are cleaned here, and playlists.py refuses anything unclean.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from stb_origin.transcode.languages import bcp47, language_name
from stb_origin.transcode.loudness import Loudness
from stb_origin.transcode.probe import AudioTrack

AAC_GROUP = "audio-aac"
EC3_GROUP = "audio-ec3"
AAC_BITRATES = {1: 64_000, 2: 128_000}  # Apple: AAC-LC stereo 32-160 kb/s
EC3_CHANNELS = 6  # 5.1; ffmpeg's E-AC-3 encoder goes no higher, so 7.1 is folded down
EC3_BITRATE = 384_000  # Apple's recommendation for 5.1 E-AC-3
# ffmpeg's AAC encoder starts with this much silence (its initial_padding); a run
# with audio moves every stream later by it. E-AC-3's is shorter.
AAC_PRIMING_SAMPLES = 1024
# What each rendition's audio is folded to before loudness and encoding (ffmpeg's
# default downmix; 5.1(side) becomes 5.1, side channels taken as back ones).
LAYOUTS = {1: "mono", 2: "stereo", 6: "5.1"}
MAX_LABEL = 64  # a NAME is shown in a menu
FALLBACK_LABEL = "Audio"


@dataclass(frozen=True)
class AudioRendition:
    name: str  # its folder in the work dir and the package
    group: str  # GROUP-ID
    codec: str  # ffmpeg encoder: aac or eac3
    source_index: int  # ffprobe stream index of the track it is made from
    channels: int
    bitrate: int
    sample_rate: int
    language: str | None  # BCP-47; None: undetermined
    label: str  # NAME, unique in its group, clean
    default: bool  # DEFAULT=YES: exactly one per group
    input_index: int = 0  # the ffmpeg input (-i) the track is in: 0 is the master
    loudness: Loudness | None = None  # None: not normalised (turned off, or silence)

    @property
    def stream(self) -> str:
        """ffmpeg's stream specifier of the track: input, then stream index."""
        return f"{self.input_index}:{self.source_index}"

    @property
    def downmix(self) -> str:
        return f"aformat=channel_layouts={LAYOUTS[self.channels]}"

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self),
                "loudness": self.loudness.to_json() if self.loudness else None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AudioRendition:
        measured = data.get("loudness")
        return cls(**{**data, "loudness": Loudness.from_json(measured) if measured else None})


def plan_audio(tracks: Sequence[AudioTrack]) -> tuple[AudioRendition, ...]:
    labels = [track_label(t) for t in tracks]
    indexed = list(enumerate(tracks))
    groups = ((AAC_GROUP, "aac", indexed),
              (EC3_GROUP, "eac3", [(i, t) for i, t in indexed if t.channels > 2]))
    planned: list[AudioRendition] = []
    for group, codec, members in groups:
        if not members:
            continue
        default = next((i for i, t in members if t.default), members[0][0])
        unique = unique_labels([labels[i] for i, _ in members])
        for (i, track), label in zip(members, unique, strict=True):
            planned.append(_rendition(group, codec, i, track, label, i == default))
    return tuple(planned)


def _rendition(group: str, codec: str, position: int, track: AudioTrack, label: str,
               default: bool) -> AudioRendition:
    if codec == "aac":
        channels = 1 if track.channels == 1 else 2
        bitrate = AAC_BITRATES[channels]
        # 44.1 kHz stays 44.1 kHz (no resampling); anything else becomes 48 kHz.
        rate = 44_100 if track.sample_rate == 44_100 else 48_000
    else:
        channels, bitrate, rate = EC3_CHANNELS, EC3_BITRATE, 48_000
    return AudioRendition(
        name=f"audio{position}_{'aac' if codec == 'aac' else 'ec3'}", group=group,
        codec=codec, source_index=track.index, channels=channels, bitrate=bitrate,
        sample_rate=rate, language=bcp47(track.language), label=label, default=default,
        input_index=track.input_index)


def track_label(track: AudioTrack) -> str:
    """What a menu shows: the track's title, else its language, else "Audio"."""
    language = bcp47(track.language)
    return clean_label(track.title) or language_name(language) or language or FALLBACK_LABEL


def clean_label(text: str | None) -> str | None:
    """Text from an upload made fit for a quoted playlist attribute: no double quote,
    no control, format or separator character (a line break of any kind, a bidi
    override), single spaces, at most MAX_LABEL characters; None if nothing is left."""
    if text is None:
        return None
    kept = []
    for char in unicodedata.normalize("NFC", text):
        category = unicodedata.category(char)
        if char == '"':
            kept.append("'")
        elif category[0] in "CZ":  # Cc, Cf, Cs, Co, Cn; Zs, Zl, Zp
            kept.append(" ")
        else:
            kept.append(char)
    cleaned = " ".join("".join(kept).split())[:MAX_LABEL].rstrip()
    return cleaned or None


def unique_labels(labels: Sequence[str]) -> list[str]:
    """The labels with " 2", " 3", ... added to repeats, still at most MAX_LABEL long."""
    seen: set[str] = set()
    unique = []
    for label in labels:
        candidate, n = label, 1
        while candidate in seen:
            n += 1
            suffix = f" {n}"
            candidate = label[:MAX_LABEL - len(suffix)].rstrip() + suffix
        seen.add(candidate)
        unique.append(candidate)
    return unique


def priming_delay(audio: Sequence[AudioRendition]) -> Fraction:
    """How much later than the source the muxer puts every stream of a run that
    encodes these renditions: the AAC encoder's priming (it outputs time stamps
    below zero, and the muxer moves all streams up)."""
    rates = [a.sample_rate for a in audio if a.codec == "aac"]
    return Fraction(AAC_PRIMING_SAMPLES, rates[0]) if rates else Fraction(0)
