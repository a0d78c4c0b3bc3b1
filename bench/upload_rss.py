"""Peak RSS of a real `stb-origin serve` while it receives a 2 GB upload.

The body is multipart/form-data like `curl -F file=@master.mp4`: the first bytes
of a real MP4 (so the upload is accepted as a video container) followed by
filler up to --gib GiB, generated and streamed by the client, never held in
memory. The server's RSS (/proc via psutil) is sampled every 20 ms from before
the upload until after the answer. The server is warmed up first with a small
upload, so the baseline includes the code every upload loads.

Two more runs set STB_MAX_UPLOAD_BYTES far below the body's size, with a client
that stops sending as soon as an answer comes: with Content-Length the 413
comes from the headers; chunked (no length) it comes after about the limit.

    .venv/bin/python bench/upload_rss.py                 # 2 GiB, then the 413 case
    .venv/bin/python bench/upload_rss.py --gib 0.5 --no-limit-run

No worker runs: the asset stays queued (its source would fail probing: filler).
Needs: apt-get install -y redis-server ffmpeg; .venv/bin/pip install psutil
"""

from __future__ import annotations

import argparse
import secrets
import select
import shutil
import socket
import sys
import threading
import time
from collections.abc import Iterator

import httpx
from common import OUT, machine_facts, warn_if_busy
from servers import Process, start_redis, start_uvicorn, stb_env

from stb_origin import proc
from stb_origin.auth.tokens import load_signer
from stb_origin.migrations import open_database
from stb_origin.settings import Settings

WORK = OUT / "upload_rss"
CHUNK = 1024 * 1024
SAMPLE_S = 0.02
UPLOAD_TIMEOUT_S = 600.0


def mp4_head() -> bytes:
    """The first bytes of a real (tiny) MP4: ftyp, moov... what the sniffer looks at."""
    path = WORK / "head.mp4"
    if not path.exists():
        proc.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
                  "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30:duration=1",
                  "-c:v", "libx264", "-preset", "ultrafast", "-movflags", "+faststart",
                  str(path)], timeout=60)
    return path.read_bytes()[:64 * 1024]


class Body:
    """A multipart body of exactly `size` file bytes, generated chunk by chunk."""

    def __init__(self, head: bytes, size: int) -> None:
        self.boundary = "bench" + secrets.token_hex(12)
        self.head = head[:size]
        self.size = size
        self.preamble = (f"--{self.boundary}\r\n"
                         'Content-Disposition: form-data; name="title"\r\n\r\n'
                         "upload_rss bench\r\n"
                         f"--{self.boundary}\r\n"
                         'Content-Disposition: form-data; name="file"; filename="master.mp4"\r\n'
                         "Content-Type: video/mp4\r\n\r\n").encode()
        self.epilogue = f"\r\n--{self.boundary}--\r\n".encode()
        self.sent = 0

    @property
    def length(self) -> int:
        return len(self.preamble) + self.size + len(self.epilogue)

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def chunks(self) -> Iterator[bytes]:
        yield self.preamble
        self.sent += len(self.preamble)
        yield self.head
        self.sent += len(self.head)
        filler = bytes(CHUNK)  # zeros: never contains the boundary
        left = self.size - len(self.head)
        while left > 0:
            piece = filler if left >= CHUNK else filler[:left]
            yield piece
            self.sent += len(piece)
            left -= len(piece)
        yield self.epilogue
        self.sent += len(self.epilogue)


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        import psutil

        self.process = psutil.Process(pid)
        self.samples: list[tuple[float, int]] = []
        self.stopping = threading.Event()

    def rss(self) -> int:
        return int(self.process.memory_info().rss)

    def run(self) -> None:
        start = time.monotonic()
        while not self.stopping.is_set():
            self.samples.append((time.monotonic() - start, self.rss()))
            time.sleep(SAMPLE_S)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=5)


def upload(base_url: str, token: str, body: Body) -> tuple[int | str, float, int]:
    """(status or error, seconds, body bytes the client had sent when it ended)."""
    started = time.monotonic()
    try:
        response = httpx.post(base_url + "/v1/assets", content=body.chunks(),
                              headers={"Authorization": f"Bearer {token}",
                                       "Content-Type": body.content_type,
                                       "Content-Length": str(body.length)},
                              timeout=httpx.Timeout(UPLOAD_TIMEOUT_S, connect=10))
        outcome: int | str = response.status_code
    except httpx.HTTPError as exc:
        # A server that answers 413 early may close before the client finished sending.
        outcome = f"{type(exc).__name__} (connection ended by the server)"
    return outcome, time.monotonic() - started, body.sent


