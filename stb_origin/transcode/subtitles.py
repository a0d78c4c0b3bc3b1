"""Subtitle renditions: which to make, and their cues.

The subtitle step takes a list of SubtitleSource: a text subtitle stream of the
master, or a WebVTT file (a sidecar upload is one more entry). Each becomes one
WebVTT rendition (packager/playlists.py puts them all in one group); languages
and names are cleaned as the audio ones are (``audio.py``): they come from the
upload.

Every text stream of the master is read in one ffmpeg run (the file is demuxed
once, nothing decoded but the subtitles) and converted by ffmpeg's WebVTT
encoder (mov_text, SubRip, ASS/SSA and WebVTT all decode to the same text form;
ASS drawing and positioning are dropped), then ``webvtt.plain_text`` keeps
only the text of each cue.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from stb_origin import proc
from stb_origin.settings import Settings
from stb_origin.transcode.audio import clean_label, unique_labels
from stb_origin.transcode.errors import MediaError
from stb_origin.transcode.inputs import input_args
from stb_origin.transcode.languages import bcp47, language_name
from stb_origin.transcode.probe import SourceInfo
from stb_origin.transcode.run import short_reason
from stb_origin.transcode.webvtt import Cue, parse_webvtt, plain_text

FALLBACK_LABEL = "Subtitles"


@dataclass(frozen=True)
class SubtitleSource:
    """A subtitle track to publish: exactly one of stream_index and path."""

    language: str | None  # as the upload says
    title: str | None
    forced: bool
    stream_index: int | None = None  # a text subtitle stream of the master
    path: Path | None = None  # a WebVTT file, its times from the first video frame

    def __post_init__(self) -> None:
        if (self.stream_index is None) == (self.path is None):
            raise ValueError("a subtitle source is a stream of the master or a file")


@dataclass(frozen=True)
class SubtitleRendition:
    name: str  # its folder in the package
    source: SubtitleSource
    language: str | None  # BCP-47; None: undetermined
    label: str  # NAME, unique in the group, clean
    forced: bool


def master_subtitles(source: SourceInfo) -> list[SubtitleSource]:
    """The master's text subtitle streams; image ones are in source.warnings."""
    return [SubtitleSource(t.language, t.title, t.forced, stream_index=t.index)
            for t in source.subtitle_tracks if t.kind == "text"]


def plan_subtitles(sources: Sequence[SubtitleSource]) -> tuple[SubtitleRendition, ...]:
    labels = unique_labels([_label(s) for s in sources])
    return tuple(SubtitleRendition(name=f"subs{n}", source=s, language=bcp47(s.language),
                                   label=label, forced=s.forced)
                 for n, (s, label) in enumerate(zip(sources, labels, strict=True)))


def _label(source: SubtitleSource) -> str:
    language = bcp47(source.language)
    label = (clean_label(source.title) or language_name(language) or language
             or FALLBACK_LABEL)
    # Forced tracks sit beside the full ones of their language in the menu.
    return f"{label} (forced)" if source.forced and not source.title else label


def read_cues(source_path: Path, source: SourceInfo,
              renditions: Sequence[SubtitleRendition], work_dir: Path,
              settings: Settings) -> dict[str, list[Cue]]:
    """Each rendition's cues by name, timed from the first video frame."""
    streams = [r for r in renditions if r.source.stream_index is not None]
    cues = _master_cues(source_path, source, streams, work_dir, settings) if streams else {}
    for rendition in renditions:
        if rendition.source.path is not None:
            try:
                cues[rendition.name] = parse_webvtt(
                    rendition.source.path.read_text(encoding="utf-8"))
            except ValueError as exc:
                raise MediaError("invalid_subtitles", f"{rendition.label}: {exc}") from None
    return cues


def extract_argv(source_path: Path, streams: Sequence[SubtitleRendition], out: Path
                 ) -> list[str]:
    """The streams as WebVTT in one Matroska file, one cue a packet, timed from
    the file's start as every ffmpeg output is: read back packet by packet, a
    cue's text can hold anything, even a blank line and a timing, and still be
    only text (ffmpeg's WebVTT encoder does not escape it, so its .vtt output
    could not be trusted)."""
    return ["ffmpeg", "-nostdin", "-hide_banner", "-y", "-loglevel", "error",
            *input_args(source_path),
            *(a for r in streams for a in ("-map", f"0:{r.source.stream_index}")),
            "-map_metadata", "-1", "-map_chapters", "-1",
            "-c:s", "webvtt", "-f", "matroska", str(out.absolute())]


def _master_cues(source_path: Path, source: SourceInfo, streams: Sequence[SubtitleRendition],
                 work_dir: Path, settings: Settings) -> dict[str, list[Cue]]:
    work_dir.mkdir(parents=True, exist_ok=True)
    out = work_dir / "subtitles.mkv"
    try:
        proc.run(extract_argv(source_path, streams, out), timeout=settings.transcode_timeout_s)
        done = proc.run(["ffprobe", "-v", "error", "-show_data", "-show_entries",
                         "packet=stream_index,pts_time,duration_time,data", "-of", "json",
                         str(out.absolute())], timeout=settings.probe_timeout_s)
    except proc.ProcessFailed as exc:
        if exc.timed_out:
            raise MediaError("transcode_timeout", "reading the subtitles took longer than"
                             f" {settings.transcode_timeout_s:g} s") from None
        if exc.returncode is None or exc.returncode < 0:
            raise  # killed by a signal: not the file's fault
        raise MediaError("invalid_subtitles", short_reason(exc.stderr_tail)) from None
    cues: dict[str, list[Cue]] = {r.name: [] for r in streams}
    for packet in json.loads(done.stdout).get("packets") or []:
        start = float(packet["pts_time"]) - source.video_start_s
        end = start + float(packet.get("duration_time") or 0)
        text = plain_text(_hexdump_bytes(packet.get("data") or "").decode("utf-8", "replace"))
        if text and end > max(start, 0.0):
            cues[streams[int(packet["stream_index"])].name].append(
                Cue(max(start, 0.0), end, text))
    return {name: sorted(found, key=lambda c: c.start) for name, found in cues.items()}


def _hexdump_bytes(dump: str) -> bytes:
    """The bytes of ffprobe's -show_data dump: "00000000: 3c62 3e6f ...  <b>o..." lines,
    16 bytes each, the hex in the 40 columns after the offset."""
    return b"".join(bytes.fromhex(line[10:50].replace(" ", ""))
                    for line in dump.splitlines() if line.strip())


__all__ = ["SubtitleRendition", "SubtitleSource", "master_subtitles",
           "plan_subtitles", "read_cues"]
