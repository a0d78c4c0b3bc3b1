"""compose.yaml: valid for docker-compose, runs real stb-origin commands, keeps no secret,
starts in order, scales its workers, and feeds the CDN template every variable it uses."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from stb_origin.live.channel_run import STOP_GRACE_S
from stb_origin.live.runner import HEARTBEAT_FILE as RUNNER_HEARTBEAT_FILE
from stb_origin.live.runner import JOIN_TIMEOUT_S
from stb_origin.settings import Settings
from stb_origin.workers.worker import HEARTBEAT_FILE
from tests.deploy.support import (
    COMPOSE,
    REPO,
    SECRET_NAME,
    SETTINGS_NAMES,
    cdn_template_variables,
    check_stb_origin_command,
    seconds,
)

# Interpolations allowed for a secret: required (${X:?why}) or optional and empty (${X:-}).
SECRET_REFERENCE = re.compile(r"^\$\{[A-Z0-9_]+(:\?[^}]*|:-)\}$")
REQUIRED = re.compile(r"\$\{([A-Z0-9_]+):\?")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def _services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _app_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run the image built from deploy/Dockerfile."""
    return {name: s for name, s in _services(compose).items()
            if s.get("build", {}).get("dockerfile") == "deploy/Dockerfile"}


def _docker_compose(tmp_path: Path, env: dict[str, str],
                    *args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose is required for this test: apt-get install -y docker-compose",
                    pytrace=False)
    # A clean environment, and an empty env file instead of a developer's .env: nothing
    # but `env` fills a required variable.
    clean = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), **env}
    empty = tmp_path / "empty.env"
    empty.write_text("")
    return subprocess.run([binary, "-f", str(COMPOSE), "--env-file", str(empty), *args],
                          env=clean, cwd=REPO, capture_output=True, text=True, timeout=60,
                          check=False)


def _required_variables() -> set[str]:
    return set(REQUIRED.findall(COMPOSE.read_text()))


def _dummies(tmp_path: Path) -> dict[str, str]:
    return {name: "dummy" for name in _required_variables()}


def test_docker_compose_accepts_the_file_with_the_required_variables_set(tmp_path: Path) -> None:
    done = _docker_compose(tmp_path, _dummies(tmp_path), "config", "--quiet")
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("secret", ["POSTGRES_PASSWORD", "STB_S3_SECRET_KEY",
                                    "STB_KEY_ENCRYPTION_KEY", "MINIO_ROOT_PASSWORD",
                                    "STB_JWT_KEY_ENCRYPTION_KEY"])
def test_docker_compose_refuses_to_start_without_each_secret(tmp_path: Path, secret: str) -> None:
    env = _dummies(tmp_path)
    del env[secret]
    done = _docker_compose(tmp_path, env, "config", "--quiet")
    assert done.returncode != 0
    assert "missing mandatory value" in done.stderr.lower() and secret in done.stderr, done.stderr


def test_every_app_service_runs_a_real_stb_origin_subcommand(compose: dict[str, Any]) -> None:
    apps = _app_services(compose)
    assert {"origin", "worker", "channel-runner"} <= set(apps)
    for name, service in apps.items():
        assert isinstance(service.get("command"), list), f"{name}: command must be a list"
        check_stb_origin_command(service["command"], f"compose service {name}")
    assert apps["origin"]["command"][1:4] == ["serve", "--host", "0.0.0.0"]
    assert apps["worker"]["command"][1] == "worker"
    assert apps["channel-runner"]["command"][1:] == ["channel-runner"]


def test_the_command_check_catches_a_mistyped_flag() -> None:
    with pytest.raises(pytest.fail.Exception, match="--hots"):
        check_stb_origin_command(["stb-origin", "serve", "--hots", "0.0.0.0"], "a typo")
    with pytest.raises(pytest.fail.Exception):
        check_stb_origin_command(["stb-origin", "workers"], "a typo")


def test_no_secret_value_is_written_in_the_file(compose: dict[str, Any]) -> None:
    checked = 0
    for name, service in _services(compose).items():
        environment = service.get("environment", {})
        assert isinstance(environment, dict), f"{name}: use the mapping form of environment"
        for variable, value in environment.items():
            if SECRET_NAME.search(variable) and not variable.endswith("_FILE"):
                checked += 1
                assert SECRET_REFERENCE.match(str(value)), (
                    f"{name}: {variable} must come from the environment, not {value!r}")
    assert checked >= 7


def test_app_settings_are_real_stb_settings(compose: dict[str, Any]) -> None:
    for name, service in _app_services(compose).items():
        for variable in service["environment"]:
            assert variable in SETTINGS_NAMES | {"PGPASSWORD"}, (
                f"{name}: {variable} is not a stb-origin setting")


def test_services_start_in_order_on_health(compose: dict[str, Any]) -> None:
    services = _services(compose)
    for name, service in services.items():
        for dependency, rule in service.get("depends_on", {}).items():
            condition = rule.get("condition")
            assert condition in ("service_healthy", "service_completed_successfully"), (
                f"{name} → {dependency}: wait for health or completion, not {condition}")
            target = services[dependency]
            if condition == "service_healthy":
                assert "healthcheck" in target, f"{name} waits for {dependency}'s health check"
            else:
                assert target.get("restart") == "no", f"{dependency} is a one-shot"
    for name in ("redis", "postgres", "minio", "origin", "worker", "channel-runner", "cdn"):
        assert "healthcheck" in services[name], f"{name} has no health check"
    for name in ("origin", "worker", "channel-runner"):
        assert set(services[name]["depends_on"]) == {"redis", "postgres", "minio-init"}, name
    assert set(services["cdn"]["depends_on"]) == {"origin"}


