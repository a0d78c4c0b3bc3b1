"""deploy/Dockerfile, read without a Docker engine: multi-stage, non-root, Debian's ffmpeg,
a real stb-origin command, and a build context of only what the build copies."""

from __future__ import annotations

import json
import shlex
from typing import Any

import pytest
from dockerfile_parse import DockerfileParser

from tests.deploy.support import DOCKERFILE, DOCKERIGNORE, check_stb_origin_command


def _stages() -> list[list[dict[str, Any]]]:
    """The instructions of each stage, FROM first."""
    stages: list[list[dict[str, Any]]] = []
    for instruction in DockerfileParser(path=str(DOCKERFILE)).structure:
        if instruction["instruction"] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def _values(stage: list[dict[str, Any]], name: str) -> list[str]:
    return [i["value"] for i in stage if i["instruction"] == name]


def _exec_form(value: str, name: str) -> list[str]:
    try:
        argv = json.loads(value)
    except json.JSONDecodeError:
        pytest.fail(f"{name} must use the exec (JSON) form so signals reach the process, "
                    f"not {value!r}", pytrace=False)
    assert isinstance(argv, list) and all(isinstance(a, str) for a in argv)
    return argv


@pytest.fixture(scope="module")
def runtime() -> list[dict[str, Any]]:
    return _stages()[-1]


def test_build_and_runtime_are_separate_stages(runtime: list[dict[str, Any]]) -> None:
    stages = _stages()
    assert len(stages) >= 2
    build_name = stages[0][0]["value"].split()[-1]
    copies = _values(runtime, "COPY")
    assert any(c.startswith(f"--from={build_name} ") for c in copies), copies
    # The runtime gets the built venv, never the source tree or a compiler.
    assert not any(c.split()[0] in ("stb_origin", ".") for c in copies)
    assert not any("gcc" in run or "build-essential" in run for run in _values(runtime, "RUN"))


def test_runs_as_a_non_root_user(runtime: list[dict[str, Any]]) -> None:
    users = _values(runtime, "USER")
    assert users, "the runtime stage sets no USER: it would run as root"
    user = users[-1].split(":")[0]
    # Numeric, so Kubernetes' runAsNonRoot can check it without reading /etc/passwd.
    assert user.isdigit() and int(user) != 0, users[-1]


def test_ffmpeg_comes_from_debian_in_the_runtime_stage(runtime: list[dict[str, Any]]) -> None:
    installs = [run for run in _values(runtime, "RUN") if "apt-get install" in run]
    assert len(installs) == 1, installs
    words = shlex.split(installs[0].replace("\\\n", " "))
    assert "ffmpeg" in words
    assert "--no-install-recommends" in words
    assert "apt-get" in words and "update" in words
    # Package lists removed in the same layer, or they stay in the image.
    assert "rm -rf /var/lib/apt/lists/*" in installs[0]
    base = _stages()[-1][0]["value"]
    parser = DockerfileParser(path=str(DOCKERFILE))
    assert "slim" in parser.parent_images[-1], (base, parser.parent_images)


def test_the_default_command_is_a_real_stb_origin_subcommand(
        runtime: list[dict[str, Any]]) -> None:
    entrypoint = _exec_form(_values(runtime, "ENTRYPOINT")[-1], "ENTRYPOINT")
    # tini is PID 1 and passes signals on; the command after "--" is what runs.
    assert entrypoint == ["tini", "--"]
    command = _exec_form(_values(runtime, "CMD")[-1], "CMD")
    check_stb_origin_command(command, "deploy/Dockerfile CMD")
    assert "0.0.0.0" in command, "inside a container the server must listen beyond loopback"


def test_the_build_context_holds_only_what_the_build_copies() -> None:
    patterns = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert patterns[0] == "*", "start from nothing, so .venv, data/ and .git stay out"
    included = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    copied = set()
    for stage in _stages():
        for value in _values(stage, "COPY"):
            if not value.startswith("--from="):
                *sources, _target = value.split()
                copied.update(s.rstrip("/") for s in sources)
    assert copied == included, f"copied {sorted(copied)}, context lets in {sorted(included)}"
