"""What the live tests share: a short lease and live window (a takeover within
seconds, windows that slide fast), and the child processes a test starts (runners,
workers), killed with their trees after it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from stb_origin.settings import Settings
from tests.support.workers import kill_tree


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.with_(runner_lease_s=4.0, live_window_s=6.0)


@pytest.fixture
def runners() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        kill_tree(process)
