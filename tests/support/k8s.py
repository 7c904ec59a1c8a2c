"""Checks shared by the kustomize (test_kubernetes.py) and Helm (test_helm.py) manifest tests.

Core kinds are validated against the Kubernetes OpenAPI schemas (``kubernetes-validate``, strict: unknown
fields are errors), the prometheus-operator kinds with the cloudcoil models, and a PrometheusRule's groups
with ``promtool check rules``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import yaml
from cloudcoil.models.prometheus_operator.v1 import PrometheusRule, ServiceMonitor

from sloguard.settings import Settings
from tests.support.tools import require

#: Kubernetes schema version for kubernetes-validate (one it ships; see `kubernetes-validate --help`).
K8S_VERSION = "1.30.0"
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}
#: Every kind the manifests consist of (kustomize base and the Helm chart alike).
KINDS = sorted(
    [
        "ConfigMap",  # the SLO file
        "ConfigMap",  # settings (SLOGUARD_* environment variables)
        "Deployment",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "PrometheusRule",
        "Service",
        "ServiceAccount",
        "ServiceMonitor",
    ]
)
#: The daemon's bound on its graceful shutdown when SLOGUARD_SHUTDOWN_TIMEOUT_SECONDS is not set.
DEFAULT_SHUTDOWN_TIMEOUT_S: float = Settings.model_fields["shutdown_timeout_seconds"].default

Doc = dict[str, Any]


def kustomize(path: Path) -> list[Doc]:
    """``kubectl kustomize path`` as parsed documents (fails, does not skip, without kubectl)."""
    kubectl = require("kubectl")
    proc = subprocess.run(
        [kubectl, "kustomize", str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def one(docs: list[Doc], kind: str) -> Doc:
    found = [doc for doc in docs if doc["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def validate_core_kinds(docs: list[Doc]) -> None:
    """Every object but the prometheus-operator ones against the Kubernetes schemas, strictly."""
    for doc in docs:
        if doc["kind"] not in CRD_KINDS:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def validate_operator_kinds(docs: list[Doc]) -> None:
    """The ServiceMonitor and the PrometheusRule against the prometheus-operator models."""
    for model in (ServiceMonitor, PrometheusRule):
        doc = one(docs, model.__name__)
        parsed = model.model_validate(doc)
        # pydantic ignores unknown keys: dumping back must give every key, none dropped or renamed.
        assert parsed.model_dump(by_alias=True, exclude_none=True, mode="json") == doc


def check_rules_with_promtool(prometheus_rule: Doc, tmp_path: Path) -> None:
    """``promtool check rules --lint=all --lint-fatal`` on the PrometheusRule's spec (a rule file)."""
    promtool = require("promtool")
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(prometheus_rule["spec"], sort_keys=False))
    proc = subprocess.run(
        [promtool, "check", "rules", "--lint=all", "--lint-fatal", str(rules)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def config_map_data(docs: list[Doc], name: str) -> dict[str, str]:
    for doc in docs:
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == name:
            data: dict[str, str] = doc["data"]
            return data
    raise AssertionError(f"no ConfigMap {name}")


def container_environment(docs: list[Doc], container: Doc, secret: str = "from-secret") -> dict[str, str]:
    """The container's environment as the kubelet would set it: ``envFrom`` ConfigMaps (looked up in
    ``docs``), then ``env`` on top; a value from a Secret becomes ``secret``. Optional Secret references
    are left out (the Secret may not exist)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(config_map_data(docs, source["configMapRef"]["name"]))
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
            continue
        ref = var["valueFrom"]
        if "secretKeyRef" in ref:
            if not ref["secretKeyRef"].get("optional", False):
                env[var["name"]] = secret
        else:
            key = ref["configMapKeyRef"]
            env[var["name"]] = config_map_data(docs, key["name"])[key["key"]]
    return env


def shutdown_timeout_s(env: dict[str, str]) -> float:
    """The daemon's shutdown bound in this environment."""
    value = env.get("SLOGUARD_SHUTDOWN_TIMEOUT_SECONDS")
    return DEFAULT_SHUTDOWN_TIMEOUT_S if value is None else float(value)


def assert_locked_down(docs: list[Doc]) -> None:
    """The Deployment runs as non-root with a read-only root filesystem, no privilege escalation, no
    capabilities, the runtime's seccomp profile, no API token, resources, probes on /healthz and
    /readyz, and waits longer than the daemon's shutdown bound before killing it."""
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False
    (container,) = pod["containers"]
    assert container["name"] == "sloguard"
    assert container["args"] == ["run", "--config", "/etc/sloguard/slos.yaml"]
    assert container["ports"] == [{"name": "metrics", "containerPort": 9464, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] != 0
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert {"requests", "limits"} <= container["resources"].keys()
    bound = shutdown_timeout_s(container_environment(docs, container))
    assert pod["terminationGracePeriodSeconds"] > bound
