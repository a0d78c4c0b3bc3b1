from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import require_tools
from tests.support.media import make_clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short master, made once for the module."""
    require_tools("ffmpeg", "ffprobe")
    return make_clip(tmp_path_factory.mktemp("media") / "clip.mp4", seconds=2, size="426x240")
