from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tests.support.workers import kill_tree


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[bytes]]]:
    """The worker processes a test starts, killed (with what they started) after it."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            kill_tree(process)
