"""The Kubernetes manifests (deploy/kubernetes) and the Dockerfile (deploy/Dockerfile).

Renders the kustomize base and the example overlay with ``kubectl kustomize`` (fails, does not skip,
without kubectl), validates core kinds against the Kubernetes OpenAPI schemas (``kubernetes-validate``,
strict: unknown fields are errors), the prometheus-operator kinds with the cloudcoil models, and the
PrometheusRule's groups with ``promtool check rules``. In the base sloguard is a single-replica
StatefulSet whose checkpoints go to a PersistentVolumeClaim from its claim template; overlays/scaled
(the component components/scaled) runs the two stages of docs/scaling.md instead, with the components
lag-autoscaling and checkpoint-directory as options. The base holds copies of two files kustomize cannot
reach (config/slos.example.yaml and the generated PrometheusRule): they must be up to date.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from sloguard.cli import main
from tests.support.k8s import (
    CHECKPOINT_DIR,
    CHECKPOINT_VOLUME,
    KINDS,
    SCALED_KINDS,
    STAGES,
    Doc,
    assert_checkpoints_on_volume,
    assert_locked_down,
    assert_scaled_shape,
    assert_scraped_once,
    assert_single_consumer,
    assert_topics_job,
    check_rules_with_promtool,
    daemon_settings,
    kustomize,
    one,
    pod_spec,
    sloguard_container,
    stage_workload,
    statefulset,
    validate_core_kinds,
    validate_operator_kinds,
)

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
BASE = KUBE / "base"
OVERLAY = KUBE / "overlays" / "example"
SCALED = KUBE / "overlays" / "scaled"
COMPONENTS = KUBE / "components"
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


# --- scaled out: overlays/scaled, components/{scaled,lag-autoscaling,checkpoint-directory} --------------


def with_components(directory: Path, *components: str) -> list[Doc]:
    """The base with components/scaled and ``components``, from a kustomization in ``directory``."""
    paths = [os.path.relpath(path, directory) for path in (BASE, COMPONENTS / "scaled")]
    extra = [os.path.relpath(COMPONENTS / name, directory) for name in components]
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": paths[:1],
        "components": paths[1:] + extra,
    }
    (directory / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    return kustomize(directory)


@pytest.fixture(scope="module", params=["scaled", "scaled-all-components"])
def scaled(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> list[Doc]:
    if request.param == "scaled":
        return kustomize(SCALED)
    return with_components(tmp_path_factory.mktemp("overlay"), "lag-autoscaling", "checkpoint-directory")


def test_scaled_renders_and_validates(scaled: list[Doc], tmp_path: Path) -> None:
    """Every object of the scaled overlay through the same checks as the base's; the PrometheusRule and
    the ServiceMonitor are the base's (rules work unchanged in every mode)."""
    extra = {"HorizontalPodAutoscaler", "PersistentVolumeClaim"}
    assert sorted(doc["kind"] for doc in scaled if doc["kind"] not in extra) == SCALED_KINDS
    validate_core_kinds(scaled)
    validate_operator_kinds(scaled)
    base = kustomize(BASE)
    for kind in ("PrometheusRule", "ServiceMonitor", "NetworkPolicy"):
        assert one(scaled, kind) == one(base, kind), kind
    check_rules_with_promtool(one(scaled, "PrometheusRule"), tmp_path)


def test_scaled_shape(scaled: list[Doc]) -> None:
    autoscaled = any(doc["kind"] == "HorizontalPodAutoscaler" for doc in scaled)
    assert_scaled_shape(scaled, partial_replicas=None if autoscaled else 2, merge_replicas=2)


