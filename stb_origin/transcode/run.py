"""Run the ladder encode (in one pass, or span by span) and leave out_dir in the
documented layout."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

from stb_origin import proc
from stb_origin.settings import Settings
from stb_origin.storage.layout import INIT, MEDIA_PLAYLIST
from stb_origin.transcode import fixups, layout
from stb_origin.transcode.argv import build_argv, build_audio_argv
from stb_origin.transcode.errors import MediaError
from stb_origin.transcode.ladder import Ladder, exact_rate, grid
from stb_origin.transcode.probe import SourceInfo
from stb_origin.transcode.progress import progress_fraction
from stb_origin.transcode.spans import Span

# Failures of the machine, not of the media: the job should be retried, not the asset failed.
INFRA_MARKERS = ("No space left on device", "Cannot allocate memory", "Permission denied",
                 "Read-only file system", "Too many open files")

_COMPONENT = re.compile(r"^\[([\w-]+) @ 0x[0-9a-f]+\]\s*")


def transcode(source_path: Path, source: SourceInfo, ladder: Ladder, out_dir: Path,
              settings: Settings, on_progress: Callable[[float], None] | None = None,
              audio_files: Sequence[Path] = ()) -> None:
    """The whole ladder in one ffmpeg run; audio_files: sidecar audio (argv.py)."""
    for name in _video_names(ladder) + [a.name for a in ladder.audio]:
        _clear(out_dir / name)

    def on_line(line: str) -> None:
        fraction = progress_fraction(line, source.duration_s)
        if fraction is not None and on_progress is not None:
            on_progress(fraction)

    _run(build_argv(source_path, source, ladder, out_dir, settings, audio_files=audio_files),
         settings, on_line)
    finish(out_dir, ladder, settings, source.duration_s)


def transcode_span(source_path: Path, source: SourceInfo, ladder: Ladder, span: Span,
                   out_dir: Path, settings: Settings) -> None:
    """Only the span's video (spans.py); stitch.py puts spans together, then finish()."""
    for name in _video_names(ladder):
        _clear(out_dir / name)
    _run(build_argv(source_path, source, ladder, out_dir, settings, span), settings)


def transcode_audio(source_path: Path, source: SourceInfo, ladder: Ladder, out_dir: Path,
                    settings: Settings, audio_files: Sequence[Path] = ()) -> None:
    """Only the audio renditions, whole: what goes with stitched spans."""
    for audio in ladder.audio:
        _clear(out_dir / audio.name)
    if ladder.audio:
        _run(build_audio_argv(source_path, source, ladder, out_dir, settings, audio_files),
             settings)


def finish(out_dir: Path, ladder: Ladder, settings: Settings, duration_s: float) -> None:
    """Leave out_dir in the documented layout: every track's init named init.mp4,
    the renditions' one-GOP parts joined into segments, the trick-play track and
    the audio cut like the renditions (audio only: like a video of that length
    would be, segment_grid)."""
    if settings.segment_format == "fmp4":
        for name in _video_names(ladder) + [a.name for a in ladder.audio]:
            _rename_init(out_dir / name)
    if ladder.renditions:
        videos = [r.name for r in ladder.renditions]
        for video in videos:
            _join_gops(out_dir / video, ladder)
        _check_and_align(out_dir, videos, [t.name for t in ladder.iframes])
        reference = fixups.extinf_values((out_dir / videos[0] / MEDIA_PLAYLIST).read_text())
    else:
        reference = segment_grid(ladder, duration_s)
    for audio in ladder.audio:
        _align_audio(reference, out_dir / audio.name)


def _video_names(ladder: Ladder) -> list[str]:
    return [r.name for r in ladder.renditions] + [t.name for t in ladder.iframes]


def _run(argv: list[str], settings: Settings,
         on_line: Callable[[str], None] | None = None) -> None:
    try:
        proc.run(argv, timeout=settings.transcode_timeout_s, on_line=on_line)
    except proc.ProcessFailed as exc:
        raise _classified(exc, settings) from None


def segment_grid(ladder: Ladder, duration_s: float) -> list[float]:
    """The segments a video of this length would have: first_segments short ones,
    then segment_seconds each; a last one too short to be a segment joins the one
    before. Audio-only ladders are cut on it."""
    short = ladder.segment_seconds / ladder.first_segments
    lengths: list[float] = []
    at = 0.0
    while duration_s - at > fixups.BOUNDARY_SLACK_S or not lengths:
        step = short if len(lengths) < ladder.first_segments else ladder.segment_seconds
        lengths.append(min(step, duration_s - at))
        at += lengths[-1]
    lengths[-1] += duration_s - at
    return lengths


def _clear(rendition_dir: Path) -> None:
    # A retry must not leave segments of an earlier, longer attempt behind.
    rendition_dir.mkdir(parents=True, exist_ok=True)
    for pattern in (MEDIA_PLAYLIST, "init*.mp4", f"{layout.SEGMENT_PREFIX}*"):
        for path in rendition_dir.glob(pattern):
            path.unlink()


