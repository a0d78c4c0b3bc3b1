"""A first look at an upload's leading bytes: is it plausibly a media container?

This only turns away the obviously wrong (text, playlists, images, archives)
with a clear 415 before anything is queued; ffprobe has the final word.
"""

from __future__ import annotations

SNIFF_BYTES = 4096


def container_of(head: bytes) -> str | None:
    """Name of the container the leading bytes announce, or None."""
    if len(head) >= 12 and head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide",
                                         b"skip", b"pnot"):
        return "mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "avi"
    if head.startswith(b"FLV\x01"):
        return "flv"
    if head.startswith(b"\x06\x0e\x2b\x34"):
        return "mxf"
    if head.startswith(b"\x00\x00\x01\xba"):
        return "mpeg-ps"
    if _is_transport_stream(head):
        return "mpegts"
    return None


def _is_transport_stream(head: bytes) -> bool:
    # Sync byte every 188 bytes (or 192 for M2TS with a 4-byte timecode prefix).
    for size, offset in ((188, 0), (192, 4)):
        positions = range(offset, min(len(head), size * 4), size)
        if len(positions) >= 2 and all(head[p] == 0x47 for p in positions):
            return True
    return False


def audio_format_of(head: bytes) -> str | None:
    """The sidecar audio format the leading bytes announce ("wav", "aac", "mp4"), or None."""
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return "wav"
    # ADTS: a 12-bit sync word and layer 0.
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0:
        return "aac"
    if container_of(head) == "mp4":
        return "mp4"
    return None
