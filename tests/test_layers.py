"""The layering of pyproject.toml's import-linter contracts holds: no domain reaches into
another's internals against the declared order, and no package imports in a cycle."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_import_contracts_hold() -> None:
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint is None:
        pytest.fail("lint-imports is required: pip install -e '.[test]' (import-linter)",
                    pytrace=False)
    result = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                            check=False,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
