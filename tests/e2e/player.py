"""ffmpeg as an independent HLS client: the stand-in for a set-top box."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Playback:
    returncode: int
    video_frames: int
    audio_frames: int
    errors: str


def play(url: str, token: str | None, timeout: float = 120,
         seconds: float | None = None) -> Playback:
    """Decode every frame of an HLS playlist (a live one: the first ``seconds``);
    counts frames per stream type."""
    headers = ["-headers", f"Authorization: Bearer {token}\r\n"] if token else []
    limit = ["-t", f"{seconds:g}"] if seconds is not None else []
    result = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", *headers, "-i", url, "-map", "0", *limit,
         "-f", "framecrc", "-"],
        capture_output=True, text=True, timeout=timeout, check=False,
    )
    video = audio = 0
    kinds: dict[str, str] = {}
    for line in result.stdout.splitlines():
        if line.startswith("#media_type"):
            # "#media_type 0: video"
            index, _, kind = line.removeprefix("#media_type ").partition(": ")
            kinds[index] = kind.strip()
        elif line and not line.startswith("#"):
            kind = kinds.get(line.split(",", 1)[0].strip())
            video += kind == "video"
            audio += kind == "audio"
    return Playback(result.returncode, video, audio, result.stderr)


def keyframe_times(url: str, token: str, timeout: float = 120) -> list[float]:
    """Presentation times of the video keyframes, read through the playlist."""
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-headers", f"Authorization: Bearer {token}\r\n",
         "-select_streams", "v:0", "-show_entries", "packet=pts_time,flags", "-of", "json", url],
        capture_output=True, text=True, timeout=timeout, check=True,
    )
    packets = json.loads(result.stdout)["packets"]
    return [round(float(p["pts_time"]), 3) for p in packets if "K" in p.get("flags", "")]


def decoded_frames(path: Path) -> int:
    """Video frames ffmpeg can decode from a file (0 when it is not media)."""
    result = subprocess.run(["ffmpeg", "-nostdin", "-v", "quiet", "-i", str(path), "-map", "0:v:0?",
                             "-f", "framecrc", "-"],
                            capture_output=True, text=True, timeout=60, check=False)
    return sum(1 for line in result.stdout.splitlines() if line and not line.startswith("#"))


def decrypt(data: bytes, key: bytes, iv: bytes) -> bytes:
    """AES-128-CBC with PKCS7, as RFC 8216 5.2 defines for METHOD=AES-128."""
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(data) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()
