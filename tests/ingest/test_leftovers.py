"""Partial uploads: a request keeps its file fresh while storage copies it; the
sweep takes only files nobody has written to for long enough."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from stb_origin.ingest.leftovers import kept_fresh, sweep_partial_uploads
from stb_origin.storage import Swept


def _file(path: Path, size: int, age_s: float) -> Path:
    path.write_bytes(b"\0" * size)
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def test_the_sweep_takes_stale_partial_uploads_only(tmp_path: Path) -> None:
    _file(tmp_path / "upload-dead.part", 5000, 7200)
    _file(tmp_path / "upload-live.part", 10, 5)
    _file(tmp_path / "notes.txt", 10, 7200)  # not an upload's

    swept = sweep_partial_uploads(tmp_path, datetime.now(UTC) - timedelta(hours=1))

    assert swept == Swept(1, 5000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "upload-live.part"]


def test_a_missing_upload_folder_is_nothing_to_sweep(tmp_path: Path) -> None:
    assert sweep_partial_uploads(tmp_path / "none", datetime.now(UTC)) == Swept()


def test_a_file_being_stored_is_kept_fresh(tmp_path: Path) -> None:
    part = _file(tmp_path / "upload-storing.part", 10, 7200)
    with kept_fresh(part, every_s=0.01):
        deadline = time.monotonic() + 5
        while part.stat().st_mtime < time.time() - 60:
            assert time.monotonic() < deadline, "the file was never touched"
            time.sleep(0.01)
    assert sweep_partial_uploads(tmp_path, datetime.now(UTC) - timedelta(hours=1)) == Swept()
