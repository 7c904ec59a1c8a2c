"""The Helm chart deploy/helm/sloguard, linted and rendered in-process with helm-python-sdk (Helm v4).

With the default values and with ci/example-values.yaml: ``helm lint --strict``, then the rendered
objects through the same checks as the kustomize manifests (tests/support/k8s.py: strict Kubernetes
schemas, prometheus-operator models, promtool); the rendered SLO file and settings must be accepted by
the daemon's own parsers, the PrometheusRule must be exactly what `sloguard rules` generates for the
rendered SLO file, the checkpoint directory must be the mounted volume (a PersistentVolumeClaim from the
StatefulSet's claim template, or an emptyDir with persistence disabled), and with default values the
StatefulSet and its companions must match the kustomize base. values.schema.json must refuse typos and
wrong types; the templates refuse inconsistent values.
"""

from __future__ import annotations

import asyncio
import json
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml
from annotated_types import Ge, Gt, Le
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from sloguard import __version__
from sloguard.broker import LocalBroker
from sloguard.cli import main
from sloguard.ingest.kafka_topics import partition_counts
from sloguard.rules import generate, to_yaml
from sloguard.settings import ENV_PREFIX, CheckpointSettings, Settings, load_settings
from sloguard.specfile import parse_config
from tests.support.k8s import (
    CHECKPOINT_DIR,
    CHECKPOINT_VOLUME,
    COMPONENT,
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
    config_map_data,
    container_environment,
    daemon_settings,
    headless_service,
    kustomize,
    one,
    pod_spec,
    scraped_service,
    set_environment,
    sloguard_container,
    stage_workload,
    statefulset,
    topics_job,
    validate_core_kinds,
    validate_operator_kinds,
)

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "sloguard"
EXAMPLE_VALUES = CHART / "ci" / "example-values.yaml"
EXAMPLE_SLOS = ROOT / "config" / "slos.example.yaml"
KUSTOMIZE_BASE = ROOT / "deploy" / "kubernetes" / "base"
KUSTOMIZE_SCALED = ROOT / "deploy" / "kubernetes" / "overlays" / "scaled"
RELEASE = "sloguard"
NAMESPACE = "observability"
#: `helm lint --kube-version`: the version kubernetes-validate checks against (tests/support/k8s.py).
KUBE_VERSION = "v1.30.0"
#: Environment variables the chart derives from `kafka`, `persistence`, `checkpoint`, `mode`, `scaled` and
#: its own port: not allowed in `settings`.
CHART_OWNED = {
    "SLOGUARD_CONFIG",
    "SLOGUARD_LISTEN",
    "SLOGUARD_KAFKA__BOOTSTRAP_SERVERS",
    "SLOGUARD_KAFKA__TOPICS",
    "SLOGUARD_KAFKA__GROUP_ID",
    "SLOGUARD_KAFKA__SECURITY_PROTOCOL",
    "SLOGUARD_KAFKA__SASL_MECHANISM",
    "SLOGUARD_KAFKA__SASL_USERNAME",
    "SLOGUARD_KAFKA__SASL_PASSWORD",
    "SLOGUARD_KAFKA__SSL_CAFILE",
    "SLOGUARD_KAFKA__SSL_CERTFILE",
    "SLOGUARD_KAFKA__SSL_KEYFILE",
    # The mount path of the checkpoint volume (persistence), and `checkpoint.interval` / `checkpoint.keep`.
    "SLOGUARD_CHECKPOINT__DIR",
    "SLOGUARD_CHECKPOINT__INTERVAL",
    "SLOGUARD_CHECKPOINT__KEEP",
    # The stage follows `mode` (`--stage` in each workload's args); the partition counts `scaled.topics`.
    "SLOGUARD_STAGE",
    "SLOGUARD_SCALE__PARTIALS_PARTITIONS",
    "SLOGUARD_SCALE__CHECKPOINTS_PARTITIONS",
}
#: The chart's values.yaml.
DEFAULTS: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
#: The chart's default rule groups.
DEFAULT_GROUPS: list[Doc] = yaml.safe_load((CHART / "files" / "rules.yaml").read_text())["groups"]
#: What `helm lint` may say about a good chart (info level).
LINT_INFO_OK = {"icon is recommended"}


def example_values() -> dict[str, Any]:
    """ci/example-values.yaml parsed as `helm -f` does."""
    return helm.values_from_yaml(EXAMPLE_VALUES.read_text())


def render(values: dict[str, Any] | None = None) -> list[Doc]:
    """``helm template`` of the chart (values validated against values.schema.json)."""
    with helm.Chart.load(CHART) as chart:
        manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    docs: list[Doc] = []
    for path, text in sorted(manifests.items()):
        if path.endswith(".yaml"):
            docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return docs


def notes(values: dict[str, Any] | None = None) -> str:
    with helm.Chart.load(CHART) as chart:
        return chart.render(values, name=RELEASE, namespace=NAMESPACE)[f"{CHART.name}/templates/NOTES.txt"]


def lint_problems(values: dict[str, Any] | None) -> list[str]:
    """``helm lint --strict`` findings other than the accepted info messages. (Helm 4 lints with `fail`
    made harmless, so the templates' own checks show only when rendering.)"""
    report = helm.lint(CHART, values, strict=True, kube_version=KUBE_VERSION)
    problems = [
        f"{m['path']}: {m['error']}"
        for m in report["messages"]
        if m["severity"] >= 2 or m["error"] not in LINT_INFO_OK
    ]
    return problems + list(report["errors"])


