"""The Kubernetes manifests (deploy/kubernetes) and the Dockerfile (deploy/Dockerfile).

Renders the kustomize base and the example overlay with ``kubectl kustomize`` (fails, does not skip,
without kubectl), validates core kinds against the Kubernetes OpenAPI schemas (``kubernetes-validate``,
strict: unknown fields are errors), the prometheus-operator kinds with the cloudcoil models, and the
PrometheusRule's groups with ``promtool check rules``. The base holds copies of two files kustomize cannot
reach (config/slos.example.yaml and the generated PrometheusRule): they must be up to date.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from cloudcoil.models.prometheus_operator.v1 import PrometheusRule, ServiceMonitor

from sloguard.cli import main
from tests.support.tools import require

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
BASE = KUBE / "base"
OVERLAY = KUBE / "overlays" / "example"
EXAMPLE = ROOT / "config" / "slos.example.yaml"
#: Kubernetes schema version for kubernetes-validate (one it ships; see `kubernetes-validate --help`).
K8S_VERSION = "1.30.0"
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}
SHUTDOWN_TIMEOUT_S = 20  # Settings.shutdown_timeout_seconds default

Doc = dict[str, Any]


def kustomize(path: Path) -> list[Doc]:
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


@pytest.fixture(scope="module", params=[BASE, OVERLAY], ids=["base", "overlay"])
def rendered(request: pytest.FixtureRequest) -> list[Doc]:
    return kustomize(request.param)


def test_renders_every_kind(rendered: list[Doc]) -> None:
    kinds = sorted(doc["kind"] for doc in rendered)
    assert kinds == sorted(
        [
            "ConfigMap",
            "ConfigMap",
            "Deployment",
            "NetworkPolicy",
            "PodDisruptionBudget",
            "PrometheusRule",
            "Service",
            "ServiceAccount",
            "ServiceMonitor",
        ]
    )


def test_core_kinds_validate_strictly(rendered: list[Doc]) -> None:
    for doc in rendered:
        if doc["kind"] not in CRD_KINDS:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_operator_kinds_validate(rendered: list[Doc]) -> None:
    for model in (ServiceMonitor, PrometheusRule):
        doc = one(rendered, model.__name__)
        parsed = model.model_validate(doc)
        # pydantic ignores unknown keys: dumping back must give every key, none dropped or renamed.
        assert parsed.model_dump(by_alias=True, exclude_none=True, mode="json") == doc
    endpoint = one(rendered, "ServiceMonitor")["spec"]["endpoints"][0]
    assert endpoint["port"] == "metrics"
    assert endpoint["interval"] == "30s"


@pytest.mark.promtool
def test_prometheus_rule_passes_promtool(rendered: list[Doc], tmp_path: Path) -> None:
    promtool = require("promtool")
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(one(rendered, "PrometheusRule")["spec"], sort_keys=False))
    proc = subprocess.run(
        [promtool, "check", "rules", "--lint=all", "--lint-fatal", str(rules)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_deployment_is_locked_down(rendered: list[Doc]) -> None:
    pod = one(rendered, "Deployment")["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > SHUTDOWN_TIMEOUT_S
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
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


def test_deployment_references_the_generated_config_maps(rendered: list[Doc]) -> None:
    config_maps = {doc["metadata"]["name"] for doc in rendered if doc["kind"] == "ConfigMap"}
    pod = one(rendered, "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["slos"]["configMap"]["name"] in config_maps
    assert volumes["slos"]["configMap"]["name"].startswith("sloguard-slos-")
    assert "emptyDir" in volumes["tmp"]
    (env_from,) = container["envFrom"]
    assert env_from["configMapRef"]["name"] in config_maps
    password = {e["name"]: e for e in container["env"]}["SLOGUARD_KAFKA__SASL_PASSWORD"]
    assert password["valueFrom"]["secretKeyRef"]["optional"] is True


def test_overlay_sets_namespace_and_kafka() -> None:
    docs = kustomize(OVERLAY)
    assert {doc["metadata"].get("namespace") for doc in docs} == {"observability"}
    settings = next(
        doc
        for doc in docs
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"].startswith("sloguard-settings-")
    )
    assert settings["data"]["SLOGUARD_KAFKA__BOOTSTRAP_SERVERS"] != "kafka:9092"
    assert settings["data"]["SLOGUARD_LOG_FORMAT"] == "json"  # base values survive the patch


def test_slo_file_copy_is_up_to_date() -> None:
    assert (BASE / "slos.yaml").read_bytes() == EXAMPLE.read_bytes(), (
        "deploy/kubernetes/base/slos.yaml differs from config/slos.example.yaml: "
        "cp config/slos.example.yaml deploy/kubernetes/base/slos.yaml"
    )


def test_prometheus_rule_is_up_to_date(tmp_path: Path) -> None:
    out = tmp_path / "prometheusrule.yaml"
    assert main(["rules", str(EXAMPLE), "--format", "prometheusrule", "-o", str(out)]) == 0
    assert (BASE / "prometheusrule.yaml").read_text() == out.read_text(), (
        "deploy/kubernetes/base/prometheusrule.yaml is stale: sloguard rules config/slos.example.yaml "
        "--format prometheusrule -o deploy/kubernetes/base/prometheusrule.yaml"
    )


def test_dockerfile_shape() -> None:
    lines = [
        line.strip()
        for line in (ROOT / "deploy" / "Dockerfile").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert lines[0].startswith("FROM python:3.11-slim")
    assert sum(line.startswith("FROM ") for line in lines) >= 2  # multi-stage
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users, "no USER instruction"
    assert users[-1].split(":")[0] not in {"0", "root"}
    assert 'ENTRYPOINT ["sloguard"]' in lines
    assert 'CMD ["run", "--config", "/etc/sloguard/slos.yaml"]' in lines
    assert "EXPOSE 9464" in lines