def raw_upload(base_url: str, token: str, body: Body, chunked: bool
               ) -> tuple[int | str, float, int]:
    """Like upload(), on a plain socket that stops sending as soon as an answer
    arrives: shows how much of the body the server took before it said no."""
    host, port = base_url.removeprefix("http://").split(":")
    started = time.monotonic()
    sent = 0
    length = ("Transfer-Encoding: chunked" if chunked
              else f"Content-Length: {body.length}")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall((f"POST /v1/assets HTTP/1.1\r\nHost: {host}\r\n"
                      f"Authorization: Bearer {token}\r\n"
                      f"Content-Type: {body.content_type}\r\n{length}\r\n\r\n").encode())
        sock.settimeout(2)
        answered = False
        for chunk in body.chunks():
            if select.select([sock], [], [], 0)[0]:
                answered = True
                break
            data = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" if chunked else chunk
            try:
                sock.sendall(data)
            except TimeoutError:
                answered = True  # the server stopped reading: its answer is waiting
                break
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
            if time.monotonic() - started > UPLOAD_TIMEOUT_S:
                return "client time-out", time.monotonic() - started, sent
        if not answered and chunked:
            sock.sendall(b"0\r\n\r\n")
        sock.settimeout(30)
        try:
            status_line = sock.recv(4096).split(b"\r\n", 1)[0].decode()
            status: int | str = int(status_line.split()[1])
        except (OSError, IndexError, ValueError):
            status = "no answer"
    return status, time.monotonic() - started, sent


def measure(label: str, gib: float, max_bytes: int | None, head: bytes,
            chunked: bool = False) -> None:
    data = WORK / label
    redis, redis_url = start_redis(WORK / f"redis-{label}")
    processes: list[Process] = [redis]
    try:
        env = {"STB_DATA_DIR": str(data), "STB_REDIS_URL": redis_url}
        if max_bytes is not None:
            env["STB_MAX_UPLOAD_BYTES"] = str(max_bytes)
        server, port = start_uvicorn(stb_env(env), WORK / "logs", f"serve-{label}")
        processes.append(server)
        base_url = f"http://127.0.0.1:{port}"
        settings = Settings(data_dir=data)
        token = load_signer(settings, open_database(settings.resolved_database_url)).issue(
            ["assets:write"], subject="bench", ttl_s=3600)
        # Warm-up: the first upload imports and allocates what every upload uses.
        warm = upload(base_url, token, Body(head, 4 * CHUNK))
        if warm[0] != 202:
            raise RuntimeError(f"warm-up upload answered {warm[0]}:\n"
                               + server.log.read_text()[-2000:])
        time.sleep(0.5)

        sampler = RssSampler(server.pid)
        baseline = sampler.rss()
        sampler.start()
        size = int(gib * 1024**3)
        body = Body(head, size)
        if max_bytes is None:
            status, seconds, sent = upload(base_url, token, body)
        else:
            status, seconds, sent = raw_upload(base_url, token, body, chunked)
        time.sleep(0.5)
        sampler.stop()
        peak = max(rss for _, rss in sampler.samples)
        after = sampler.rss()
        mib = 1024 * 1024
        limit = "" if max_bytes is None else f", STB_MAX_UPLOAD_BYTES={max_bytes}"
        limit += ", chunked (no Content-Length)" if chunked else ""
        print(f"\n{label}: {size / 1024**3:.2f} GiB body{limit}")
        print(f"  answer: {status} after {seconds:.1f} s; the client had sent"
              f" {sent / mib:.0f} MiB ({sent / mib / max(seconds, 1e-9):.0f} MiB/s)")
        print(f"  server RSS: baseline {baseline / mib:.1f} MiB, peak {peak / mib:.1f} MiB,"
              f" delta {(peak - baseline) / mib:+.1f} MiB, after {after / mib:.1f} MiB"
              f" ({len(sampler.samples)} samples, every {SAMPLE_S * 1000:.0f} ms)")
        stored = sorted((data / "storage").rglob("*"))
        biggest = max((p.stat().st_size for p in stored if p.is_file()), default=0)
        print(f"  largest object in storage: {biggest / mib:.0f} MiB"
              " (the warm-up upload is 4 MiB)")
    finally:
        for process in reversed(processes):
            process.stop()
        shutil.rmtree(data, ignore_errors=True)  # 2 GiB of filler


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gib", type=float, default=2.0, help="upload size in GiB")
    parser.add_argument("--limit-mib", type=int, default=100,
                        help="STB_MAX_UPLOAD_BYTES for the 413 run, in MiB")
    parser.add_argument("--no-limit-run", action="store_true", help="skip the 413 run")
    args = parser.parse_args()
    if not 0 < args.gib <= 16:
        parser.error("--gib must be in (0, 16]")
    print(machine_facts())
    warn_if_busy()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    head = mp4_head()
    measure("accepted", args.gib, None, head)
    if not args.no_limit_run:
        # Declared too big: refused from the headers. Chunked: refused while streaming.
        measure("refused", args.gib, args.limit_mib * 1024 * 1024, head)
        measure("refused-chunked", args.gib, args.limit_mib * 1024 * 1024, head, chunked=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
