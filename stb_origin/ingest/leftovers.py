"""Partial uploads: kept fresh while a request owns them, swept when a dead
process left them behind (storage.stale)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path

from stb_origin.ingest.upload import PART_GLOB
from stb_origin.settings import Settings
from stb_origin.storage.stale import Swept, remove_stale

# Far below STB_TEMP_STALE_AFTER_S, so that a sweep never takes a file in use.
TOUCH_EVERY_S = 60.0


def upload_dir(settings: Settings) -> Path:
    return settings.work_dir / "uploads"


def sweep_partial_uploads(folder: Path, older_than: datetime) -> Swept:
    return remove_stale(folder.glob(PART_GLOB), older_than.timestamp())


@contextmanager
def kept_fresh(path: Path, every_s: float = TOUCH_EVERY_S) -> Iterator[None]:
    """Touch ``path`` every ``every_s`` while the block runs. Storing a big upload
    (a copy, or an S3 upload over a slow link) can take longer than the sweep's
    age, and reading the file leaves its mtime alone."""
    done = threading.Event()

    def touch() -> None:
        while not done.wait(every_s):
            with suppress(FileNotFoundError):
                os.utime(path)

    toucher = threading.Thread(target=touch, name="upload-keep-fresh", daemon=True)
    toucher.start()
    try:
        yield
    finally:
        done.set()
        toucher.join()