@pytest.mark.parametrize(("name", "heartbeat_file"), [
    ("worker", HEARTBEAT_FILE), ("channel-runner", RUNNER_HEARTBEAT_FILE)])
def test_workers_and_runners_scale_with_the_scale_flag(
        compose: dict[str, Any], name: str, heartbeat_file: str) -> None:
    service = _services(compose)[name]
    assert "container_name" not in service
    assert "ports" not in service
    # A named volume would be shared by every replica (and their heartbeat files).
    assert "volumes" not in service
    # Its health is the heartbeat file the process touches (run below and in test_k8s.py).
    assert heartbeat_file in " ".join(service["healthcheck"]["test"])


def test_runners_expose_the_listener_ports_on_the_compose_network(
        compose: dict[str, Any]) -> None:
    # Exposed, not published: the runners still scale, and only the holder listens.
    assert _services(compose)["channel-runner"]["expose"] == ["1935", "9000/udp"]


@pytest.mark.parametrize(("name", "heartbeat_file", "stale_after_s"), [
    ("worker", HEARTBEAT_FILE, 3600), ("channel-runner", RUNNER_HEARTBEAT_FILE, 60)])
def test_heartbeat_health_checks_read_the_file_the_process_writes(
        compose: dict[str, Any], tmp_path: Path, name: str, heartbeat_file: str,
        stale_after_s: int) -> None:
    test = _services(compose)[name]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "python"], test
    # The image's `python` is the venv's, and its STB_DATA_DIR comes from the Dockerfile.
    argv = [sys.executable, *test[2:]]

    def healthy() -> bool:
        return subprocess.run(argv, env={**os.environ, "STB_DATA_DIR": str(tmp_path)},
                              capture_output=True, timeout=30, check=False).returncode == 0

    heartbeat = tmp_path / heartbeat_file
    assert not healthy(), "no heartbeat yet must fail"
    heartbeat.touch()
    assert healthy(), "a fresh heartbeat must pass"
    stale = time.time() - stale_after_s
    os.utime(heartbeat, (stale, stale))
    assert not healthy(), f"a {stale_after_s} s old heartbeat must fail"


def test_only_the_origin_holds_the_token_signing_key(compose: dict[str, Any]) -> None:
    # Workers and channel runners store content keys, wrapped under the KEK, but
    # never sign tokens: without this key they cannot unwrap the signing keys.
    apps = _app_services(compose)
    holders = {name for name, s in apps.items() if "STB_JWT_KEY_ENCRYPTION_KEY" in s["environment"]}
    assert holders == {"origin"}
    for name in ("origin", "worker", "channel-runner"):
        assert "STB_KEY_ENCRYPTION_KEY" in apps[name]["environment"], name


def test_stateful_services_keep_their_data_in_named_volumes(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    for name, path in [("redis", "/data"), ("postgres", "/var/lib/postgresql/data"),
                       ("minio", "/data"), ("cdn", "/var/cache/nginx")]:
        mounts = [m.split(":") for m in _services(compose)[name]["volumes"]]
        assert any(source in declared and target == path for source, target, *_ in mounts), (
            f"{name} keeps {path} in no named volume")


def test_stop_grace_periods_cover_the_drains(compose: dict[str, Any]) -> None:
    services = _services(compose)
    # uvicorn waits up to 30 s for requests in flight (stb_origin/cli.py).
    assert seconds(services["origin"]["stop_grace_period"]) > 30
    # The worker requeues its job itself before Docker's SIGKILL.
    assert seconds(services["worker"]["stop_grace_period"]) >= Settings().worker_grace_s + 30
    # A runner hands its channels over: the runs end within JOIN_TIMEOUT_S (each
    # ffmpeg given STOP_GRACE_S to close its segment), then the leases are released.
    assert (seconds(services["channel-runner"]["stop_grace_period"])
            >= JOIN_TIMEOUT_S + STOP_GRACE_S + 30)


def test_the_cdn_renders_the_template_with_every_variable_it_uses(
        compose: dict[str, Any]) -> None:
    cdn = _services(compose)["cdn"]
    assert cdn["image"].startswith("nginx:")
    mounts = [m.split(":") for m in cdn["volumes"]]
    assert ["./deploy/cdn/nginx.conf", "/etc/nginx/templates/default.conf.template", "ro"] in mounts
    variables = cdn_template_variables()
    assert variables, "no ${STB_CDN_...} placeholders found in deploy/cdn/nginx.conf"
    assert variables <= set(cdn["environment"]), variables - set(cdn["environment"])
    upstream = cdn["environment"]["STB_CDN_UPSTREAM"]
    host, port = upstream.split(":")
    assert host in _app_services(compose)
    assert f"--port {port}" in " ".join(_services(compose)[host]["command"])


def test_redis_keeps_an_append_only_file(compose: dict[str, Any]) -> None:
    # Queued jobs survive a Redis restart; the reconciler rebuilds them if not.
    assert "--appendonly yes" in " ".join(_services(compose)["redis"]["command"])
