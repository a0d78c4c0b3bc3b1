"""The one place that starts processes.

``run`` executes a command to completion with a time-out, feeding each stdout
line to an optional callback, and raises ``ProcessFailed`` with the return
code and the tail of stderr. ``spawn`` starts a long-lived child (a server)
whose lifetime the caller owns, and ``stop`` ends it.
"""

from __future__ import annotations

import collections
import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

STDERR_TAIL_LINES = 40
# ffmpeg heeds a first SIGTERM only between packets; a second one also interrupts a
# read that waits (on a silent source), and it still closes its outputs.
SECOND_SIGTERM_S = 0.5


class ProcessFailed(Exception):
    def __init__(self, argv: Sequence[str], returncode: int | None, stderr_tail: str,
                 timed_out: bool = False) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        self.timed_out = timed_out
        what = "timed out" if timed_out else f"exited with {returncode}"
        super().__init__(f"{Path(argv[0]).name} {what}: {stderr_tail[-500:]}")


class ToolMissing(Exception):
    def __init__(self, tool: str, package: str) -> None:
        super().__init__(f"{tool} not found; install it with: apt-get install -y {package}")
        self.tool = tool


@dataclass(frozen=True)
class Completed:
    stdout: str
    stderr_tail: str


def run(
    argv: Sequence[str],
    timeout: float,
    on_line: Callable[[str], None] | None = None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    stderr_lines: int = STDERR_TAIL_LINES,
) -> Completed:
    """Run argv to completion; stdout lines go to on_line when given; the last
    stderr_lines lines of stderr are kept."""
    try:
        proc = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, cwd=cwd, env=dict(env) if env is not None else None,
            text=True, errors="replace",
            # An ffmpeg must not outlive the run that started it (a killed worker
            # would leave it encoding beside the retry); its output is worthless
            # then, so SIGKILL, which also ends a stopped process.
            preexec_fn=_death_signal(os.getpid(), signal.SIGKILL),
        )
    except FileNotFoundError:
        raise ToolMissing(argv[0], _PACKAGES.get(Path(argv[0]).name, argv[0])) from None

    tail: collections.deque[str] = collections.deque(maxlen=stderr_lines)
    # Drain stderr on a thread so a chatty process never blocks on a full pipe.
    drain = threading.Thread(target=lambda: tail.extend(proc.stderr or ()), daemon=True)
    drain.start()
    out: list[str] = []
    killed = threading.Event()

    def kill() -> None:
        killed.set()
        proc.kill()

    timer = threading.Timer(timeout, kill)
    timer.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if on_line is not None:
                on_line(line.rstrip("\n"))
            else:
                out.append(line)
        proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        drain.join(timeout=5)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    stderr_tail = "".join(tail)
    if proc.returncode != 0:
        raise ProcessFailed(argv, proc.returncode, stderr_tail, timed_out=killed.is_set())
    return Completed(stdout="".join(out), stderr_tail=stderr_tail)


def spawn(argv: Sequence[str], env: Mapping[str, str] | None = None,
          log_path: Path | None = None, own_session: bool = False,
          die_with_parent: bool = False, pipes: bool = False) -> subprocess.Popen[bytes]:
    """Start a long-lived child; its output goes to log_path (or is inherited), or with
    ``pipes`` to its stdout and stderr pipes, which the caller must keep reading.

    own_session keeps a terminal's Ctrl-C away from the child, so the caller can
    stop it last (a Redis must outlive the workers that drain into it).
    die_with_parent has the kernel send the child SIGTERM when the thread that
    spawned it ends, even by SIGKILL (Linux only), so that no child outlives the
    process that owns it; spawn from the thread that lives as long as the process.
    """
    log = open(log_path, "ab") if log_path is not None else None  # noqa: SIM115
    output = subprocess.PIPE if pipes else log
    try:
        return subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=output, stderr=output,
            env=dict(env) if env is not None else None, start_new_session=own_session,
            preexec_fn=_death_signal(os.getpid()) if die_with_parent else None,
        )
    except FileNotFoundError:
        raise ToolMissing(argv[0], _PACKAGES.get(Path(argv[0]).name, argv[0])) from None
    finally:
        if log is not None:
            log.close()


def stop(popen: subprocess.Popen[bytes], grace_s: float) -> None:
    """End a spawned child as ffmpeg likes to be ended: SIGTERM, another if it is still
    there after a moment, SIGKILL if it is still there after ``grace_s``."""
    for wait_s in (SECOND_SIGTERM_S, grace_s):
        if popen.poll() is not None:
            return
        popen.terminate()
        try:
            popen.wait(wait_s)
            return
        except subprocess.TimeoutExpired:
            continue
    popen.kill()
    popen.wait()


_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _death_signal(parent: int, signum: int = signal.SIGTERM) -> Callable[[], None]:
    """What a forked child runs (before exec): ask for ``signum`` on the parent's death."""
    if not sys.platform.startswith("linux"):
        raise OSError("die_with_parent needs Linux (prctl PR_SET_PDEATHSIG)")
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def arm() -> None:
        if prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
            os._exit(126)
        # The parent may have died between fork and prctl: then no signal comes.
        if os.getppid() != parent:
            os._exit(1)

    return arm


def die_with(parent: int) -> None:
    """For a process forked without exec (an RQ work horse): be killed when
    ``parent`` (the process that forked it) ends, however it ends."""
    _death_signal(parent, signal.SIGKILL)()


def require(tool: str) -> str:
    """Absolute path of a system tool, or ToolMissing saying what to install."""
    from shutil import which

    path = which(tool)
    if path is None:
        raise ToolMissing(tool, _PACKAGES.get(tool, tool))
    return path


# Which Debian package provides each system tool we run.
_PACKAGES = {
    "ffmpeg": "ffmpeg",
    "ffprobe": "ffmpeg",
    "redis-server": "redis-server",
    "nginx": "nginx",
}

__all__ = ["Completed", "ProcessFailed", "ToolMissing", "require", "run", "spawn", "stop"]
