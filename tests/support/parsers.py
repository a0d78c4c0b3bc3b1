"""Two independent strict readings of every playlist a package publishes: the `m3u8`
library (PyPI) in strict mode, and hls-parser (npm, tests/player) in strict mode.

The packager writes its playlists with `m3u8`; a second parser written by other
people, from the spec, is what catches a playlist only our own library accepts.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import m3u8
import pytest

from stb_origin.storage import Storage

PLAYER = Path(__file__).resolve().parents[1] / "player"


def require_player() -> None:
    """hls-parser and hls.js are installed from npm by scripts/test (npm ci)."""
    if shutil.which("node") is None:
        pytest.fail("node is required: apt-get install -y nodejs npm", pytrace=False)
    if not (PLAYER / "node_modules" / "hls-parser").is_dir():
        pytest.fail(f"hls-parser is required: (cd {PLAYER} && npm ci)", pytrace=False)


def published_playlists(storage: Storage, asset_id: str, to: Path) -> list[Path]:
    """Every playlist of the asset's current version, copied to local files."""
    to.mkdir(parents=True, exist_ok=True)
    paths = []
    for key in storage.list_keys(f"hls/{asset_id}/"):
        if key.endswith(".m3u8"):
            path = to / key.replace("/", "__")
            path.write_bytes(storage.get_bytes(key))
            paths.append(path)
    return sorted(paths)


def assert_strictly_valid(paths: list[Path]) -> list[dict[str, object]]:
    """Both parsers accept every playlist; returns hls-parser's summary of each."""
    assert paths, "no playlists to check"
    for path in paths:
        try:
            m3u8.parse(path.read_text(), strict=True)
        except m3u8.ParseError as exc:
            raise AssertionError(f"m3u8 (strict) refuses {path.name}: {exc}") from None
    require_player()
    result = subprocess.run(["node", str(PLAYER / "parse.js"), *map(str, paths)],
                            capture_output=True, text=True, timeout=60, check=False)
    summaries = [json.loads(line) for line in result.stdout.splitlines()]
    refused = [f"{Path(str(s['path'])).name}: {s['error']}" for s in summaries if "error" in s]
    assert not refused and result.returncode == 0, (refused, result.stderr)
    assert len(summaries) == len(paths)
    return summaries
