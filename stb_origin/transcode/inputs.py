"""How every ffprobe/ffmpeg run opens an uploaded file.

An upload is hostile until proven otherwise. Playlist-like demuxers (hls,
concat, image2, tty, lavfi, ...) follow names written inside the file, so an
uploaded .m3u8 or ffconcat could make ffmpeg read /etc/passwd or reach the
network. Only the file protocol is allowed, and only demuxers of real
containers that carry their media inside themselves.
"""

from __future__ import annotations

from pathlib import Path

# Demuxer names as ffmpeg spells them; a demuxer is allowed when any of the
# comma-separated names it registers ("mov,mp4,m4a,3gp,3g2,mj2") is listed.
# The audio-only ones are here for audio-only masters (an audio-only stream).
SAFE_DEMUXERS = (
    "mov",        # mp4, m4v, mov, 3gp
    "matroska",   # mkv, webm
    "mpegts",
    "mpeg",       # MPEG program stream (.mpg, .vob)
    "avi",
    "flv",
    "mxf",
    "asf",        # wmv
    "ogg",
    "dv",
    "wav",
    "mp3",
    "aac",
    "flac",
)


def input_args(path: Path) -> list[str]:
    # "file:" stops a name such as "x:y.mp4" being read as a protocol.
    return [
        "-protocol_whitelist", "file",
        "-format_whitelist", ",".join(SAFE_DEMUXERS),
        "-i", "file:" + str(path.absolute()),
    ]
