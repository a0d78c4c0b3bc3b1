"""deploy/k8s, checked offline: every object against the Kubernetes schemas that
kubernetes-validate ships, KEDA's ScaledObject against a schema of its fields here,
and the wiring between them (selectors, probes, resources, secrets, commands)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml
from kubernetes_validate import utils as kubernetes_validate
from rq import Queue

from stb_origin.live.channel_run import STOP_GRACE_S
from stb_origin.live.runner import HEARTBEAT_FILE as RUNNER_HEARTBEAT_FILE
from stb_origin.live.runner import JOIN_TIMEOUT_S
from stb_origin.settings import Settings
from stb_origin.workers.worker import HEARTBEAT_FILE
from tests.deploy.support import (
    K8S,
    SECRET_NAME,
    SETTINGS_NAMES,
    cdn_template_variables,
    check_stb_origin_command,
)

KUSTOMIZATION = K8S / "kustomization.yaml"
# The only kustomize fields the loader below understands; anything else would go unchecked.
KUSTOMIZE_FIELDS = {"apiVersion", "kind", "resources", "configMapGenerator", "images"}
APP_IMAGE = "stb-origin"

# KEDA's ScaledObject (keda.sh/v1alpha1) is a CRD, not in the Kubernetes schemas:
# the fields used here, from KEDA's documentation, with unknown fields refused.
SCALED_OBJECT = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "ScaledObject"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "required": ["scaleTargetRef", "triggers"],
            "additionalProperties": False,
            "properties": {
                "scaleTargetRef": {
                    "type": "object", "required": ["name"], "additionalProperties": False,
                    "properties": {"name": {"type": "string"}, "kind": {"type": "string"},
                                   "apiVersion": {"type": "string"}},
                },
                "pollingInterval": {"type": "integer", "minimum": 1},
                "cooldownPeriod": {"type": "integer", "minimum": 0},
                "minReplicaCount": {"type": "integer", "minimum": 0},
                "maxReplicaCount": {"type": "integer", "minimum": 1},
                "advanced": {"type": "object"},
                "triggers": {
                    "type": "array", "minItems": 1,
                    "items": {
                        "type": "object", "required": ["type", "metadata"],
                        "properties": {"type": {"type": "string"},
                                       "metadata": {"type": "object",
                                                    "additionalProperties": {"type": "string"}}},
                    },
                },
            },
        },
    },
}
REDIS_TRIGGER = {
    "type": "object",
    "required": ["listName", "listLength"],
    "additionalProperties": False,
    "properties": {name: {"type": "string"} for name in (
        "address", "addressFromEnv", "host", "port", "listName", "listLength",
        "activationListLength", "databaseIndex", "enableTLS", "unsafeSsl",
        "usernameFromEnv", "passwordFromEnv")},
    "oneOf": [{"required": ["address"]}, {"required": ["addressFromEnv"]},
              {"required": ["host", "port"]}],
}


def _read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value
    return values


class Build:
    """What `kubectl kustomize` makes of the folder, for the fields it uses."""

    def __init__(self) -> None:
        self.kustomization: dict[str, Any] = yaml.safe_load(KUSTOMIZATION.read_text())
        self.objects: list[dict[str, Any]] = []
        self.referenced: set[Path] = set()
        for name in self.kustomization.get("resources", []):
            path = (K8S / name).resolve()
            self.referenced.add(path)
            self.objects += [d for d in yaml.safe_load_all(path.read_text()) if d]
        self.config_files: dict[str, dict[str, Path]] = {}
        for generator in self.kustomization.get("configMapGenerator", []):
            data: dict[str, str] = {}
            files: dict[str, Path] = {}
            for name in generator.get("envs", []):
                path = (K8S / name).resolve()
                self.referenced.add(path)
                data.update(_read_env_file(path))
            for entry in generator.get("files", []):
                key, _, name = entry.rpartition("=")
                path = (K8S / name).resolve()
                self.referenced.add(path)
                files[key or path.name] = path
                data[key or path.name] = path.read_text()
            self.config_files[generator["name"]] = files
            self.objects.append({"apiVersion": "v1", "kind": "ConfigMap",
                                 "metadata": {"name": generator["name"]}, "data": data})

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def named(self, kind: str, name: str) -> dict[str, Any]:
        found = [o for o in self.of_kind(kind) if o["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
        return found[0]

    def config(self) -> dict[str, str]:
        return self.named("ConfigMap", "stb-origin-config")["data"]


@pytest.fixture(scope="module")
def build() -> Build:
    return Build()


def _pod(deployment: dict[str, Any]) -> dict[str, Any]:
    return deployment["spec"]["template"]["spec"]


def _containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    return _pod(deployment)["containers"]


def _app_deployments(build: Build) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in build.of_kind("Deployment")
            if any(c["image"].split(":")[0] == APP_IMAGE for c in _containers(d))}


def _selects(selector: dict[str, str], deployment: dict[str, Any]) -> bool:
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def test_kustomization_lists_every_file_in_the_folder(build: Build) -> None:
    assert set(build.kustomization) <= KUSTOMIZE_FIELDS, (
        f"fields this test does not build: {set(build.kustomization) - KUSTOMIZE_FIELDS}")
    present = {p.resolve() for p in K8S.iterdir() if p.is_file() and p != KUSTOMIZATION}
    unlisted = present - build.referenced
    assert not unlisted, f"not in kustomization.yaml: {sorted(p.name for p in unlisted)}"


def test_every_kubernetes_object_matches_its_schema(build: Build) -> None:
    version = kubernetes_validate.latest_version()
    kinds = set()
    for obj in build.objects:
        if obj["apiVersion"].startswith("keda.sh/"):
            continue
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{where}: {path}: {exc.message}", pytrace=False)
        except kubernetes_validate.SchemaNotFoundError as exc:
            pytest.fail(f"{where}: {exc.message}", pytrace=False)
        kinds.add(obj["kind"])
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget",
            "ConfigMap"} <= kinds


def test_the_schema_check_catches_a_misplaced_field(build: Build) -> None:
    deployment = yaml.safe_load(yaml.safe_dump(build.named("Deployment", "stb-origin")))
    _containers(deployment)[0]["readinesProbe"] = _containers(deployment)[0]["readinessProbe"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, kubernetes_validate.latest_version(), strict=True)


def test_every_deployment_has_probes_requests_and_a_locked_down_pod(build: Build) -> None:
    deployments = build.of_kind("Deployment")
    assert {d["metadata"]["name"] for d in deployments} == {
        "stb-origin", "stb-worker", "stb-channel-runner", "stb-cdn", "redis"}
    for deployment in deployments:
        name = deployment["metadata"]["name"]
        pod = _pod(deployment)
        assert _selects(deployment["spec"]["selector"]["matchLabels"], deployment), name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] != 0, name
        assert pod.get("automountServiceAccountToken") is False, name
        for container in pod["containers"]:
            where = f"{name}/{container['name']}"
            assert "readinessProbe" in container, f"{where}: no readiness probe"
            assert "livenessProbe" in container, f"{where}: no liveness probe"
            requests = container.get("resources", {}).get("requests", {})
            assert {"cpu", "memory"} <= set(requests), f"{where}: no cpu and memory requests"
            assert "memory" in container["resources"].get("limits", {}), f"{where}: no memory limit"
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["capabilities"]["drop"] == ["ALL"], where


def test_app_pods_write_only_to_mounted_volumes(build: Build) -> None:
    data_dir = build.config()["STB_DATA_DIR"]
    for name, deployment in _app_deployments(build).items():
        volumes = {v["name"]: v for v in _pod(deployment)["volumes"]}
        for container in _containers(deployment):
            mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
            for path in (data_dir, "/tmp"):
                assert "emptyDir" in mounts.get(path, {}), f"{name}: {path} is no emptyDir"


def test_app_containers_run_real_stb_origin_subcommands(build: Build) -> None:
    apps = _app_deployments(build)
    assert set(apps) == {"stb-origin", "stb-worker", "stb-channel-runner"}
    for name, deployment in apps.items():
        for container in _containers(deployment):
            # args, not command: the image's ENTRYPOINT (tini) stays PID 1.
            assert "command" not in container, name
            check_stb_origin_command(container["args"], f"Deployment {name}")
    assert _containers(apps["stb-origin"])[0]["args"][1] == "serve"
    assert _containers(apps["stb-worker"])[0]["args"][1] == "worker"
    assert _containers(apps["stb-channel-runner"])[0]["args"][1:] == ["channel-runner"]


def test_app_pods_upgrade_the_schema_first_with_database_access_only(build: Build) -> None:
    for name, deployment in _app_deployments(build).items():
        (init,) = _pod(deployment)["initContainers"]
        assert init["image"] == _containers(deployment)[0]["image"], name
        check_stb_origin_command(init["args"], f"Deployment {name} init container")
        assert init["args"][1:] == ["db", "upgrade"], name
        assert [e["name"] for e in init.get("env", [])] == ["PGPASSWORD"], name
        assert init["securityContext"]["readOnlyRootFilesystem"] is True, name
        assert {"cpu", "memory"} <= set(init["resources"]["requests"]), name


def test_the_key_audit_is_purged_daily_with_database_access_only(build: Build) -> None:
    job = build.named("CronJob", "stb-key-audit-purge")
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    check_stb_origin_command(container["args"], "CronJob stb-key-audit-purge")
    assert container["args"][1:3] == ["key-audit", "purge"]
    assert [e["name"] for e in container.get("env", [])] == ["PGPASSWORD"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert job["spec"]["concurrencyPolicy"] == "Forbid"


def test_origin_probes_use_the_health_endpoints(build: Build) -> None:
    origin = _containers(build.named("Deployment", "stb-origin"))[0]
    assert origin["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert origin["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_every_service_selects_a_deployment_and_a_named_port(build: Build) -> None:
    deployments = build.of_kind("Deployment")
    for service in build.of_kind("Service"):
        name = service["metadata"]["name"]
        matches = [d for d in deployments if _selects(service["spec"]["selector"], d)]
        assert len(matches) == 1, f"Service {name} selects {len(matches)} Deployments"
        ports = {p["name"] for c in _containers(matches[0]) for p in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, f"Service {name}: no port {port['targetPort']}"


def test_pushed_sources_reach_the_runners_through_a_service(build: Build) -> None:
    push = build.named("Service", "stb-channel-runner-push")
    runner = build.named("Deployment", "stb-channel-runner")
    assert _selects(push["spec"]["selector"], runner)
    ports = {p["name"]: (p["port"], p["protocol"]) for p in push["spec"]["ports"]}
    assert ports == {"rtmp": (1935, "TCP"), "srt": (9000, "UDP")}
    # An encoder that landed on a runner not holding its channel must be balanced
    # afresh when it reconnects.
    assert push["spec"].get("sessionAffinity", "None") == "None"
    container_ports = {p["name"]: p["protocol"] for p in _containers(runner)[0]["ports"]}
    assert container_ports == {"rtmp": "TCP", "srt": "UDP"}


def test_disruption_budgets_and_autoscalers_point_at_deployments(build: Build) -> None:
    deployments = {d["metadata"]["name"]: d for d in build.of_kind("Deployment")}
    budgeted = set()
    for budget in build.of_kind("PodDisruptionBudget"):
        matches = [n for n, d in deployments.items()
                   if _selects(budget["spec"]["selector"]["matchLabels"], d)]
        assert len(matches) == 1, budget["metadata"]["name"]
        budgeted.update(matches)
    assert budgeted == {"stb-origin", "stb-worker", "stb-channel-runner", "stb-cdn"}
    # A drain stops one runner at a time; the others carry its channels meanwhile.
    (runner_budget,) = [b for b in build.of_kind("PodDisruptionBudget")
                        if _selects(b["spec"]["selector"]["matchLabels"],
                                    deployments["stb-channel-runner"])]
    assert runner_budget["spec"].get("maxUnavailable") == 1

    hpa = build.named("HorizontalPodAutoscaler", "stb-origin")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": "stb-origin"}
    # An autoscaled Deployment names no replica count, or each apply would reset it.
    assert "replicas" not in deployments["stb-origin"]["spec"]
    assert "replicas" not in deployments["stb-worker"]["spec"]
    # Runners are not autoscaled: a fixed pair, so a dead runner's channels have
    # somewhere to go (within the lease, STB_RUNNER_LEASE_S).
    runner = deployments["stb-channel-runner"]
    assert runner["spec"]["replicas"] >= 2
    assert not [h for h in build.of_kind("HorizontalPodAutoscaler")
                if h["spec"]["scaleTargetRef"]["name"] == "stb-channel-runner"]
    assert all(s["spec"]["scaleTargetRef"]["name"] != "stb-channel-runner"
               for s in build.of_kind("ScaledObject"))


def test_workers_scale_on_the_rq_queue_with_keda(build: Build) -> None:
    scaled = build.of_kind("ScaledObject")
    assert len(scaled) == 1
    jsonschema.validate(scaled[0], SCALED_OBJECT)
    spec = scaled[0]["spec"]
    assert spec["scaleTargetRef"]["name"] == "stb-worker"
    assert build.named("Deployment", spec["scaleTargetRef"]["name"])
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "redis"
    jsonschema.validate(trigger["metadata"], REDIS_TRIGGER)

    config = build.config()
    queue_name = config.get("STB_QUEUE_NAME", Settings().queue_name)
    assert trigger["metadata"]["listName"] == Queue.redis_queue_namespace_prefix + queue_name
    redis_url = urlsplit(config["STB_REDIS_URL"])
    assert trigger["metadata"]["address"] == redis_url.netloc
    assert trigger["metadata"]["databaseIndex"] == (redis_url.path.strip("/") or "0")


def test_settings_come_from_the_configmap_and_secrets_by_reference(build: Build) -> None:
    assert not build.of_kind("Secret"), "Secret values do not belong in the repository"
    for name in build.config():
        assert name in SETTINGS_NAMES, f"config.env: {name} is not a stb-origin setting"
        assert not SECRET_NAME.search(name), f"config.env: {name} belongs in a Secret"
    for deployment in build.of_kind("Deployment"):
        name = deployment["metadata"]["name"]
        for container in _containers(deployment):
            for source in container.get("envFrom", []):
                assert build.named("ConfigMap", source["configMapRef"]["name"])
            for env in container.get("env", []):
                if SECRET_NAME.search(env["name"]) and not env["name"].endswith("_FILE"):
                    assert "secretKeyRef" in env.get("valueFrom", {}), (
                        f"{name}: {env['name']} must come from a Secret")
                if deployment["metadata"]["name"] in _app_deployments(build):
                    assert env["name"] in SETTINGS_NAMES | {"PGPASSWORD"}, (
                        f"{name}: {env['name']} is not a stb-origin setting")


def test_only_the_origin_holds_the_token_signing_key(build: Build) -> None:
    # The signing keys live in the database wrapped under this key: whoever lacks
    # it (the workers, the channel runners) cannot mint tokens even with database access.
    name = "STB_JWT_KEY_ENCRYPTION_KEY"
    origin = build.named("Deployment", "stb-origin")
    env = {e["name"]: e for e in _containers(origin)[0]["env"]}
    reference = env[name]["valueFrom"]["secretKeyRef"]
    assert reference["name"] == "stb-origin-jwt"
    for deployment in ("stb-worker", "stb-channel-runner"):
        container = _containers(build.named("Deployment", deployment))[0]
        assert all(e["name"] != name for e in container["env"]), deployment
        assert all(source["configMapRef"]["name"] != reference["name"]
                   for source in container.get("envFrom", [])), deployment


@pytest.mark.parametrize("deployment", ["stb-origin", "stb-worker", "stb-channel-runner"])
def test_content_key_holders_get_the_kek_from_the_secret(build: Build, deployment: str) -> None:
    # Workers and channel runners store content keys (wrapped), the origin serves them.
    env = {e["name"]: e for e in _containers(build.named("Deployment", deployment))[0]["env"]}
    reference = env["STB_KEY_ENCRYPTION_KEY"]["valueFrom"]["secretKeyRef"]
    assert reference == {"name": "stb-origin-secrets", "key": "key-encryption-key"}


def test_grace_periods_cover_the_drains(build: Build) -> None:
    # The worker requeues its job itself (STB_WORKER_GRACE_S) before the kubelet's SIGKILL.
    worker = _pod(build.named("Deployment", "stb-worker"))
    assert worker["terminationGracePeriodSeconds"] >= Settings().worker_grace_s + 30
    # preStop sleep, then uvicorn's 30 s drain (stb_origin/cli.py).
    origin = _pod(build.named("Deployment", "stb-origin"))
    pre_stop = origin["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    assert origin["terminationGracePeriodSeconds"] > int(pre_stop[1]) + 30
    # A runner hands its channels over: the runs end within JOIN_TIMEOUT_S (each
    # ffmpeg given STOP_GRACE_S to close its segment), then the leases are released.
    runner = _pod(build.named("Deployment", "stb-channel-runner"))
    assert runner["terminationGracePeriodSeconds"] >= JOIN_TIMEOUT_S + STOP_GRACE_S + 30


def _run_probe(command: list[str], data_dir: Path) -> int:
    # The image's `python` is the venv's; here it is the test run's.
    argv = [sys.executable if command[0] == "python" else command[0], *command[1:]]
    return subprocess.run(argv, env={**os.environ, "STB_DATA_DIR": str(data_dir)},
                          capture_output=True, timeout=30, check=False).returncode


@pytest.mark.parametrize(("deployment", "heartbeat_file", "stale_after_s"), [
    # The worker touches its file at least every 405 s idle.
    ("stb-worker", HEARTBEAT_FILE, 3600),
    # The runner touches its file every second.
    ("stb-channel-runner", RUNNER_HEARTBEAT_FILE, 60),
])
def test_heartbeat_probes_read_the_file_the_process_writes(
        build: Build, tmp_path: Path, deployment: str, heartbeat_file: str,
        stale_after_s: int) -> None:
    container = _containers(build.named("Deployment", deployment))[0]
    for probe in ("readinessProbe", "livenessProbe"):
        command = container[probe]["exec"]["command"]
        assert heartbeat_file in " ".join(command)
        heartbeat = tmp_path / heartbeat_file
        assert _run_probe(command, tmp_path) != 0, "no heartbeat yet must fail"
        heartbeat.touch()
        assert _run_probe(command, tmp_path) == 0, "a fresh heartbeat must pass"
        stale = time.time() - stale_after_s
        os.utime(heartbeat, (stale, stale))
        assert _run_probe(command, tmp_path) != 0, f"a {stale_after_s} s old heartbeat must fail"
        heartbeat.unlink()


def test_the_cdn_renders_the_shared_template_with_every_variable(build: Build) -> None:
    cdn = build.named("Deployment", "stb-cdn")
    (container,) = _containers(cdn)
    assert container["image"].startswith("nginx:")
    env = {e["name"] for e in container["env"]}
    variables = cdn_template_variables()
    assert variables and variables <= env, variables - env

    files = build.config_files["stb-cdn-template"]
    assert [(k, p.relative_to(K8S.parent)) for k, p in files.items()] == [
        ("default.conf.template", Path("cdn/nginx.conf"))]
    volumes = {v["name"]: v for v in _pod(cdn)["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert volumes[mounts["/etc/nginx/templates"]]["configMap"]["name"] == "stb-cdn-template"
    # readOnlyRootFilesystem: nginx writes the rendered config, its cache and its pid file.
    for path in ("/etc/nginx/conf.d", "/var/cache/nginx", "/run"):
        assert "emptyDir" in volumes[mounts[path]], path
    upstream = {e["name"]: e.get("value") for e in container["env"]}["STB_CDN_UPSTREAM"]
    host, port = upstream.split(":")
    origin = build.named("Service", host)
    assert [p["port"] for p in origin["spec"]["ports"]] == [int(port)]


def test_redis_keeps_an_append_only_file(build: Build) -> None:
    # Queued jobs survive a Redis restart; the reconciler rebuilds them if not.
    [redis] = [d for d in build.of_kind("Deployment") if d["metadata"]["name"] == "redis"]
    argv = " ".join(_containers(redis)[0]["args"])
    assert "--appendonly yes" in argv
