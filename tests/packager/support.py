"""Helpers for the packager tests: real ffmpeg work dirs, an HLS+key server, a decoder."""

from __future__ import annotations

import collections
import http.server
import json
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from stb_origin import proc

FPS = 30
SECONDS = 8
SEGMENT_S = 2
RENDITIONS = (("360p", 640, 360), ("180p", 320, 180))
# One I-frame track per resolution tier, as the transcode makes them.
TRICKPLAY = (("iframes_360p", 640, 360), ("iframes_180p", 320, 180))
TIMEOUT = 60.0


def ffmpeg() -> str:
    # Raises ToolMissing ("... apt-get install -y ffmpeg") rather than skipping.
    proc.require("ffprobe")
    return proc.require("ffmpeg")


def build_work_dir(dst: Path, segment_format: str, audio: bool = True) -> Path:
    """What the transcode step leaves: one ffmpeg run, two rungs and two trick-play tracks."""
    seg_type, ext = ("fmp4", "m4s") if segment_format == "fmp4" else ("mpegts", "ts")
    split = len(RENDITIONS) + 1
    graph = [f"[0:v]split={split}" + "".join(f"[s{i}]" for i in range(split))]
    for i, (_, w, h) in enumerate(RENDITIONS):
        graph.append(f"[s{i}]scale={w}:{h}[v{i}]")
    graph.append(f"[s{split - 1}]fps=1/{SEGMENT_S},split={len(TRICKPLAY)}"
                 + "".join(f"[t{j}]" for j in range(len(TRICKPLAY))))
    for j, (name, w, h) in enumerate(TRICKPLAY):
        (dst / name).mkdir(parents=True)
        graph.append(f"[t{j}]scale={w}:{h}[tp{j}]")
    argv = [ffmpeg(), "-nostdin", "-hide_banner", "-v", "error",
            "-f", "lavfi", "-i", f"testsrc2=s=640x360:r={FPS}:d={SECONDS}"]
    if audio:
        argv += ["-f", "lavfi", "-i", f"sine=frequency=440:d={SECONDS}"]
    argv += ["-filter_complex", ";".join(graph)]
    stream_map = []
    for i, (name, _, _) in enumerate(RENDITIONS):
        argv += ["-map", f"[v{i}]"] + (["-map", "1:a"] if audio else [])
        stream_map.append(f"v:{i},a:{i},name:{name}" if audio else f"v:{i},name:{name}")
    hls = ["-f", "hls", "-hls_time", str(SEGMENT_S), "-hls_segment_type", seg_type,
           "-hls_playlist_type", "vod", "-hls_flags", "independent_segments"]
    argv += ["-c:v", "libx264", "-preset", "ultrafast", "-sc_threshold", "0",
             "-force_key_frames", f"expr:gte(t,n_forced*{SEGMENT_S})"]
    argv += ["-c:a", "aac", "-b:a", "64k"] if audio else []
    argv += hls + ["-var_stream_map", " ".join(stream_map),
                   "-hls_segment_filename", str(dst / "%v" / f"seg_%05d.{ext}")]
    if seg_type == "fmp4":
        argv += ["-hls_fmp4_init_filename", "init_%v.mp4"]
    argv += [str(dst / "%v" / "index.m3u8")]
    # The trick-play tracks: one intra frame per segment.
    for j, (name, _, _) in enumerate(TRICKPLAY):
        argv += ["-map", f"[tp{j}]", "-c:v", "libx264", "-preset", "ultrafast", "-g", "1"] + hls
        argv += ["-hls_segment_filename", str(dst / name / f"seg_%05d.{ext}")]
        if seg_type == "fmp4":
            argv += ["-hls_fmp4_init_filename", "init.mp4"]
        argv += [str(dst / name / "index.m3u8")]
    proc.run(argv, timeout=TIMEOUT)
    return dst


def encode_clip(dst: Path, profile: str, level: str | None, audio: bool = True,
                aac_profile: str = "aac_low") -> tuple[Path, Path]:
    """A one-second clip as an fMP4 init section and as a TS segment."""
    dst.mkdir(parents=True)
    common = [ffmpeg(), "-nostdin", "-hide_banner", "-v", "error",
              "-f", "lavfi", "-i", "testsrc2=s=160x90:r=25:d=1"]
    if audio:
        common += ["-f", "lavfi", "-i", "sine=d=1", "-c:a", "aac", "-profile:a", aac_profile]
    # veryfast, not ultrafast: ultrafast turns off CABAC and 8x8 transforms, so
    # x264 emits Constrained Baseline whatever -profile:v says (it is a ceiling).
    common += ["-c:v", "libx264", "-preset", "veryfast", "-profile:v", profile]
    common += ["-level", level] if level else []
    proc.run(common + ["-f", "hls", "-hls_time", "1", "-hls_segment_type", "fmp4",
                       "-hls_playlist_type", "vod", "-hls_fmp4_init_filename", "init.mp4",
                       "-hls_segment_filename", str(dst / "seg_%d.m4s"),
                       str(dst / "index.m3u8")], timeout=TIMEOUT)
    proc.run(common + ["-f", "mpegts", str(dst / "clip.ts")], timeout=TIMEOUT)
    return dst / "init.mp4", dst / "clip.ts"