def test_scaled_stages_accept_their_settings(scaled: list[Doc], monkeypatch: pytest.MonkeyPatch) -> None:
    base = kustomize(BASE)
    kafka = daemon_settings(base, monkeypatch).kafka
    shared = any(doc["kind"] == "PersistentVolumeClaim" for doc in scaled)
    for stage in STAGES:
        container = sloguard_container(scaled, stage_workload(scaled, stage))
        settings = daemon_settings(scaled, monkeypatch, container=container)
        assert settings.stage == stage
        assert settings.config == Path("/etc/sloguard/slos.yaml")
        assert settings.kafka == kafka
        expected = Path(CHECKPOINT_DIR) if shared and stage == "merge" else None
        assert settings.checkpoint.dir == expected
    assert_topics_job(scaled, monkeypatch, partials=12, checkpoints=3)


def test_scaled_stages_keep_the_base_pod(scaled: list[Doc]) -> None:
    """The stages' pods are the base's single pod but for the command line (``--stage``) and the
    checkpoint volume: same image, probes, resources, security contexts, environment sources."""
    base = kustomize(BASE)
    ours = pod_spec(base)
    for stage in STAGES:
        pod = pod_spec(scaled, stage_workload(scaled, stage))
        for key in (
            "securityContext",
            "terminationGracePeriodSeconds",
            "serviceAccountName",
            "enableServiceLinks",
        ):
            assert pod[key] == ours[key], (stage, key)
        container, single = (
            sloguard_container(scaled, stage_workload(scaled, stage)),
            sloguard_container(base),
        )
        for key in (
            "image",
            "ports",
            "livenessProbe",
            "readinessProbe",
            "resources",
            "securityContext",
        ):
            assert container[key] == single[key], (stage, key)
        assert container["args"] == [*single["args"], "--stage", stage]
        # The settings ConfigMap: the scaled one has the partition counts, so another content hash.
        (source,), (single_source,) = container["envFrom"], single["envFrom"]
        assert source["configMapRef"]["name"].startswith("sloguard-settings-")
        assert single_source["configMapRef"]["name"].startswith("sloguard-settings-")
        without_checkpoints = [e for e in single["env"] if e["name"] != "SLOGUARD_CHECKPOINT__DIR"]
        assert [e for e in container["env"] if e["name"] != "SLOGUARD_CHECKPOINT__DIR"] == without_checkpoints
        mounts = [m for m in container["volumeMounts"] if m["name"] != CHECKPOINT_VOLUME]
        assert mounts == [m for m in single["volumeMounts"] if m["name"] != CHECKPOINT_VOLUME]


def test_lag_autoscaling_component(tmp_path: Path) -> None:
    """components/lag-autoscaling: an autoscaling/v2 HPA on the Pods metric sloguard_consumer_lag
    scales the stage-1 Deployment, which loses its own replicas."""
    docs = with_components(tmp_path, "lag-autoscaling")
    validate_core_kinds(docs)
    hpa = one(docs, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "sloguard-partial",
    }
    assert [m["pods"]["metric"]["name"] for m in hpa["spec"]["metrics"]] == ["sloguard_consumer_lag"]
    assert "replicas" not in stage_workload(docs, "partial")["spec"]
    assert stage_workload(docs, "merge")["spec"]["replicas"] == 2


def test_checkpoint_directory_component(tmp_path: Path) -> None:
    """components/checkpoint-directory: one ReadWriteMany claim mounted by every stage-2 pod at the
    checkpoint directory; stage 1 untouched."""
    docs = with_components(tmp_path, "checkpoint-directory")
    validate_core_kinds(docs)
    claim = one(docs, "PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    merge = stage_workload(docs, "merge")
    volumes = {v["name"]: v for v in pod_spec(docs, merge)["volumes"]}
    assert volumes[CHECKPOINT_VOLUME]["persistentVolumeClaim"] == {"claimName": claim["metadata"]["name"]}
    mounts = {m["name"]: m["mountPath"] for m in sloguard_container(docs, merge)["volumeMounts"]}
    assert mounts[CHECKPOINT_VOLUME] == CHECKPOINT_DIR
    assert_scaled_shape(docs)
