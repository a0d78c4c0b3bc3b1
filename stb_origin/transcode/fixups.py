"""Pure edits to the media playlists ffmpeg's hls muxer writes, so out_dir matches the layout.

Two things ffmpeg 5.1 cannot be told to do:
- with several variants it names each init segment "init_<index>.mp4";
- the trick-play track (fps=1/SEG) gives its last frame a whole segment
  duration, and when the video ends just after a segment boundary it emits one
  frame more than there are segments (a boundary inside the last frame's time).
"""

from __future__ import annotations

import re

_EXTINF = re.compile(r"^#EXTINF:([0-9.]+),", re.MULTILINE)
_MAP = re.compile(r'^#EXT-X-MAP:URI="([^"]+)"', re.MULTILINE)


def durations(playlist: str) -> list[str]:
    """The EXTINF values, as written."""
    return _EXTINF.findall(playlist)


def init_uri(playlist: str) -> str | None:
    match = _MAP.search(playlist)
    return match.group(1) if match else None


def with_init_uri(playlist: str, uri: str) -> str:
    return _MAP.sub(f'#EXT-X-MAP:URI="{uri}"', playlist, count=1)


def retimed(playlist: str, reference: list[str]) -> tuple[str, list[str]]:
    """The playlist with the reference's durations and at most as many segments.

    Returns the new text and the URIs of the segments dropped from its end.
    """
    lines = playlist.splitlines()
    out: list[str] = []
    dropped: list[str] = []
    index = 0
    pending_drop = False
    for line in lines:
        if _EXTINF.match(line):
            if index < len(reference):
                out.append(f"#EXTINF:{reference[index]},")
            else:
                pending_drop = True
            index += 1
        elif line and not line.startswith("#") and pending_drop:
            dropped.append(line)
            pending_drop = False
        else:
            out.append(line)
    return "\n".join(out) + "\n", dropped
