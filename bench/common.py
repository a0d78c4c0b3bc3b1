"""What every benchmark here shares: machine facts, the cached source clip, a table."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import resource
import statistics
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from stb_origin import proc

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / "out"  # git-ignored
# A mezzanine-like master: well above the top rung (6 Mb/s), so plan_ladder caps nothing
# and the whole default ladder is made.
SOURCE_VIDEO_BITRATE = "20M"


def machine_facts() -> str:
    ffmpeg = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True,
                            check=True).stdout.splitlines()[0]
    return (f"nproc {os.cpu_count()}, {_cpu_model()}, {ffmpeg.split(' Copyright')[0]},"
            f" Python {platform.python_version()}")


def warn_if_busy(sample_s: float = 2.0) -> None:
    """Say so when other work is running: it shows up as noise in the figures.

    Measured from /proc/stat, not the load average, which tasks waiting on I/O
    inflate on this kind of VM even when the CPUs are idle.
    """
    before = _machine_busy_s()
    time.sleep(sample_s)
    busy = (_machine_busy_s() - before) / (sample_s * (os.cpu_count() or 1))
    if busy > 0.1:
        print(f"note: the CPUs were {100 * busy:.0f}% busy just before starting; other"
              " processes are running, so expect noise (rerun when it is quiet)")


class OtherCpu:
    """CPU time the rest of the machine used while a benchmark ran: the noise in its figures.

    The load average cannot tell: our own ffmpeg threads make it high.
    """

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.busy = _machine_busy_s()
        self.steal = _machine_steal_s()
        self.own = _own_cpu_s()

    def report(self, own_elsewhere_s: float = 0.0) -> str:
        """own_elsewhere_s: CPU of our processes not yet waited for (servers, workers)."""
        available = (time.monotonic() - self.start) * (os.cpu_count() or 1)
        own = _own_cpu_s() - self.own + own_elsewhere_s
        others = max(0.0, _machine_busy_s() - self.busy - own)
        steal = _machine_steal_s() - self.steal
        return (f"other processes used {others:.1f} of the {available:.0f} CPU seconds"
                f" available during the run ({100 * others / available:.0f}%);"
                f" the hypervisor stole {steal:.1f} s")


def children_cpu_s() -> float:
    """CPU seconds of the child processes this one has waited for (ffmpeg runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def add_source_arguments(parser: argparse.ArgumentParser, seconds: float = 30,
                         size: str = "1920x1080", repeat: int = 3) -> None:
    """--seconds, --size, --fps and --repeat of a generated source (source_clip)."""
    parser.add_argument("--seconds", type=float, default=seconds,
                        help=f"source length (default {seconds:g})")
    parser.add_argument("--size", default=size, help=f"source size (default {size})")
    parser.add_argument("--fps", type=int, default=30, help="source frame rate (default 30)")
    parser.add_argument("--repeat", type=int, default=repeat,
                        help=f"rounds (default {repeat}); each runs every form, in"
                             " alternating order")


def process_tree_cpu_s(pid: int) -> float:
    """CPU seconds of a live process, its live descendants (a server's workers) and
    the children they have waited for."""
    try:
        fields = _stat_fields(pid)
        children = [int(c) for task in Path(f"/proc/{pid}/task").iterdir()
                    for c in (task / "children").read_text().split()]
    except (FileNotFoundError, ProcessLookupError):
        return 0.0  # gone since it was listed
    # utime, stime, cutime, cstime are fields 14-17 of stat(5); [0] here is field 3.
    own = sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return own + sum(process_tree_cpu_s(child) for child in children)


def _stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat from its field 3 on (the name before it may hold spaces)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def own_cpu_s(pid: int) -> float:
    """CPU seconds of one live process alone (every thread), not its children."""
    return sum(int(v) for v in _stat_fields(pid)[11:13]) / os.sysconf("SC_CLK_TCK")


def _machine_busy_s() -> float:
    user, nice, system, _idle, _iowait, irq, softirq, _steal = _cpu_line()
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def _machine_steal_s() -> float:
    return _cpu_line()[7] / os.sysconf("SC_CLK_TCK")


def _cpu_line() -> list[int]:
    # The "cpu" line of /proc/stat: user nice system idle iowait irq softirq steal ...
    return [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]


def _own_cpu_s() -> float:
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def source_clip(seconds: float, size: str, fps: int) -> Path:
    """A testsrc2 + sine master, made once and cached under bench/out/."""
    path = OUT / f"source-{size}-{fps}fps-{seconds:g}s.mp4"
    if path.exists():
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.stem + ".partial.mp4")
    print(f"making the source clip {path.name} ...", flush=True)
    proc.run([
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}:duration={seconds:g}",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds:g}",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        "-b:v", SOURCE_VIDEO_BITRATE, "-c:a", "aac", "-ac", "2",
        "-movflags", "+faststart", str(partial),
    ], timeout=60 + 20 * seconds)
    partial.rename(path)
    return path


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        # First column left-aligned (labels), the numbers right-aligned.
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(row, widths, strict=True))))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


class KeepAliveConnection:
    """One box's keep-alive HTTP/1.1 connection: GET with a Content-Length answer,
    which is all nginx and the origin send here. httpx would cost more CPU per
    request than the servers do, and on two shared cores the clients would be all
    a benchmark measures. ``host_header``: what the Host header says (default: host)."""

    def __init__(self, host: str, port: int, host_header: str | None = None,
                 user_agent: str = "stb-bench") -> None:
        self.host, self.port = host, port
        self.host_header, self.user_agent = host_header or host, user_agent
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        fresh = self.writer is None
        try:
            return await self._get(path, headers or {})
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            await self.close()
            # A kept-alive connection the server closed while idle: one retry on a
            # new one, as any HTTP client does for a GET.
            if fresh or (isinstance(exc, asyncio.IncompleteReadError) and exc.partial):
                raise
            return await self._get(path, headers or {})

    async def _get(self, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host_header}\r\n"
                          f"User-Agent: {self.user_agent}\r\n{extra}\r\n".encode())
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        status_line, *lines = head.split("\r\n")
        fields = dict(line.lower().split(": ", 1) for line in lines if ": " in line)
        if "content-length" not in fields:
            raise ValueError(f"no Content-Length for {path}")
        body = await self.reader.readexactly(int(fields["content-length"]))
        if fields.get("connection") == "close":
            await self.close()
        return int(status_line.split(" ", 2)[1]), body

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


def object_kind(path: str) -> str:
    """What a box's request asks for, as the benchmarks' tables name it."""
    if path.startswith("/keys/"):
        return "keys"
    if path.endswith("/master.m3u8"):
        return "master playlists"
    if path.endswith(".m3u8"):
        return "media playlists"
    if path.endswith(".mp4"):
        return "init sections"
    return "segments"
