"""What the deployment tests share: paths, and the check that a command is a real
``stb-origin`` subcommand with flags the CLI accepts."""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from stb_origin.cli import build_parser
from stb_origin.settings import Settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "compose.yaml"
DOCKERFILE = REPO / "deploy" / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
K8S = REPO / "deploy" / "k8s"
CDN_TEMPLATE = REPO / "deploy" / "cdn" / "nginx.conf"

# Environment names that hold secrets: they must never carry a value in these files.
SECRET_NAME = re.compile(r"PASSWORD|SECRET|ENCRYPTION_KEY|TOKEN")
SETTINGS_NAMES = {"STB_" + name.upper() for name in Settings.__dataclass_fields__}


def check_stb_origin_command(argv: Sequence[str], where: str) -> None:
    """Fail unless argv is `stb-origin SUBCOMMAND ...` that the real CLI parser accepts."""
    assert list(argv[:1]) == ["stb-origin"], f"{where}: {list(argv)} does not run stb-origin"
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            build_parser().parse_args(list(argv[1:]))
    except SystemExit:
        pytest.fail(f"{where}: `{' '.join(argv)}` is not a valid stb-origin command:\n"
                    f"{errors.getvalue()}", pytrace=False)


def cdn_template_variables() -> set[str]:
    return set(re.findall(r"\$\{(STB_CDN_[A-Z0-9_]+)\}", CDN_TEMPLATE.read_text()))


def seconds(duration: str | int) -> float:
    """A compose duration ("1m30s", "40s", "30m") or a number of seconds."""
    if isinstance(duration, int):
        return float(duration)
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"bad duration {duration!r}"
    return sum(float(n) * units[u] for n, u in parts)
