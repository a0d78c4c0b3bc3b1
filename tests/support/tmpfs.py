"""A real, small filesystem that fills up: tmpfs mounted for one test (needs root,
as CI has; without it the test fails saying so, never skips)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def mounted_tmpfs(path: Path, size: str = "8m") -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.fail("this test mounts a small tmpfs to fill it up, which needs root:"
                    " run it as root (CI does)", pytrace=False)
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs",
                    str(path)], check=True, capture_output=True, timeout=30)
    try:
        yield path
    finally:
        # Lazy: a process the test started may still hold a file open in it.
        subprocess.run(["umount", "--lazy", str(path)], check=True, capture_output=True,
                       timeout=30)
