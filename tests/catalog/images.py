"""Images made on the spot with ffmpeg, and hostile ones made by hand."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from stb_origin import proc
from tests.conftest import require_tools


def make_image(path: Path, width: int, height: int, alpha: bool = False) -> bytes:
    """A JPEG or PNG (by the suffix) of testsrc2 at this size, with EXIF-free bytes."""
    require_tools("ffmpeg", "ffprobe")
    fmt = ",format=rgba" if alpha else ""
    proc.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi",
              "-i", f"testsrc2=size={width}x{height}{fmt}", "-frames:v", "1",
              "-f", "image2", "-update", "1", "-y", str(path)], timeout=60)
    return path.read_bytes()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(
        ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_claiming(width: int, height: int) -> bytes:
    """A well-formed PNG header claiming this size over a few bytes of data: a
    decompression bomb as far as any decoder that trusts the header can tell."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _chunk(b"IEND", b""))


def probe_size(path: Path) -> tuple[str, int, int]:
    """(codec, width, height) as ffprobe reads the file."""
    out = proc.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height",
                    "-of", "csv=p=0", str(path)], timeout=30).stdout.strip()
    codec, width, height = out.split(",")
    return codec, int(width), int(height)
