"""The settings a running ``stb-origin dev`` chose for its children, kept in its data dir.

``dev`` picks a Redis (its own, on a free port) and a base URL (its port), which
is also the token issuer. Another ``stb-origin`` command run in the same checkout
reads them from ``data/dev.env`` so that it talks to that system: its tokens carry
the issuer the dev server expects, its worker joins the dev queue. Variables set
in the environment win over the file.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path

from stb_origin.settings import Settings

FILE_NAME = "dev.env"
# Only what dev chooses itself; nothing secret is ever written here.
CHOSEN = ("STB_PUBLIC_BASE_URL", "STB_REDIS_URL")


def write(settings: Settings) -> None:
    env = settings.to_env()
    lines = [f"{name}={env[name]}\n" for name in CHOSEN]
    (settings.data_dir / FILE_NAME).write_text(
        "# written by a running `stb-origin dev`; removed when it stops\n" + "".join(lines))


def remove(data_dir: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (data_dir / FILE_NAME).unlink()


def with_dev_choices(environ: Mapping[str, str]) -> dict[str, str]:
    """environ, plus what a dev system on the same data dir chose where environ is silent."""
    data_dir = Path(environ.get("STB_DATA_DIR") or Settings().data_dir)
    merged = dict(environ)
    for name, value in _read(data_dir / FILE_NAME).items():
        if not merged.get(name):
            merged[name] = value
    return merged


def _read(path: Path) -> dict[str, str]:
    try:
        text = path.read_text()
    except (FileNotFoundError, NotADirectoryError):
        return {}
    chosen: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and name in CHOSEN and value:
            chosen[name] = value
    return chosen
