"""Test masters with CEA-608 captions in their H.264 video, and reading captions back.

ffmpeg 5.1 has no caption encoder, so make_captions_clip writes the captions
itself: libx264 encodes an Annex-B stream, and before the first slice of every
frame goes an SEI NAL unit (user_data_registered_itu_t_t35, "GA94" cc_data,
ATSC A/53 Part 4) carrying one CEA-608 byte pair for field 1, channel CC1.
Each caption is sent pop-on: resume caption loading, the text, end of caption
(which shows it), then erase displayed memory when it ends.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from stb_origin import proc

TIMEOUT_S = 120.0
# Miscellaneous control codes of data channel 1 (CC1), field 1.
RCL = (0x14, 0x20)  # resume caption loading: pop-on mode
EOC = (0x14, 0x2F)  # end of caption: show what was loaded
EDM = (0x14, 0x2C)  # erase displayed memory
PAD = (0x00, 0x00)


def make_captions_clip(path: Path, captions: Sequence[tuple[float, float, str]],
                       seconds: float = 4, fps: int = 30, size: str = "320x180") -> Path:
    """An MP4 (H.264 + AAC) whose video carries captions (start s, end s, ASCII text)."""
    raw = path.with_suffix(".h264")
    proc.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
              "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}:duration={seconds}",
              "-c:v", "libx264", "-preset", "ultrafast", "-bf", "0", "-pix_fmt", "yuv420p",
              "-f", "h264", str(raw)], timeout=TIMEOUT_S)
    pairs = _schedule(captions, round(seconds * fps), fps)
    raw.write_bytes(_with_captions(raw.read_bytes(), pairs))
    try:
        proc.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
                  "-r", str(fps), "-f", "h264", "-i", str(raw),
                  "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
                  "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", str(path)],
                 timeout=TIMEOUT_S)
    finally:
        raw.unlink(missing_ok=True)
    return path


def read_captions(source: str) -> list[tuple[float, float, str]]:
    """The CC1 captions a file or playlist carries, as ffmpeg's decoder shows them:
    (start s, end s, text), times as the file's own timestamps say."""
    escaped = source.replace("\\", "\\\\").replace(":", "\\:").replace("'", "\\'")
    done = proc.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error",
                     "-f", "lavfi", "-i", f"movie='{escaped}'[out0+subcc]",
                     "-map", "0:s", "-f", "webvtt", "-"], timeout=TIMEOUT_S)
    found = []
    for start, end, text in re.findall(
            r"(\S+) --> (\S+)[^\n]*\n(.+?)(?:\n\n|\Z)", done.stdout, flags=re.S):
        found.append((_seconds(start), _seconds(end), text.strip()))
    return found


def _seconds(stamp: str) -> float:
    parts = [float(p) for p in stamp.split(":")]
    return sum(p * 60 ** i for i, p in enumerate(reversed(parts)))


def _schedule(captions: Sequence[tuple[float, float, str]], frames: int, fps: int
              ) -> list[tuple[int, int]]:
    """One byte pair per frame: each caption's commands start early enough that its
    EOC lands on the frame of its start time, and EDM on the frame of its end."""
    pairs = [PAD] * frames
    for start, end, text in captions:
        chars = text.encode("ascii") + (b"\x00" if len(text) % 2 else b"")
        loading = [RCL, RCL, *[(chars[i], chars[i + 1]) for i in range(0, len(chars), 2)]]
        show = round(start * fps)
        first = show - len(loading)
        if first < 0:
            raise ValueError(f"caption {text!r} starts too early to be loaded")
        for n, pair in enumerate([*loading, EOC]):
            pairs[first + n] = pair
        pairs[round(end * fps)] = EDM
    return [(_parity(a), _parity(b)) for a, b in pairs]


def _parity(byte: int) -> int:
    # CEA-608 bytes carry odd parity in their top bit.
    return byte | (0 if bin(byte).count("1") % 2 else 0x80)


def _sei(pair: tuple[int, int]) -> bytes:
    payload = bytes([0xB5, 0x00, 0x31]) + b"GA94" + bytes(
        [0x03, 0x40 | 1, 0xFF, 0xFC, pair[0], pair[1], 0xFF])
    rbsp = bytes([0x04, len(payload)]) + payload + b"\x80"
    return b"\x00\x00\x00\x01\x06" + _emulation_prevented(rbsp)


def _emulation_prevented(rbsp: bytes) -> bytes:
    out, zeros = bytearray(), 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def _with_captions(stream: bytes, pairs: Sequence[tuple[int, int]]) -> bytes:
    """An SEI before the first slice of each frame (no B-frames: decode order is
    display order)."""
    starts = [m.start() for m in re.finditer(b"\x00\x00\x01", stream)]
    out, frame, last = bytearray(), 0, 0
    for start in starts:
        header = stream[start + 3]
        first_slice = (header & 0x1F) in (1, 5) and stream[start + 4] & 0x80
        if first_slice:
            # Keep a 4-byte start code's leading zero with what came before.
            out += stream[last:start]
            if frame < len(pairs):
                out += _sei(pairs[frame])
            frame += 1
            last = start
    out += stream[last:]
    return bytes(out)
