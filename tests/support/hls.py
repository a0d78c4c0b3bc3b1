"""Reading what the m3u8 library leaves out of a parsed media playlist."""

from __future__ import annotations

import m3u8


def init_key(text: str) -> tuple[str, bytes]:
    """URI and IV of the EXT-X-KEY in effect at the EXT-X-MAP (RFC 8216 §4.3.2.5).

    m3u8 attaches keys to segments only, not to the init section.
    """
    key: str | None = None
    for line in text.splitlines():
        if line.startswith("#EXT-X-KEY:"):
            key = line
        elif line.startswith("#EXT-X-MAP:"):
            if key is None:
                raise AssertionError("EXT-X-MAP before any EXT-X-KEY: the init section is clear")
            parsed = m3u8.loads(f"#EXTM3U\n{key}\n#EXTINF:1,\nx\n").segments[0].key
            return parsed.uri, bytes.fromhex(parsed.iv.removeprefix("0x"))
    raise AssertionError("no EXT-X-MAP in the playlist")