def value(values: dict[str, Any] | None, *path: str) -> Any:
    """A value as the chart sees it: from ``values``, else the chart's values.yaml default."""
    for source in (values or {}, DEFAULTS):
        node: Any = source
        for key in path:
            if not isinstance(node, dict) or key not in node:
                break
            node = node[key]
        else:
            return node
    raise KeyError(".".join(path))


def slo_file(docs: list[Doc]) -> str:
    return config_map_data(docs, f"{RELEASE}-slos")["slos.yaml"]


@pytest.fixture(scope="module", params=["default", "example"])
def values(request: pytest.FixtureRequest) -> dict[str, Any] | None:
    return example_values() if request.param == "example" else None


@pytest.fixture(scope="module")
def rendered(values: dict[str, Any] | None) -> list[Doc]:
    return render(values)


def test_chart_version_follows_sloguard() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["version"] == __version__
    assert chart["appVersion"] == __version__


def test_lint_strict(values: dict[str, Any] | None) -> None:
    assert lint_problems(values) == []


def test_renders_every_kind(rendered: list[Doc]) -> None:
    assert sorted(doc["kind"] for doc in rendered) == KINDS
    assert {doc["metadata"]["namespace"] for doc in rendered} == {NAMESPACE}


def test_core_kinds_validate_strictly(rendered: list[Doc]) -> None:
    validate_core_kinds(rendered)


def test_operator_kinds_validate(rendered: list[Doc]) -> None:
    validate_operator_kinds(rendered)
    service = scraped_service(rendered)
    monitor = one(rendered, "ServiceMonitor")
    assert monitor["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"] == "metrics"
    assert_scraped_once(rendered)


@pytest.mark.promtool
def test_prometheus_rule_passes_promtool(rendered: list[Doc], tmp_path: Path) -> None:
    check_rules_with_promtool(one(rendered, "PrometheusRule"), tmp_path)


def test_statefulset_is_locked_down(rendered: list[Doc]) -> None:
    assert_locked_down(rendered)


def test_statefulset_is_a_single_consumer(rendered: list[Doc]) -> None:
    assert_single_consumer(rendered)


def test_checkpoints_go_to_the_claimed_volume(rendered: list[Doc], values: dict[str, Any] | None) -> None:
    assert_checkpoints_on_volume(rendered)
    (claim,) = statefulset(rendered)["spec"]["volumeClaimTemplates"]
    expected: Doc = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": value(values, "persistence", "size")}},
    }
    # "" (the default): no storageClassName at all, the cluster's default class; an explicit "" would
    # mean no dynamic provisioning.
    if storage_class := value(values, "persistence", "storageClassName"):
        expected["storageClassName"] = storage_class
    assert claim["spec"] == expected
    assert DEFAULTS["persistence"]["size"] == "1Gi"


def test_persistence_disabled_uses_an_empty_dir() -> None:
    """persistence.enabled=false: no claim template, the same mount and variable on an emptyDir, and the
    NOTES warn that the state is lost on restart."""
    values = {"persistence": {"enabled": False, "size": "256Mi"}}
    docs = render(values)
    validate_core_kinds(docs)
    assert_locked_down(docs)
    assert_single_consumer(docs)
    assert_checkpoints_on_volume(docs, persistent=False)
    volume = next(v for v in pod_spec(docs)["volumes"] if v["name"] == CHECKPOINT_VOLUME)
    assert volume["emptyDir"] == {"sizeLimit": "256Mi"}
    assert "LOST ON RESTART" in notes(values)
    assert "LOST ON RESTART" not in notes()
    assert f"PersistentVolumeClaim checkpoints-{RELEASE}-0" in notes()


@pytest.mark.parametrize(
    ("persistence", "storage_class"),
    [
        pytest.param({"storageClassName": "fast-ssd"}, "fast-ssd", id="named-class"),
        pytest.param({"storageClassName": "-"}, "", id="no-provisioning"),
        pytest.param({"accessModes": ["ReadWriteOncePod"], "size": "512Mi"}, None, id="one-pod-only"),
    ],
)
def test_persistence_values(persistence: dict[str, Any], storage_class: str | None) -> None:
    docs = render({"persistence": persistence})
    validate_core_kinds(docs)
    assert_checkpoints_on_volume(docs)
    (claim,) = statefulset(docs)["spec"]["volumeClaimTemplates"]
    assert claim["spec"].get("storageClassName") == storage_class
    assert claim["spec"]["accessModes"] == persistence.get("accessModes", ["ReadWriteOnce"])
    assert claim["spec"]["resources"]["requests"]["storage"] == persistence.get("size", "1Gi")


