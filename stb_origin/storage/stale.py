"""Leftovers of writers that died: files nobody has written to for longer than
any live writer goes without progress. A live writer keeps its file's mtime
fresh, so the age of the last write tells a dead writer's file from a live one's,
whichever process (or machine sharing the folder) the writer runs in."""

from __future__ import annotations

import stat
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Swept:
    count: int = 0
    bytes: int = 0

    def __add__(self, other: Swept) -> Swept:
        return Swept(self.count + other.count, self.bytes + other.bytes)


def remove_stale(paths: Iterable[Path], older_than: float) -> Swept:
    """Delete the regular files among ``paths`` last modified before ``older_than``
    (a ``time.time()`` value)."""
    swept = Swept()
    for path in paths:
        # Gone between listing and here: its writer finished, or another sweeper won.
        with suppress(FileNotFoundError):
            info = path.lstat()
            if stat.S_ISREG(info.st_mode) and info.st_mtime < older_than:
                path.unlink()
                swept += Swept(1, info.st_size)
    return swept