def encode_hevc_init(dst: Path, pix_fmt: str) -> Path:
    """A one-second HEVC clip (x265, hvc1 sample entry) as HLS fMP4; its init section."""
    dst.mkdir(parents=True)
    proc.run([ffmpeg(), "-nostdin", "-hide_banner", "-v", "error",
              "-f", "lavfi", "-i", "testsrc2=s=160x90:r=25:d=1", "-pix_fmt", pix_fmt,
              "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error",
              "-tag:v", "hvc1", "-f", "hls", "-hls_time", "1", "-hls_segment_type", "fmp4",
              "-hls_playlist_type", "vod", "-hls_fmp4_init_filename", "init.mp4",
              "-hls_segment_filename", str(dst / "seg_%d.m4s"), str(dst / "index.m3u8")],
             timeout=TIMEOUT)
    return dst / "init.mp4"


def decrypt(data: bytes, key: bytes, iv: bytes) -> bytes:
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(decryptor.update(data) + decryptor.finalize()) + unpadder.finalize()


def reference_encrypt(data: bytes, key: bytes, iv: bytes) -> bytes:
    padder = padding.PKCS7(128).padder()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(padder.update(data) + padder.finalize()) + encryptor.finalize()


def decode(url_or_path: str) -> collections.Counter[int]:
    """Decode every stream to the end; frames per stream index. Any error fails."""
    done = proc.run([ffmpeg(), "-nostdin", "-hide_banner", "-v", "error", "-i", url_or_path,
                     "-map", "0", "-f", "framecrc", "-"], timeout=TIMEOUT)
    assert done.stderr_tail.strip() == "", done.stderr_tail
    lines = [ln for ln in done.stdout.splitlines() if ln and not ln.startswith("#")]
    return collections.Counter(int(ln.split(",")[0]) for ln in lines)


def probe_frames(path: Path) -> list[str]:
    """key_frame,pict_type of every video frame."""
    done = proc.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                     "frame=key_frame,pict_type", "-of", "csv=p=0", str(path)], timeout=TIMEOUT)
    return [ln.strip().rstrip(",") for ln in done.stdout.splitlines() if ln.strip()]


# Samples a frame and the encoder's priming samples (ffmpeg's aac and eac3 encoders).
FRAMES = {"aac": (1024, 1024), "eac3": (1536, 256)}


def encoded_samples(codec: str, source_samples: int) -> int:
    """What an encoded rendition of that many samples decodes to: the encoder's
    priming (HLS keeps it), then whole frames covering the source."""
    frame, priming = FRAMES[codec]
    return frame * math.ceil((source_samples + priming) / frame)


def decoded_audio(url: str) -> tuple[int, int, str]:
    """(samples, channels, codec) of the first audio stream, decoded to the end."""
    probe_out = proc.run(["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
                          "stream=channels,codec_name", "-of", "csv=p=0", url],
                         timeout=TIMEOUT).stdout.split()
    # A playlist's stream is listed twice: in its program and on its own.
    codec, channels = probe_out[0].split(",")[:2]
    done = proc.run([ffmpeg(), "-nostdin", "-v", "error", "-i", url, "-map", "0:a:0",
                     "-f", "framecrc", "-"], timeout=TIMEOUT)
    assert done.stderr_tail.strip() == "", done.stderr_tail
    # framecrc lines: stream, dts, pts, duration (samples, as the time base is 1/rate), ...
    lines = [ln for ln in done.stdout.splitlines() if ln and not ln.startswith("#")]
    samples = sum(int(ln.split(",")[3]) for ln in lines)
    return samples, int(channels), codec


def probe_size(path: Path) -> tuple[int, int]:
    done = proc.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                     "stream=width,height", "-of", "json", str(path)], timeout=TIMEOUT)
    (stream,) = json.loads(done.stdout)["streams"]
    return int(stream["width"]), int(stream["height"])


@dataclass
class HlsServer:
    """Serves root over HTTP on 127.0.0.1 and 16-byte keys at their URI paths."""

    root: Path
    keys: dict[str, bytes] = field(default_factory=dict)
    deny_keys: bool = False
    requests: list[str] = field(default_factory=list)
    port: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def serve(root: Path) -> Iterator[HlsServer]:
    state = HlsServer(root)

    class Handler(http.server.SimpleHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(state.root), **kwargs)

        def do_GET(self) -> None:
            state.requests.append(self.path)
            if self.path.startswith("/keys/"):
                key = state.keys.get(self.path)
                status = 401 if state.deny_keys else 200 if key is not None else 404
                body = key if status == 200 and key is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            super().do_GET()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# stb_origin.proc.run never closes the child's stdout/stderr pipes, so each
# call leaves two unclosed-file ResourceWarnings when its Popen is freed.
# Ignore exactly that, in the modules that run processes, until proc.py closes them.
