"""Which processes are alive, by pid and start time (so a reused pid is not taken
for the process we saw), read from /proc."""

from __future__ import annotations

import time
from pathlib import Path

# (pid, start time in clock ticks since boot)
Identity = tuple[int, int]


def _stat(pid: int) -> list[str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces; the state follows it.
    return stat.rsplit(")", 1)[1].split()


def identity(pid: int) -> Identity | None:
    fields = _stat(pid)
    return None if fields is None else (pid, int(fields[19]))


def alive(process: Identity) -> bool:
    fields = _stat(process[0])
    # A zombie has ended; only its parent has not collected it yet.
    return fields is not None and fields[0] != "Z" and int(fields[19]) == process[1]


def descendants(pid: int) -> list[Identity]:
    """Every living process below pid (children, their children...)."""
    found: list[Identity] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                ident = identity(child)
                if ident is not None and ident not in found:
                    found.append(ident)
                    todo.append(child)
    return found


def command_line(process: Identity) -> str:
    try:
        return Path(f"/proc/{process[0]}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "?"


def survivors(processes: list[Identity], patience_s: float = 60.0) -> list[str]:
    """Those still alive once they have had patience_s to end; their command lines."""
    deadline = time.monotonic() + patience_s
    while any(alive(p) for p in processes) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [f"{p[0]}: {command_line(p)}" for p in processes if alive(p)]
