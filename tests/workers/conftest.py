from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_tools
from tests.support.media import make_clip
from tests.support.workers import kill_tree


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[bytes]]]:
    """The worker processes a test starts, killed (with what they started) after it."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            kill_tree(process)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short master, made once for the module."""
    require_tools("ffmpeg", "ffprobe")
    return make_clip(tmp_path_factory.mktemp("media") / "clip.mp4", seconds=2, size="426x240")