def test_checkpoint_values_reach_the_daemon(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = render({"checkpoint": {"interval": 2.5, "keep": 5}})
    settings = daemon_settings(docs, monkeypatch)
    assert settings.checkpoint == CheckpointSettings(dir=Path(CHECKPOINT_DIR), interval=2.5, keep=5)


def test_selectors_match_the_pod(rendered: list[Doc]) -> None:
    pod_labels = statefulset(rendered)["spec"]["template"]["metadata"]["labels"]
    selectors = [
        statefulset(rendered)["spec"]["selector"]["matchLabels"],
        scraped_service(rendered)["spec"]["selector"],
        headless_service(rendered)["spec"]["selector"],
        one(rendered, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        one(rendered, "NetworkPolicy")["spec"]["podSelector"]["matchLabels"],
    ]
    for selector in selectors:
        assert selector.items() <= pod_labels.items()
    # The claim's labels are the selector's: they never change (claim templates are immutable).
    (claim,) = statefulset(rendered)["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["labels"] == statefulset(rendered)["spec"]["selector"]["matchLabels"]
    assert pod_spec(rendered)["serviceAccountName"] == one(rendered, "ServiceAccount")["metadata"]["name"]


def test_daemon_accepts_the_rendered_settings(
    rendered: list[Doc], values: dict[str, Any] | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The container's environment (Secrets stubbed) through the daemon's own settings parser and the
    Kafka client's cross-field checks (SASL needs a mechanism, user and password, ...)."""
    settings = daemon_settings(rendered, monkeypatch)
    kafka = settings.kafka.to_config()
    assert settings.listen_address() == ("0.0.0.0", 9464)
    assert settings.checkpoint == CheckpointSettings(
        dir=Path(CHECKPOINT_DIR),
        interval=value(values, "checkpoint", "interval"),
        keep=value(values, "checkpoint", "keep"),
    )
    pod = pod_spec(rendered)
    assert pod["terminationGracePeriodSeconds"] > settings.shutdown_timeout_seconds
    # Files the Kafka client reads are in a mounted Secret.
    mounts = {m["mountPath"]: m["name"] for m in sloguard_container(rendered)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    for path in filter(None, (kafka.ssl_cafile, kafka.ssl_certfile, kafka.ssl_keyfile)):
        directory, _, name = path.rpartition("/")
        volume = volumes[mounts[directory]]
        assert name in {item["path"] for item in volume["secret"]["items"]}


def test_slo_file_is_valid(rendered: list[Doc]) -> None:
    parse_config(slo_file(rendered), source="ConfigMap sloguard-slos")


def test_prometheus_rule_is_sloguard_rules_of_the_slo_file(rendered: list[Doc]) -> None:
    """The committed rule groups (files/rules.yaml, the example's prometheusRule.groups) are exactly
    what `sloguard rules` generates for the SLO file the chart renders: they cannot drift apart."""
    expected = generate(parse_config(slo_file(rendered)))["groups"]
    groups = one(rendered, "PrometheusRule")["spec"]["groups"]
    assert groups == expected, (
        "stale rule groups: deploy/helm/sloguard/files/rules.yaml must be `sloguard rules "
        "deploy/helm/sloguard/files/slos.yaml -o deploy/helm/sloguard/files/rules.yaml`; "
        "ci/example-values.yaml's prometheusRule.groups must be these:\n" + to_yaml({"groups": expected})
    )


def test_default_slo_file_is_the_example() -> None:
    assert (CHART / "files" / "slos.yaml").read_bytes() == EXAMPLE_SLOS.read_bytes(), (
        "deploy/helm/sloguard/files/slos.yaml differs from config/slos.example.yaml: "
        "cp config/slos.example.yaml deploy/helm/sloguard/files/slos.yaml"
    )
    # The ConfigMap carries the file byte for byte, comments included.
    assert slo_file(render()) == EXAMPLE_SLOS.read_text()


def test_default_rule_file_is_up_to_date(tmp_path: Path) -> None:
    out = tmp_path / "rules.yaml"
    assert main(["rules", str(CHART / "files" / "slos.yaml"), "-o", str(out)]) == 0
    assert (CHART / "files" / "rules.yaml").read_text() == out.read_text(), (
        "deploy/helm/sloguard/files/rules.yaml is stale: sloguard rules deploy/helm/sloguard/files/slos.yaml "
        "-o deploy/helm/sloguard/files/rules.yaml"
    )


def test_slos_as_yaml_keep_their_meaning() -> None:
    """The example's `slos` is YAML under a values key: Helm turns numbers into float64 and re-emits the
    document with sorted keys. The daemon must read the same SLOs as from the values file itself."""
    text = slo_file(render(example_values()))
    from_values = yaml.safe_dump(yaml.safe_load(EXAMPLE_VALUES.read_text())["slos"], sort_keys=False)
    assert parse_config(text) == parse_config(from_values)


def test_slos_and_rules_from_files(tmp_path: Path) -> None:
    """The README's way: --set-file slos=my-slos.yaml --set-file prometheusRule.groups=rules.yaml."""
    slos = tmp_path / "my-slos.yaml"
    slos.write_text(
        "# checkout only\napiVersion: sloguard/v1\nslos:\n"
        "  - {name: checkout, service: checkout, objective: 99.95, sli: {type: availability}, window: 30d}\n"
    )
    rules = tmp_path / "rules.yaml"
    assert main(["rules", str(slos), "-o", str(rules)]) == 0
    values = {"slos": slos.read_text(), "prometheusRule": {"groups": rules.read_text()}}
    docs = render(values)
    assert slo_file(docs) == slos.read_text()
    assert one(docs, "PrometheusRule")["spec"] == yaml.safe_load(rules.read_text())
    validate_core_kinds(docs)
    validate_operator_kinds(docs)
    assert "example SLO file" not in notes(values)
    assert "example SLO file" in notes()


POD_FIELDS = (
    "securityContext",
    "terminationGracePeriodSeconds",
    "automountServiceAccountToken",
    "enableServiceLinks",
)
STATEFULSET_FIELDS = ("replicas", "podManagementPolicy", "updateStrategy", "revisionHistoryLimit")


def test_matches_the_kustomize_base() -> None:
    """With default values the chart deploys what deploy/kubernetes/base does: same StatefulSet policy and
    checkpoint claim, same container (args, ports, probes, resources, security contexts, mounts), same
    environment variable names and settings, same SLO file and rules, same Services (scraped and
    headless), ServiceMonitor endpoint and selection, PDB and NetworkPolicy rules. Names and labels
    differ (Helm's conventions); the base also references an optional SASL password Secret, which the
    chart adds only with SASL."""
    helm_docs = render()
    base_docs = kustomize(KUSTOMIZE_BASE)
    ours, theirs = sloguard_container(helm_docs), sloguard_container(base_docs)
    for key in ("args", "ports", "livenessProbe", "readinessProbe", "resources", "securityContext"):
        assert ours[key] == theirs[key], key
    assert ours["volumeMounts"] == theirs["volumeMounts"]

    our_set, their_set = statefulset(helm_docs)["spec"], statefulset(base_docs)["spec"]
    for key in STATEFULSET_FIELDS:
        assert our_set[key] == their_set[key], key
    # The checkpoint claim alike but for its labels (the selector's: Helm's differ).
    (our_claim,), (their_claim,) = our_set["volumeClaimTemplates"], their_set["volumeClaimTemplates"]
    assert our_claim["metadata"]["name"] == their_claim["metadata"]["name"] == CHECKPOINT_VOLUME
    assert our_claim["spec"] == their_claim["spec"]

    our_pod, their_pod = pod_spec(helm_docs), pod_spec(base_docs)
    for key in POD_FIELDS:
        assert our_pod[key] == their_pod[key], key
    # Volumes alike but for the ConfigMap names (kustomize appends a content hash).
    for volume in (*our_pod["volumes"], *their_pod["volumes"]):
        volume.get("configMap", {}).pop("name", None)
    assert our_pod["volumes"] == their_pod["volumes"]

    our_env = container_environment(helm_docs, ours)
    their_env = container_environment(base_docs, theirs)
    assert our_env == their_env  # the base's SASL password reference is optional: left out
    assert {e["name"] for e in theirs["env"]} - {e["name"] for e in ours["env"]} == {
        "SLOGUARD_KAFKA__SASL_PASSWORD"
    }

    slos = next(doc for doc in base_docs if doc["metadata"]["name"].startswith("sloguard-slos-"))
    assert slo_file(helm_docs) == slos["data"]["slos.yaml"]
    assert one(helm_docs, "PrometheusRule")["spec"] == one(base_docs, "PrometheusRule")["spec"]
    assert scraped_service(helm_docs)["spec"]["ports"] == scraped_service(base_docs)["spec"]["ports"]
    for key in ("clusterIP", "ports"):
        assert headless_service(helm_docs)["spec"][key] == headless_service(base_docs)["spec"][key], key
    our_selector = one(helm_docs, "ServiceMonitor")["spec"]["selector"]
    their_selector = one(base_docs, "ServiceMonitor")["spec"]["selector"]
    assert our_selector["matchExpressions"] == their_selector["matchExpressions"]
    for kind, key in (("ServiceMonitor", "endpoints"), ("PodDisruptionBudget", "maxUnavailable")):
        assert one(helm_docs, kind)["spec"][key] == one(base_docs, kind)["spec"][key], kind
    for key in ("policyTypes", "ingress", "egress"):
        assert one(helm_docs, "NetworkPolicy")["spec"][key] == one(base_docs, "NetworkPolicy")["spec"][key]
    assert one(helm_docs, "ServiceAccount")["automountServiceAccountToken"] is False


def test_optional_objects_can_be_disabled() -> None:
    docs = render(
        {
            "serviceMonitor": {"enabled": False},
            "prometheusRule": {"enabled": False},
            "podDisruptionBudget": {"enabled": False},
            "networkPolicy": {"enabled": False},
            "serviceAccount": {"create": False},
        }
    )
    assert sorted(doc["kind"] for doc in docs) == [
        "ConfigMap",
        "ConfigMap",
        "Service",
        "Service",
        "StatefulSet",
    ]
    assert pod_spec(docs)["serviceAccountName"] == "default"
    validate_core_kinds(docs)
    assert_single_consumer(docs)


def test_mutual_tls_mounts_the_client_certificate() -> None:
    values = {
        "kafka": {
            "securityProtocol": "SSL",
            "tls": {"existingSecret": "kafka-client", "certKey": "tls.crt", "keyKey": "tls.key"},
        }
    }
    docs = render(values)
    validate_core_kinds(docs)
    env = container_environment(docs, sloguard_container(docs))
    assert env["SLOGUARD_KAFKA__SSL_CAFILE"] == "/etc/sloguard-kafka-tls/ca.crt"
    assert env["SLOGUARD_KAFKA__SSL_CERTFILE"] == "/etc/sloguard-kafka-tls/tls.crt"
    assert env["SLOGUARD_KAFKA__SSL_KEYFILE"] == "/etc/sloguard-kafka-tls/tls.key"
    volume = next(v for v in pod_spec(docs)["volumes"] if "secret" in v)
    assert volume["secret"]["secretName"] == "kafka-client"
    assert [item["key"] for item in volume["secret"]["items"]] == ["ca.crt", "tls.crt", "tls.key"]


# --- values.schema.json -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "named"),
    [
        pytest.param({"replicas": 2}, "'replicas'", id="typo-top-level"),
        pytest.param({"serviceMonitor": {"enabeld": True}}, "'enabeld'", id="typo-nested"),
        pytest.param(
            {"settings": {"SLOGUARD_SHUTDOWN_TIMEOUT": 10}}, "SLOGUARD_SHUTDOWN_TIMEOUT", id="typo-setting"
        ),
        pytest.param(
            {"securityContext": {"readOnlyRootFileSystem": True}},
            "'readOnlyRootFileSystem'",
            id="typo-hardening",
        ),
        pytest.param({"replicaCount": "one"}, "/replicaCount", id="type-replicas"),
        pytest.param({"replicaCount": 2}, "/replicaCount", id="second-replica"),
        pytest.param({"kafka": {"topics": "requests"}}, "/kafka/topics", id="type-topics"),
        pytest.param(
            {"settings": {"SLOGUARD_SHUTDOWN_TIMEOUT_SECONDS": "soon"}},
            "/settings/SLOGUARD_SHUTDOWN_TIMEOUT_SECONDS",
            id="type-setting",
        ),
        pytest.param({"kafka": {"securityProtocol": "TLS"}}, "/kafka/securityProtocol", id="enum-protocol"),
        pytest.param(
            {"settings": {"SLOGUARD_CHECKPOINT__DIR": "/data"}},
            "SLOGUARD_CHECKPOINT__DIR",
            id="chart-owned-dir",
        ),
        pytest.param(
            {"settings": {"SLOGUARD_CHECKPOINT__INTERVAL": 10}},
            "SLOGUARD_CHECKPOINT__INTERVAL",
            id="chart-owned-interval",
        ),
        pytest.param({"persistence": {"enabeld": False}}, "'enabeld'", id="typo-persistence"),
        pytest.param({"persistence": {"size": "lots"}}, "/persistence/size", id="size-not-a-quantity"),
        pytest.param(
            {"persistence": {"accessModes": ["ReadOnlyMany"]}},
            "/persistence/accessModes",
            id="read-only-claim",
        ),
        pytest.param({"checkpoint": {"interval": 0}}, "/checkpoint/interval", id="interval-zero"),
        pytest.param({"checkpoint": {"keep": 0}}, "/checkpoint/keep", id="keep-zero"),
        pytest.param(
            {"slos": {"apiVersion": "sloguard/v2", "slos": [{"name": "x"}]}}, "/slos/apiVersion", id="slos"
        ),
        pytest.param({"mode": "sharded"}, "/mode", id="enum-mode"),
        pytest.param({"settings": {"SLOGUARD_STAGE": "merge"}}, "SLOGUARD_STAGE", id="chart-owned-stage"),
        pytest.param(
            {"settings": {"SLOGUARD_SCALE__PARTIALS_PARTITIONS": 6}},
            "SLOGUARD_SCALE__PARTIALS_PARTITIONS",
            id="chart-owned-partitions",
        ),
        pytest.param(
            {"scaled": {"topics": {"partialsPartitions": 0}}},
            "/scaled/topics/partialsPartitions",
            id="no-partials-partitions",
        ),
        pytest.param(
            {"scaled": {"partial": {"replicas": "2"}}}, "/scaled/partial/replicas", id="type-stage-1"
        ),
        pytest.param({"scaled": {"partial": {"autoscalling": {}}}}, "'autoscalling'", id="typo-autoscaling"),
        pytest.param(
            {"scaled": {"merge": {"checkpointStore": "nfs"}}},
            "/scaled/merge/checkpointStore",
            id="enum-checkpoint-store",
        ),
        pytest.param(
            {"scaled": {"merge": {"directory": {"size": "big"}}}},
            "/scaled/merge/directory/size",
            id="shared-size-not-a-quantity",
        ),
    ],
)
def test_schema_refuses(values: dict[str, Any], named: str) -> None:
    problems = "\n".join(lint_problems(values))
    assert named in problems
    with pytest.raises(helm.HelmValuesError, match="values don't meet the specifications") as exc:
        render(values)
    assert named in str(exc.value)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        pytest.param(
            {"kafka": {"securityProtocol": "SASL_SSL", "sasl": {"mechanism": "PLAIN", "username": "u"}}},
            "needs kafka.sasl.existingSecret",
            id="sasl-without-password",
        ),
        pytest.param(
            {"kafka": {"securityProtocol": "SASL_SSL", "sasl": {"username": "u", "existingSecret": "s"}}},
            "needs kafka.sasl.mechanism",
            id="sasl-without-mechanism",
        ),
        pytest.param(
            {"kafka": {"sasl": {"mechanism": "PLAIN", "username": "u", "existingSecret": "s"}}},
            "not SASL_PLAINTEXT or SASL_SSL",
            id="sasl-without-sasl-protocol",
        ),
        pytest.param(
            {"kafka": {"tls": {"existingSecret": "ca"}}}, "not SSL or SASL_SSL", id="tls-without-ssl-protocol"
        ),
        pytest.param(
            {"kafka": {"securityProtocol": "SSL", "tls": {"existingSecret": "c", "certKey": "tls.crt"}}},
            "go together",
            id="cert-without-key",
        ),
        pytest.param(
            {"terminationGracePeriodSeconds": 20},
            "must be longer than settings.SLOGUARD_SHUTDOWN_TIMEOUT_SECONDS",
            id="grace-period-too-short",
        ),
        pytest.param(
            {"settings": {"SLOGUARD_SHUTDOWN_TIMEOUT_SECONDS": None}, "terminationGracePeriodSeconds": 20},
            "must be longer than settings.SLOGUARD_SHUTDOWN_TIMEOUT_SECONDS",
            id="grace-period-vs-daemon-default",
        ),
        pytest.param(
            {"slos": {"apiVersion": "sloguard/v1", "slos": [{"name": "mine"}]}},
            "no group sloguard-mine for the SLO mine",
            id="rules-not-regenerated",
        ),
        pytest.param(
            {"prometheusRule": {"groups": [{"name": "sloguard-gone", "rules": []}]}},
            "no group sloguard-checkout-availability for the SLO checkout-availability",
            id="rules-for-other-slos",
        ),
        pytest.param(
            {"prometheusRule": {"groups": [*DEFAULT_GROUPS, {"name": "sloguard-gone", "rules": []}]}},
            "has the group sloguard-gone but slos has no such SLO",
            id="rules-for-a-removed-slo",
        ),
        pytest.param(
            {"prometheusRule": {"groups": "groups: {}"}},
            "expected a list of rule groups",
            id="rules-file-without-groups",
        ),
        pytest.param(
            {"fullnameOverride": "s" * 53},
            "more than 52: the StatefulSet's pods would get a controller-revision-hash label",
            id="name-too-long-for-statefulset",
        ),
        pytest.param(
            {"mode": "scaled", "fullnameOverride": "s" * 47},
            "s{47}-merge has 53 characters, more than 52.*46 characters at most with mode scaled",
            id="name-too-long-for-merge-statefulset",
        ),
        pytest.param(
            {"mode": "scaled", "scaled": {"topics": {"partialsPartitions": 2}, "merge": {"replicas": 3}}},
            r"scaled.merge.replicas \(3\) is more than scaled.topics.partialsPartitions \(2\)",
            id="more-merge-pods-than-partitions",
        ),
        pytest.param(
            {
                "mode": "scaled",
                "scaled": {"partial": {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 4}}},
            },
            r"minReplicas \(5\) is more than maxReplicas \(4\)",
            id="autoscaling-min-above-max",
        ),
    ],
)
def test_templates_refuse_inconsistent_values(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmRenderError, match=message):
        render(values)


def _schema_of(field: FieldInfo) -> dict[str, Any]:
    """The JSON schema the chart should give one daemon setting (from its pydantic field)."""
    annotation: Any = field.annotation
    args = typing.get_args(annotation)
    if type(None) in args:
        (annotation,) = (arg for arg in args if arg is not type(None))
    schema: dict[str, Any]
    if typing.get_origin(annotation) is typing.Literal:
        schema = {"type": "string", "enum": list(typing.get_args(annotation))}
    else:
        schema = {"type": {float: "number", int: "integer", bool: "boolean", str: "string"}[annotation]}
    for meta in field.metadata:
        if isinstance(meta, Gt):
            schema["exclusiveMinimum"] = meta.gt
        elif isinstance(meta, Ge):
            schema["minimum"] = meta.ge
        elif isinstance(meta, Le):
            schema["maximum"] = meta.le
    return schema


def _settings_fields(
    model: type[BaseModel] = Settings, prefix: str = ENV_PREFIX
) -> Iterator[tuple[str, FieldInfo]]:
    """Every daemon setting as (environment variable, field); nested models with ``__``."""
    for name, field in model.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            yield from _settings_fields(field.annotation, f"{prefix}{name.upper()}__")
        else:
            yield f"{prefix}{name.upper()}", field


def test_schema_settings_are_the_daemons() -> None:
    """`settings` takes exactly the daemon's settings the chart does not set itself, with the daemon's
    types and bounds (sloguard/settings.py): a new setting must be added to values.schema.json."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    committed = schema["properties"]["settings"]["properties"]
    expected = {name: _schema_of(field) for name, field in _settings_fields() if name not in CHART_OWNED}
    assert {
        name: {k: v for k, v in s.items() if k != "description"} for name, s in committed.items()
    } == expected
    assert schema["properties"]["settings"]["additionalProperties"] is False
    assert {name for name, _ in _settings_fields()} >= CHART_OWNED


def test_schema_checkpoint_is_the_daemons() -> None:
    """`checkpoint.interval` and `checkpoint.keep` have the daemon's types and bounds."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    committed = schema["properties"]["checkpoint"]["properties"]
    expected = {
        name: _schema_of(field) for name, field in CheckpointSettings.model_fields.items() if name != "dir"
    }
    assert {
        name: {k: v for k, v in s.items() if k != "description"} for name, s in committed.items()
    } == expected
    assert {name: DEFAULTS["checkpoint"][name] for name in expected} == {
        name: CheckpointSettings.model_fields[name].default for name in expected
    }


# --- mode scaled (docs/scaling.md) ----------------------------------------------------------------------

SCALED_VALUES = CHART / "ci" / "scaled-values.yaml"


def scaled_values(example: bool) -> dict[str, Any]:
    """``{mode: scaled}``, or ``-f ci/example-values.yaml -f ci/scaled-values.yaml`` (which only adds
    top-level keys)."""
    if not example:
        return {"mode": "scaled"}
    scaled = helm.values_from_yaml(SCALED_VALUES.read_text())
    assert not scaled.keys() & example_values().keys()
    return {**example_values(), **scaled}


@pytest.fixture(scope="module", params=["scaled", "scaled-example"])
def scaled(request: pytest.FixtureRequest) -> tuple[dict[str, Any], list[Doc]]:
    values = scaled_values(request.param == "scaled-example")
    return values, render(values)


def test_scaled_lint_strict() -> None:
    assert lint_problems(scaled_values(False)) == []
    assert lint_problems(scaled_values(True)) == []
    assert lint_problems(helm.values_from_yaml(SCALED_VALUES.read_text())) == []  # alone, as chart-testing


def test_scaled_renders_and_validates(scaled: tuple[dict[str, Any], list[Doc]], tmp_path: Path) -> None:
    """Every object of mode scaled through the same checks as the single process's; the PrometheusRule
    is the single mode's (rules work unchanged in every mode)."""
    values, docs = scaled
    autoscaled = value(values, "scaled", "partial", "autoscaling", "enabled")
    extra = ["HorizontalPodAutoscaler"] if autoscaled else []
    assert sorted(doc["kind"] for doc in docs) == sorted(SCALED_KINDS + extra)
    assert {doc["metadata"]["namespace"] for doc in docs} == {NAMESPACE}
    validate_core_kinds(docs)
    validate_operator_kinds(docs)
    single = render({k: v for k, v in values.items() if k not in ("mode", "scaled")})
    assert one(docs, "PrometheusRule") == one(single, "PrometheusRule")
    assert one(docs, "ServiceMonitor") == one(single, "ServiceMonitor")
    check_rules_with_promtool(one(docs, "PrometheusRule"), tmp_path)


def test_scaled_shape(scaled: tuple[dict[str, Any], list[Doc]]) -> None:
    values, docs = scaled
    autoscaled = value(values, "scaled", "partial", "autoscaling", "enabled")
    assert_scaled_shape(
        docs,
        partial_replicas=None if autoscaled else value(values, "scaled", "partial", "replicas"),
        merge_replicas=value(values, "scaled", "merge", "replicas"),
    )
    names = {doc["kind"]: doc["metadata"]["name"] for doc in docs}
    assert names["Deployment"] == f"{RELEASE}-partial"
    assert names["StatefulSet"] == f"{RELEASE}-merge"
    assert stage_workload(docs, "merge")["spec"]["podManagementPolicy"] == "Parallel"
    merge_resources = value(values, "scaled", "merge", "resources") or value(values, "resources")
    assert sloguard_container(docs, stage_workload(docs, "merge"))["resources"] == merge_resources
    assert sloguard_container(docs, stage_workload(docs, "partial"))["resources"] == value(
        values, "resources"
    )


def test_scaled_stages_accept_their_settings(
    scaled: tuple[dict[str, Any], list[Doc]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each stage's environment and command line through the daemon's parsers: its stage, the SLO file,
    the Kafka connection of the single mode, no checkpoint directory (stage 2 checkpoints to the Kafka
    topic by default), the partition counts from scaled.topics."""
    values, docs = scaled
    single = render({k: v for k, v in values.items() if k not in ("mode", "scaled")})
    kafka = daemon_settings(single, monkeypatch).kafka
    for stage in STAGES:
        settings = daemon_settings(
            docs, monkeypatch, container=sloguard_container(docs, stage_workload(docs, stage))
        )
        assert settings.stage == stage
        assert settings.config == Path("/etc/sloguard/slos.yaml")
        assert settings.kafka == kafka
        assert settings.checkpoint.dir is None
        assert settings.scale.partials_partitions == value(values, "scaled", "topics", "partialsPartitions")
        assert settings.scale.checkpoints_partitions == value(
            values, "scaled", "topics", "checkpointsPartitions"
        )
        assert pod_spec(docs, stage_workload(docs, stage))["terminationGracePeriodSeconds"] > (
            settings.shutdown_timeout_seconds
        )
    assert "Scaled out" in notes(values)
    assert "LOST ON RESTART" not in notes(values)


def test_scaled_topics_job_is_a_hook(
    scaled: tuple[dict[str, Any], list[Doc]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`sloguard topics create` runs before every install and upgrade, replaced each time, with the
    partition counts from the values; a pre-install hook cannot use the release's own ServiceAccount or
    ConfigMap (they do not exist yet)."""
    values, docs = scaled
    assert_topics_job(
        docs,
        monkeypatch,
        partials=value(values, "scaled", "topics", "partialsPartitions"),
        checkpoints=value(values, "scaled", "topics", "checkpointsPartitions"),
    )
    job = topics_job(docs)
    assert job["metadata"]["annotations"] == {
        "helm.sh/hook": "pre-install,pre-upgrade",
        "helm.sh/hook-weight": "0",
        "helm.sh/hook-delete-policy": "before-hook-creation,hook-succeeded",
    }
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "default"
    assert "envFrom" not in pod["containers"][0]
    # Kafka files from the same Secret as the stages'.
    stage_pod = pod_spec(docs, stage_workload(docs, "partial"))
    assert [v for v in pod["volumes"] if "secret" in v] == [v for v in stage_pod["volumes"] if "secret" in v]
    no_job = render(
        {**values, "scaled": {**values.get("scaled", {}), "topics": {"create": {"enabled": False}}}}
    )
    assert "Job" not in {doc["kind"] for doc in no_job}


@pytest.mark.kafka
def test_scaled_topics_job_creates_the_topics(
    broker: LocalBroker, new_topic: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Job's exact command line and environment (the broker address and input topic swapped for a
    Tansu's) create the three internal topics with the partition counts of the values; run again, it
    leaves them alone."""
    docs = render(
        {"mode": "scaled", "scaled": {"topics": {"partialsPartitions": 5, "checkpointsPartitions": 2}}}
    )
    container = sloguard_container(docs, topics_job(docs), name="topics")
    env = container_environment(docs, container)
    topic = new_topic(partitions=3)
    env |= {"SLOGUARD_KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap, "SLOGUARD_KAFKA__TOPICS": topic}
    set_environment(env, monkeypatch)
    internal = [f"{topic}-sloguard-{name}" for name in ("partials", "cuts", "checkpoints")]
    assert main(container["args"]) == 0
    assert main(container["args"]) == 0
    kafka = load_settings().kafka.to_config()
    assert asyncio.run(partition_counts(kafka, internal)) == dict(zip(internal, [5, 3, 2], strict=True))


def test_scaled_checkpoints_in_a_shared_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    """scaled.merge.checkpointStore=directory: one ReadWriteMany claim (kept on uninstall), mounted by
    every stage-2 pod at the checkpoint directory; or an existing claim, then none is created."""
    values = {
        "mode": "scaled",
        "scaled": {
            "merge": {
                "checkpointStore": "directory",
                "directory": {"size": "20Gi", "storageClassName": "nfs"},
            }
        },
    }
    docs = render(values)
    validate_core_kinds(docs)
    claim = one(docs, "PersistentVolumeClaim")
    assert claim["metadata"]["name"] == f"{RELEASE}-checkpoints"
    assert claim["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert claim["spec"] == {
        "accessModes": ["ReadWriteMany"],
        "storageClassName": "nfs",
        "resources": {"requests": {"storage": "20Gi"}},
    }
    merge = stage_workload(docs, "merge")
    container = sloguard_container(docs, merge)
    assert {"name": CHECKPOINT_VOLUME, "mountPath": CHECKPOINT_DIR} in container["volumeMounts"]
    volumes = {v["name"]: v for v in pod_spec(docs, merge)["volumes"]}
    assert volumes[CHECKPOINT_VOLUME] == {
        "name": CHECKPOINT_VOLUME,
        "persistentVolumeClaim": {"claimName": f"{RELEASE}-checkpoints"},
    }
    settings = daemon_settings(docs, monkeypatch, container=container)
    assert settings.checkpoint.dir == Path(CHECKPOINT_DIR)
    assert_scaled_shape(docs)  # stage 1 still stateless
    assert f"ReadWriteMany claim {RELEASE}-checkpoints" in notes(values)

    existing = render(
        {
            "mode": "scaled",
            "scaled": {
                "merge": {"checkpointStore": "directory", "directory": {"existingClaim": "shared-nfs"}}
            },
        }
    )
    assert "PersistentVolumeClaim" not in {doc["kind"] for doc in existing}
    volumes = {v["name"]: v for v in pod_spec(existing, stage_workload(existing, "merge"))["volumes"]}
    assert volumes[CHECKPOINT_VOLUME]["persistentVolumeClaim"] == {"claimName": "shared-nfs"}


def test_scaled_autoscaling_on_consumer_lag() -> None:
    """An autoscaling/v2 HPA on the Pods metric sloguard_consumer_lag scales the stage-1 Deployment,
    which then has no replicas of its own (an upgrade would reset the HPA's)."""
    values = {
        "mode": "scaled",
        "scaled": {"partial": {"autoscaling": {"enabled": True, "maxReplicas": 6, "targetLagPerPod": 50000}}},
    }
    docs = render(values)
    validate_core_kinds(docs)
    hpa = one(docs, "HorizontalPodAutoscaler")
    deployment = stage_workload(docs, "partial")
    assert "replicas" not in deployment["spec"]
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 6)
    assert hpa["spec"]["metrics"] == [
        {
            "type": "Pods",
            "pods": {
                "metric": {"name": "sloguard_consumer_lag"},
                "target": {"type": "AverageValue", "averageValue": "50000"},
            },
        }
    ]
    assert hpa["spec"]["behavior"] == {"scaleDown": {"stabilizationWindowSeconds": 600}}
    assert "autoscaled 1-6 pods on consumer lag" in notes(values)
    assert "HorizontalPodAutoscaler" not in {doc["kind"] for doc in render({"mode": "scaled"})}


def test_scaled_optional_objects_can_be_disabled() -> None:
    docs = render(
        {
            "mode": "scaled",
            "serviceMonitor": {"enabled": False},
            "prometheusRule": {"enabled": False},
            "podDisruptionBudget": {"enabled": False},
            "networkPolicy": {"enabled": False},
            "serviceAccount": {"create": False},
            "scaled": {"topics": {"create": {"enabled": False}}},
        }
    )
    assert sorted(doc["kind"] for doc in docs) == [
        "ConfigMap",
        "ConfigMap",
        "Deployment",
        "Service",
        "Service",
        "StatefulSet",
    ]
    validate_core_kinds(docs)


SCALED_WORKLOAD_FIELDS = {
    "partial": ("replicas", "strategy", "revisionHistoryLimit"),
    "merge": ("replicas", "podManagementPolicy", "updateStrategy", "revisionHistoryLimit"),
}


def test_scaled_matches_the_kustomize_overlay() -> None:
    """mode scaled with default values deploys what deploy/kubernetes/overlays/scaled does: per stage
    the same workload policy, container (args, ports, probes, resources, security, mounts), pod fields,
    environment and volumes; the same Job command, settings and hardening; the same selections (the
    headless Service and each budget one stage's). Names and labels differ (Helm's conventions)."""
    helm_docs = render({"mode": "scaled"})
    base_docs = kustomize(KUSTOMIZE_SCALED)
    for stage in STAGES:
        ours, theirs = stage_workload(helm_docs, stage), stage_workload(base_docs, stage)
        for key in SCALED_WORKLOAD_FIELDS[stage]:
            assert ours["spec"][key] == theirs["spec"][key], (stage, key)
        our_container, their_container = (
            sloguard_container(helm_docs, ours),
            sloguard_container(base_docs, theirs),
        )
        for key in (
            "args",
            "ports",
            "livenessProbe",
            "readinessProbe",
            "resources",
            "securityContext",
            "volumeMounts",
        ):
            assert our_container[key] == their_container[key], (stage, key)
        our_pod, their_pod = pod_spec(helm_docs, ours), pod_spec(base_docs, theirs)
        for key in POD_FIELDS:
            assert our_pod[key] == their_pod[key], (stage, key)
        for volume in (*our_pod["volumes"], *their_pod["volumes"]):
            volume.get("configMap", {}).pop("name", None)
        assert our_pod["volumes"] == their_pod["volumes"], stage
        assert container_environment(helm_docs, our_container) == container_environment(
            base_docs, their_container
        )
    our_job, their_job = topics_job(helm_docs), topics_job(base_docs)
    for key in ("backoffLimit", "activeDeadlineSeconds"):
        assert our_job["spec"][key] == their_job["spec"][key], key
    ours, theirs = (
        sloguard_container(helm_docs, our_job, "topics"),
        sloguard_container(base_docs, their_job, "topics"),
    )
    for key in ("args", "resources", "securityContext", "volumeMounts"):
        assert ours[key] == theirs[key], key
    # The overlay's Job reads the settings ConfigMap (no hooks in kustomize); the chart inlines them.
    assert container_environment(helm_docs, ours) == container_environment(base_docs, theirs)
    for doc in (our_job, their_job):
        assert doc["spec"]["template"]["metadata"]["labels"][COMPONENT] == "topics"
