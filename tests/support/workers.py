"""`stb-origin worker` as real processes: start them, find their ffmpeg, read their logs."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from stb_origin.assets.records import Asset
from stb_origin.services import Services
from stb_origin.settings import Settings

CLI = [sys.executable, "-m", "stb_origin.cli"]


def kill_tree(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process and everything below it."""
    for pid in [process.pid, *_descendants(process.pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait()


def spawn(workers: list[subprocess.Popen[bytes]], settings: Settings, name: str,
          argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    logs = settings.data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / f"{name}.log", "wb") as log:
        process = subprocess.Popen(argv, env={**os.environ, **settings.to_env(), **(env or {})},
                                   stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    workers.append(process)
    return process


def logs(settings: Settings) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                     for p in sorted(settings.data_dir.glob("**/*.log")))


def parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces; the ppid follows it.
    return int(stat.rsplit(")", 1)[1].split()[1])


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _descendants(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            ancestor = int(entry.name)
            while ancestor not in (pid, 0, 1):
                ancestor = parent(ancestor) or 0
            if ancestor == pid and int(entry.name) != pid:
                found.append(int(entry.name))
    return found


def pause_transcode(worker: subprocess.Popen[bytes], settings: Settings,
                    argv_has: Sequence[str] = (), argv_lacks: Sequence[str] = ()) -> int:
    """Wait for an ffmpeg of the job (a descendant of the worker) whose arguments
    hold every one of argv_has and none of argv_lacks, and stop it; its pid."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert worker.poll() is None, "the worker exited early\n" + logs(settings)
        for pid in _descendants(worker.pid):
            try:
                if Path(f"/proc/{pid}/comm").read_text().strip() != "ffmpeg":
                    continue
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if (all(a.encode() in argv for a in argv_has)
                    and not any(a.encode() in argv for a in argv_lacks)):
                os.kill(pid, signal.SIGSTOP)
                return pid
        time.sleep(0.05)
    raise AssertionError("the job's ffmpeg never started\n" + logs(settings))


def horse_of(worker: subprocess.Popen[bytes], ffmpeg: int) -> int:
    """The work horse: the worker's child that ffmpeg descends from."""
    pid = ffmpeg
    while (up := parent(pid)) not in (worker.pid, None, 0, 1):
        pid = up
    return pid


def asset_row(services: Services, asset_id: str) -> Asset:
    with services.db.session() as session:
        asset = session.get(Asset, asset_id)
        assert asset is not None
        return asset
