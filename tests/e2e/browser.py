"""Debian's Chromium driven by Playwright, for the end-to-end tests."""

from __future__ import annotations

import shutil
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"


def playwright() -> Any:
    """sync_playwright(), once Chromium and Playwright are known to be there."""
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is required: apt-get install -y chromium", pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is required: .venv/bin/pip install -e '.[test]'",
                    pytrace=False)
    return sync_playwright()