def _classified(exc: proc.ProcessFailed, settings: Settings) -> Exception:
    if exc.timed_out:
        return MediaError("transcode_timeout",
                          f"transcoding took longer than {settings.transcode_timeout_s:g} s")
    if exc.returncode is None or exc.returncode < 0:
        return exc  # killed by a signal (out of memory, shutdown): not the file's fault
    if any(marker in exc.stderr_tail for marker in INFRA_MARKERS):
        return exc
    return MediaError("transcode_failed", short_reason(exc.stderr_tail))


def short_reason(stderr_tail: str) -> str:
    """The last error a component (decoder, encoder, demuxer) reported, without its
    "[name @ 0x...]" prefix; ffmpeg's own closing lines only say that something failed."""
    lines = [line.strip() for line in stderr_tail.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("Conversion failed")]
    if not lines:
        return "ffmpeg could not transcode the source"
    specific = [line for line in lines if _COMPONENT.match(line)]
    reason = _COMPONENT.sub(r"\1: ", (specific or lines)[-1])
    return reason[:300]


def _rename_init(rendition_dir: Path) -> None:
    # ffmpeg names the init segment of variant N "init_N.mp4"; the layout says "init.mp4".
    playlist = rendition_dir / MEDIA_PLAYLIST
    text = playlist.read_text()
    uri = fixups.init_uri(text)
    if uri is None or uri == INIT:
        return
    (rendition_dir / uri).rename(rendition_dir / INIT)
    playlist.write_text(fixups.with_init_uri(text, INIT))


def _join_gops(rendition_dir: Path, ladder: Ladder) -> None:
    """The muxer's one-GOP parts (argv.hls_time), joined into the grid's segments."""
    g = grid(ladder)
    playlist = rendition_dir / MEDIA_PLAYLIST
    text = playlist.read_text()
    parts = fixups.extinf_values(text)
    # Key frames fall on the first frame at or after each multiple of the GOP.
    slack = 1 / float(exact_rate(ladder.fps)) + 0.001
    for n, length in enumerate(parts[:-1]):
        if abs(length - float(g.gop)) > slack:
            raise MediaError("transcode_failed", f"rendition {rendition_dir.name}: part {n}"
                             f" lasts {length:.3f} s, not one {float(g.gop):g} s GOP")
    if g.gops_per_short == g.gops_per_segment == 1:
        return  # one GOP a segment: the parts are the segments
    counts = fixups.gop_groups(len(parts), g.gops_per_short, g.count, g.gops_per_segment)
    text, runs = fixups.regrouped(text, counts)
    for run in runs:
        if len(run) > 1:
            _join(rendition_dir, run)
    playlist.write_text(text)


def _check_and_align(out_dir: Path, renditions: list[str], tricks: list[str]) -> None:
    """Every rendition has the same segments; so has each trick-play track, once
    its extra last frame (if any) is dropped and it has the renditions' durations."""
    reference = fixups.durations((out_dir / renditions[0] / MEDIA_PLAYLIST).read_text())
    for name in renditions[1:]:
        count = len(fixups.durations((out_dir / name / MEDIA_PLAYLIST).read_text()))
        if count != len(reference):
            raise MediaError("transcode_failed", f"rendition {name} has {count} segments,"
                             f" {renditions[0]} has {len(reference)}")
    for name in tricks:
        trick_dir = out_dir / name
        text = (trick_dir / MEDIA_PLAYLIST).read_text()
        count = len(fixups.durations(text))
        if count not in (len(reference), len(reference) + 1):
            raise MediaError("transcode_failed", f"trick-play track {name} has {count}"
                             f" segments, the renditions have {len(reference)}")
        text, dropped = fixups.retimed(text, reference)
        for uri in dropped:
            (trick_dir / uri).unlink()
        (trick_dir / MEDIA_PLAYLIST).write_text(text)


def _align_audio(reference: list[float], track_dir: Path) -> None:
    """Join the audio track's segments so that it has the reference's (fixups.grouping)."""
    text = (track_dir / MEDIA_PLAYLIST).read_text()
    try:
        text, runs = fixups.regrouped(text, fixups.grouping(fixups.extinf_values(text),
                                                            reference))
    except ValueError as exc:
        raise MediaError("transcode_failed", f"audio track {track_dir.name}: {exc}") from None
    for run in runs:
        if len(run) > 1:
            _join(track_dir, run)
    (track_dir / MEDIA_PLAYLIST).write_text(text)


def _join(track_dir: Path, uris: list[str]) -> None:
    """The segments named as one, in the first one's file; the others removed."""
    paths = [track_dir / uri for uri in uris]
    if paths[0].suffix == ".ts":
        # MPEG-TS from one muxer run: its packets simply continue.
        joined = b"".join(p.read_bytes() for p in paths)
    else:
        joined = fixups.joined_fmp4([p.read_bytes() for p in paths])
    paths[0].write_bytes(joined)
    for path in paths[1:]:
        path.unlink()
