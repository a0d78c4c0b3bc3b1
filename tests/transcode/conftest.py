from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stb_origin import proc
from tests.support.media import make_clip
from tests.transcode.support import Clip


@pytest.fixture(scope="session")
def ffmpeg() -> None:
    # Fail, never skip: a machine without ffmpeg must not look green.
    try:
        proc.require("ffmpeg")
        proc.require("ffprobe")
    except proc.ToolMissing as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def clip(ffmpeg: None, tmp_path_factory: pytest.TempPathFactory) -> Clip:
    """make_clip, made once per session for each distinct file name."""
    directory = tmp_path_factory.mktemp("clips")
    made: dict[str, Path] = {}

    def get(name: str, **kwargs: Any) -> Path:
        if name not in made:
            made[name] = make_clip(directory / name, **kwargs)
        return made[name]

    return get
