from __future__ import annotations

import collections
from pathlib import Path

import pytest

from tests.packager import support


@pytest.fixture(scope="session")
def fmp4_work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return support.build_work_dir(tmp_path_factory.mktemp("fmp4") / "work", "fmp4")


@pytest.fixture(scope="session")
def ts_work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return support.build_work_dir(tmp_path_factory.mktemp("ts") / "work", "ts")


@pytest.fixture(scope="session", params=["fmp4", "ts"])
def work_dir(request: pytest.FixtureRequest) -> Path:
    return Path(request.getfixturevalue(f"{request.param}_work"))


@pytest.fixture(scope="session")
def clear_frames(work_dir: Path) -> dict[str, collections.Counter[int]]:
    """Frames per stream of each clear track, decoded straight from the work dir."""
    return {d.name: support.decode(str(d / "index.m3u8"))
            for d in sorted(work_dir.iterdir()) if (d / "index.m3u8").is_file()}
