"""Artwork images from outside: sniffed, probed, and scaled to a few widths by ffmpeg.

An upload is trusted for nothing. Its first bytes must be a JPEG's or a PNG's
magic, and ffprobe and ffmpeg read it only with that format's image demuxer
(never guessing) and only from a local file (``-protocol_whitelist file``), so
a playlist or any other text that names URLs or files is refused, not
followed. The dimensions are read from the header and bounded before anything
is decoded (a few bytes of PNG can claim a 60000-pixel square), and a decoding
error stops ffmpeg (``-err_detect explode -xerror``) rather than fill the rest
of a truncated image with grey.

The sizes keep the upload's format (a PNG logo keeps its transparency), are
never wider than the upload, and carry none of its metadata.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from stb_origin import proc

JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_BYTES = 16 * 1024 * 1024
MIN_SIDE = 16
MAX_SIDE = 8192
MAX_PIXELS = 40_000_000
WIDTHS = (1920, 960, 480)
TIMEOUT_S = 60.0


class BadImage(ValueError):
    """Not an image we take; the message says why, for the uploader."""


@dataclass(frozen=True)
class Format:
    name: str  # the file suffix and the stored format: "jpg" or "png"
    media_type: str
    demuxer: str
    codec: str  # what ffprobe calls the decoder of a genuine one


JPEG = Format("jpg", "image/jpeg", "jpeg_pipe", "mjpeg")
PNG = Format("png", "image/png", "png_pipe", "png")
FORMATS = {JPEG.media_type: JPEG, PNG.media_type: PNG}


def sniff(head: bytes) -> Format:
    if head.startswith(JPEG_MAGIC):
        return JPEG
    if head.startswith(PNG_MAGIC):
        return PNG
    raise BadImage("not a JPEG or PNG image (its first bytes say otherwise)")


def _input(fmt: Format, path: Path) -> list[str]:
    return ["-protocol_whitelist", "file", "-f", fmt.demuxer, "-i", f"file:{path}"]


def probe_argv(fmt: Format, path: Path) -> list[str]:
    return ["ffprobe", "-v", "error", *_input(fmt, path), "-select_streams", "v:0",
            "-show_entries", "stream=codec_name,width,height", "-of", "json"]


def widths_for(width: int) -> list[int]:
    """The standard widths the image can fill, or its own width when it is narrower."""
    return [w for w in WIDTHS if w <= width] or [width]


def scale_argv(fmt: Format, path: Path, outputs: list[tuple[int, Path]]) -> list[str]:
    """One decode, split into every width; the height keeps the aspect ratio."""
    labels = [f"s{i}" for i in range(len(outputs))]
    graph = f"[0:v]split={len(outputs)}" + "".join(f"[{label}]" for label in labels) + ";" + \
        ";".join(f"[{label}]scale={width}:-1[o{i}]"
                 for i, (label, (width, _)) in enumerate(zip(labels, outputs, strict=True)))
    argv = ["ffmpeg", "-nostdin", "-v", "error", "-err_detect", "explode", "-xerror",
            *_input(fmt, path), "-filter_complex", graph]
    quality = ["-q:v", "3"] if fmt is JPEG else []
    for i, (_, out) in enumerate(outputs):
        argv += ["-map", f"[o{i}]", "-frames:v", "1", "-map_metadata", "-1", *quality,
                 "-f", "image2", "-update", "1", "-y", str(out)]
    return argv


def dimensions(fmt: Format, path: Path) -> tuple[int, int]:
    """The image's size from its header, within the bounds, or BadImage."""
    try:
        found = json.loads(proc.run(probe_argv(fmt, path), timeout=TIMEOUT_S).stdout)
        stream = found["streams"][0]
        codec, width, height = stream["codec_name"], int(stream["width"]), int(stream["height"])
    except (proc.ProcessFailed, ValueError, KeyError, IndexError, TypeError):
        raise BadImage(f"not a readable {fmt.name.upper()} image") from None
    if codec != fmt.codec or not width or not height:
        raise BadImage(f"not a readable {fmt.name.upper()} image")
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE) \
            or width * height > MAX_PIXELS:
        raise BadImage(f"{width}x{height}: each side must be {MIN_SIDE} to {MAX_SIDE} pixels,"
                       f" at most {MAX_PIXELS // 1_000_000} megapixels")
    return width, height


def scale(fmt: Format, path: Path, folder: Path) -> list[tuple[int, int, Path]]:
    """The sizes made in ``folder``: (width, height, file), widest first."""
    width, _ = dimensions(fmt, path)
    outputs = [(w, folder / f"{w}.{fmt.name}") for w in widths_for(width)]
    try:
        proc.run(scale_argv(fmt, path, outputs), timeout=TIMEOUT_S)
    except proc.ProcessFailed:
        raise BadImage(f"the {fmt.name.upper()} image is damaged or truncated") from None
    # The heights as ffmpeg rounded them, read back rather than computed again here.
    return [(*dimensions(fmt, out), out) for _, out in outputs]
