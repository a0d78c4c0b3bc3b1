"""Sidecar tracks: check an uploaded audio or subtitle file, keep it beside the
asset's master, record it, and put the asset through the pipeline again.

Nothing is recorded before the file is checked and stored, and a file whose
record could not be written is deleted again: a failed upload leaves nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stb_origin.assets import records, runs
from stb_origin.assets.tracks import Kind, Track, of_asset
from stb_origin.db.types import new_id
from stb_origin.ingest.subtitle_files import checked_webvtt, srt_to_webvtt
from stb_origin.pipeline import queue_run
from stb_origin.services import Services
from stb_origin.storage import StorageError, layout

log = logging.getLogger("stb_origin.ingest")

# Each is one more rendition in every player's menu, and one more ffmpeg input.
MAX_TRACKS = 16
SRT = "application/x-subrip"
WEBVTT = "text/vtt"


@dataclass(frozen=True)
class FileType:
    kind: Kind
    suffix: str  # of the stored file
    sniffed: str | None  # audio: what ingest.sniff.audio_format_of says of it


# Content-Type -> how the file is checked and kept; SRT is kept as WebVTT.
FILE_TYPES = {
    "audio/wav": FileType(Kind.AUDIO, ".wav", "wav"),
    "audio/aac": FileType(Kind.AUDIO, ".aac", "aac"),
    "audio/mp4": FileType(Kind.AUDIO, ".m4a", "mp4"),
    WEBVTT: FileType(Kind.SUBTITLES, ".vtt", None),
    SRT: FileType(Kind.SUBTITLES, ".vtt", None),
}


@dataclass(frozen=True)
class TrackFacts:
    kind: Kind
    language: str | None  # BCP-47
    name: str  # clean (transcode.audio.clean_label)
    forced: bool


class AssetGone(Exception):
    """The asset was deleted while its track was being uploaded."""


class TooManyTracks(Exception):
    pass


def to_webvtt(path: Path, content_type: str) -> None:
    """Rewrite the subtitle file at path as the WebVTT to store; SubtitleError
    names the line that is wrong."""
    data = path.read_bytes()
    text = srt_to_webvtt(data) if content_type == SRT else checked_webvtt(data)
    path.write_text(text, encoding="utf-8")


def add_track(services: Services, asset_id: str, facts: TrackFacts, path: Path,
              file_type: FileType) -> dict[str, Any]:
    """Store the checked file at path as a track of the asset and republish it;
    returns the track's JSON. AssetGone, TooManyTracks: nothing is kept."""
    track_id = new_id()
    key = layout.track_key(asset_id, track_id, file_type.suffix)
    content_type = WEBVTT if facts.kind == Kind.SUBTITLES else "application/octet-stream"
    size = path.stat().st_size
    services.storage.put_file(key, path, content_type)
    try:
        with services.db.session() as session:
            if records.get(session, asset_id) is None:
                raise AssetGone
            if len(of_asset(session, asset_id)) >= MAX_TRACKS:
                raise TooManyTracks
            track = Track(id=track_id, asset_id=asset_id, kind=facts.kind.value,
                          language=facts.language, name=facts.name, forced=facts.forced,
                          object_key=key, size=size)
            session.add(track)
            session.flush()
            body = track.to_json()
            attempt = runs.republish(session, asset_id)
    except Exception:
        services.storage.delete_prefix(key)
        raise
    if attempt is not None:
        queue_run(services, asset_id, attempt)
    log.info("track added", extra={"asset_id": asset_id, "track_id": track_id,
                                   "kind": facts.kind.value, "bytes": size})
    return body


def list_tracks(services: Services, asset_id: str) -> list[dict[str, Any]] | None:
    """The asset's tracks, or None if there is no such asset."""
    with services.db.session() as session:
        if records.get(session, asset_id) is None:
            return None
        return [track.to_json() for track in of_asset(session, asset_id)]


def remove_track(services: Services, asset_id: str, track_id: str) -> bool:
    """Remove the track and republish the asset; False if the asset has no such track."""
    with services.db.session() as session:
        track = session.get(Track, track_id)
        if track is None or track.asset_id != asset_id:
            return False
        key = track.object_key
        session.delete(track)
        attempt = runs.republish(session, asset_id)
    if attempt is not None:
        queue_run(services, asset_id, attempt)
    try:
        services.storage.delete_prefix(key)
    except StorageError:
        # Nothing names it any more; it goes with the asset's sources when the asset does.
        log.warning("removed track's file not deleted",
                    extra={"asset_id": asset_id, "track_id": track_id})
    log.info("track removed", extra={"asset_id": asset_id, "track_id": track_id})
    return True
