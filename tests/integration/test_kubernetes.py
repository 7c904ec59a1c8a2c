"""The Kubernetes manifests (deploy/kubernetes) and the Dockerfile (deploy/Dockerfile).

Renders the kustomize base and the example overlay with ``kubectl kustomize`` (fails, does not skip,
without kubectl), validates core kinds against the Kubernetes OpenAPI schemas (``kubernetes-validate``,
strict: unknown fields are errors), the prometheus-operator kinds with the cloudcoil models, and the
PrometheusRule's groups with ``promtool check rules``. sloguard is a single-replica StatefulSet whose
checkpoints go to a PersistentVolumeClaim from its claim template. The base holds copies of two files
kustomize cannot reach (config/slos.example.yaml and the generated PrometheusRule): they must be up to
date.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sloguard.cli import main
from tests.support.k8s import (
    CHECKPOINT_DIR,
    KINDS,
    Doc,
    assert_checkpoints_on_volume,
    assert_locked_down,
    assert_scraped_once,
    assert_single_consumer,
    check_rules_with_promtool,
    daemon_settings,
    kustomize,
    one,
    pod_spec,
    sloguard_container,
    statefulset,
    validate_core_kinds,
    validate_operator_kinds,
)

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
BASE = KUBE / "base"
OVERLAY = KUBE / "overlays" / "example"
EXAMPLE = ROOT / "config" / "slos.example.yaml"


@pytest.fixture(scope="module", params=[BASE, OVERLAY], ids=["base", "overlay"])
def rendered(request: pytest.FixtureRequest) -> list[Doc]:
    return kustomize(request.param)


def test_renders_every_kind(rendered: list[Doc]) -> None:
    assert sorted(doc["kind"] for doc in rendered) == KINDS


def test_core_kinds_validate_strictly(rendered: list[Doc]) -> None:
    validate_core_kinds(rendered)


def test_operator_kinds_validate(rendered: list[Doc]) -> None:
    validate_operator_kinds(rendered)
    endpoint = one(rendered, "ServiceMonitor")["spec"]["endpoints"][0]
    assert endpoint["port"] == "metrics"
    assert endpoint["interval"] == "30s"
    assert_scraped_once(rendered)


@pytest.mark.promtool
def test_prometheus_rule_passes_promtool(rendered: list[Doc], tmp_path: Path) -> None:
    check_rules_with_promtool(one(rendered, "PrometheusRule"), tmp_path)


def test_statefulset_is_locked_down(rendered: list[Doc]) -> None:
    assert_locked_down(rendered)


def test_statefulset_is_a_single_consumer(rendered: list[Doc]) -> None:
    assert_single_consumer(rendered)


def test_checkpoints_go_to_the_claimed_volume(rendered: list[Doc]) -> None:
    assert_checkpoints_on_volume(rendered)
    (claim,) = statefulset(rendered)["spec"]["volumeClaimTemplates"]
    assert claim["spec"] == {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}


def test_daemon_accepts_the_rendered_settings(rendered: list[Doc], monkeypatch: pytest.MonkeyPatch) -> None:
    settings = daemon_settings(rendered, monkeypatch)
    assert settings.checkpoint.dir == Path(CHECKPOINT_DIR)
    assert pod_spec(rendered)["terminationGracePeriodSeconds"] > settings.shutdown_timeout_seconds


def test_statefulset_references_the_generated_config_maps(rendered: list[Doc]) -> None:
    config_maps = {doc["metadata"]["name"] for doc in rendered if doc["kind"] == "ConfigMap"}
    pod = pod_spec(rendered)
    container = sloguard_container(rendered)
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
    assert settings["data"]["SLOGUARD_CHECKPOINT__INTERVAL"] == "15"
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
