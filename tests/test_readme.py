"""The README's shell examples run as printed in a new terminal in the checkout."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
ACTIVATE = "source .venv/bin/activate"


def test_every_block_that_runs_stb_origin_first_puts_it_on_path() -> None:
    # stb-origin lives in .venv/bin: a block pasted into a new terminal needs the
    # activation before its first stb-origin command (tests/e2e/test_dev_e2e.py runs one).
    blocks = re.findall(r"```sh\n(.*?)```", README.read_text(), flags=re.S)
    runs = [b for b in blocks if re.search(r"(^|\$\(|&& )stb-origin ", b, flags=re.M)]
    assert runs, "the README shows no stb-origin command"
    for block in runs:
        first = re.search(r"(^|\$\(|&& )stb-origin ", block, flags=re.M)
        assert first is not None
        assert ACTIVATE in block[:first.start()], block
