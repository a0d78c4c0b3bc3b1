"""The README's shell examples run as printed in a new terminal in the checkout, and its
settings table lists exactly the settings there are."""

from __future__ import annotations

import re
from pathlib import Path

from stb_origin.settings import Settings

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


def test_the_settings_table_lists_every_setting_and_nothing_else() -> None:
    # Each STB_* variable Settings reads has a row under "## Settings" (a row may name
    # two, as `STB_A` / `STB_B`), and no row names a variable nobody reads.
    text = README.read_text()
    section = text[text.index("\n## Settings\n"):]
    section = section[:section.index("\n## ", 1)]
    rows = [line for line in section.splitlines() if line.startswith("| `STB_")]
    documented = {name for row in rows
                  for name in re.findall(r"`(STB_[A-Z0-9_]+)`", row.split(" | ")[0])}
    settings = {"STB_" + name.upper() for name in Settings.__dataclass_fields__}
    missing, unknown = sorted(settings - documented), sorted(documented - settings)
    assert not missing, f"not in the README's settings table: {missing}"
    assert not unknown, f"in the README's settings table but no setting: {unknown}"
