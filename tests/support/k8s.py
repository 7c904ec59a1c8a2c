"""Checks shared by the kustomize (test_kubernetes.py) and Helm (test_helm.py) manifest tests.

Core kinds are validated against the Kubernetes OpenAPI schemas (``kubernetes-validate``, strict: unknown
fields are errors), the prometheus-operator kinds with the cloudcoil models, and a PrometheusRule's groups
with ``promtool check rules``. Single mode: sloguard runs as a single-replica StatefulSet whose
checkpoints (SLOGUARD_CHECKPOINT__DIR) are on a volume from its ``volumeClaimTemplates``; a headless
governing Service sits next to the scraped one. Scaled mode (docs/scaling.md): stage 1 a Deployment,
stage 2 a StatefulSet, and a Job running ``sloguard topics create``; the same scraped Service selects both
stages.
"""

from __future__ import annotations

import os
import subprocess
import typing
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from cloudcoil.models.prometheus_operator.v1 import PrometheusRule, ServiceMonitor

from sloguard.cli import _parser as cli_parser
from sloguard.cli import _run_overrides as run_overrides
from sloguard.settings import ENV_PREFIX, Settings, load_settings
from tests.support.tools import require

#: Kubernetes schema version for kubernetes-validate (one it ships; see `kubernetes-validate --help`).
K8S_VERSION = "1.30.0"
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}
#: Every kind the manifests consist of (kustomize base and the Helm chart alike).
KINDS = sorted(
    [
        "ConfigMap",  # the SLO file
        "ConfigMap",  # settings (SLOGUARD_* environment variables)
        "StatefulSet",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "PrometheusRule",
        "Service",  # scraped by the ServiceMonitor
        "Service",  # the StatefulSet's governing Service (headless)
        "ServiceAccount",
        "ServiceMonitor",
    ]
)
#: Every kind of the scaled-out manifests (kustomize overlays/scaled and the chart's mode scaled).
SCALED_KINDS = sorted(
    [
        "ConfigMap",  # the SLO file
        "ConfigMap",  # settings
        "Deployment",  # stage 1, --stage partial
        "StatefulSet",  # stage 2, --stage merge
        "Job",  # sloguard topics create
        "NetworkPolicy",  # both stages
        "PodDisruptionBudget",  # stage 1
        "PodDisruptionBudget",  # stage 2
        "PrometheusRule",
        "Service",  # scraped: both stages
        "Service",  # headless: stage 2's governing Service
        "ServiceAccount",
        "ServiceMonitor",
    ]
)
STAGES = ("partial", "merge")
COMPONENT = "app.kubernetes.io/component"
#: The single process's command line; a stage's adds ``--stage NAME``.
RUN_ARGS = ["run", "--config", "/etc/sloguard/slos.yaml"]
#: The pod volume (and claim template) holding the daemon's checkpoints, and where it is mounted.
CHECKPOINT_VOLUME = "checkpoints"
CHECKPOINT_DIR = "/var/lib/sloguard"
CHECKPOINT_DIR_ENV = "SLOGUARD_CHECKPOINT__DIR"
#: Labels that change with a release; a StatefulSet's volumeClaimTemplates are immutable, so none may be
#: on them (every upgrade would be refused).
CHANGING_LABELS = {"helm.sh/chart", "app.kubernetes.io/version"}
WRITABLE_ACCESS_MODES = {"ReadWriteOnce", "ReadWriteOncePod", "ReadWriteMany"}
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


def statefulset(docs: list[Doc]) -> Doc:
    return one(docs, "StatefulSet")


def pod_spec(docs: list[Doc], workload: Doc | None = None) -> Doc:
    """The pod spec of ``workload`` (default: the one StatefulSet)."""
    spec: Doc = (workload or statefulset(docs))["spec"]["template"]["spec"]
    return spec


def sloguard_container(docs: list[Doc], workload: Doc | None = None, name: str = "sloguard") -> Doc:
    (container,) = pod_spec(docs, workload)["containers"]
    assert container["name"] == name
    return typing.cast(Doc, container)


def stage_workload(docs: list[Doc], stage: str) -> Doc:
    """Stage 1's Deployment or stage 2's StatefulSet."""
    return one(docs, {"partial": "Deployment", "merge": "StatefulSet"}[stage])


def topics_job(docs: list[Doc]) -> Doc:
    return one(docs, "Job")


def pod_labels(workload: Doc) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def is_headless(service: Doc) -> bool:
    return bool(service["spec"].get("clusterIP") == "None")


def scraped_service(docs: list[Doc]) -> Doc:
    """The one Service that is not headless: the one Prometheus scrapes."""
    (service,) = (doc for doc in docs if doc["kind"] == "Service" and not is_headless(doc))
    return service


def headless_service(docs: list[Doc]) -> Doc:
    (service,) = (doc for doc in docs if doc["kind"] == "Service" and is_headless(doc))
    return service


def selects(selector: Doc, labels: dict[str, str]) -> bool:
    """Whether a LabelSelector (matchLabels and matchExpressions) selects an object with ``labels``."""
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        matched = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not matched:
            return False
    return True


def validate_core_kinds(docs: list[Doc]) -> None:
    """Every object but the prometheus-operator ones against the Kubernetes schemas, strictly; the
    StatefulSet's claim templates also as PersistentVolumeClaims of their own."""
    for doc in docs:
        if doc["kind"] not in CRD_KINDS:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        if doc["kind"] == "StatefulSet":
            for template in doc["spec"].get("volumeClaimTemplates", []):
                claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", **template}
                kubernetes_validate.validate(claim, K8S_VERSION, strict=True)


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


def set_environment(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``env`` the process's SLOGUARD_* environment (for the test)."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def daemon_settings(
    docs: list[Doc], monkeypatch: pytest.MonkeyPatch, secret: str = "stub", container: Doc | None = None
) -> Settings:
    """The container's environment (Secrets stubbed) and, for `sloguard run`, its command line (flags win
    over the environment) through the daemon's own parsers. Default container: the StatefulSet's."""
    container = container or sloguard_container(docs)
    set_environment(container_environment(docs, container, secret=secret), monkeypatch)
    args = cli_parser().parse_args(container["args"])
    return load_settings(run_overrides(args) if args.command == "run" else {})


def shutdown_timeout_s(env: dict[str, str]) -> float:
    """The daemon's shutdown bound in this environment."""
    value = env.get("SLOGUARD_SHUTDOWN_TIMEOUT_SECONDS")
    return DEFAULT_SHUTDOWN_TIMEOUT_S if value is None else float(value)


def assert_hardened(pod: Doc, container: Doc) -> None:
    """The pod runs as non-root with a read-only root filesystem, no privilege escalation, no
    capabilities, the runtime's seccomp profile, no API token, no Service links, and resources."""
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    assert pod["enableServiceLinks"] is False
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] != 0
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert {"requests", "limits"} <= container["resources"].keys()


def assert_locked_down(docs: list[Doc], workload: Doc | None = None, stage: str = "") -> None:
    """The workload's pod (default: the single StatefulSet's) is hardened (`assert_hardened`), runs
    `sloguard run` (with ``--stage``), has probes on /healthz and /readyz, and waits longer than the
    daemon's shutdown bound before killing it. Its fsGroup lets the non-root user write a checkpoint
    volume."""
    pod = pod_spec(docs, workload)
    container = sloguard_container(docs, workload)
    assert_hardened(pod, container)
    assert pod["securityContext"]["fsGroup"] not in {None, 0}
    assert container["args"] == ([*RUN_ARGS, "--stage", stage] if stage else RUN_ARGS)
    assert container["ports"] == [{"name": "metrics", "containerPort": 9464, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    bound = shutdown_timeout_s(container_environment(docs, container))
    assert pod["terminationGracePeriodSeconds"] > bound


def assert_single_consumer(docs: list[Doc], replicas: int = 1) -> None:
    """One pod, replaced only after the old one has terminated (a StatefulSet's rolling update: never two
    consumers sharing the state), governed by the headless Service, which selects the pod."""
    spec = statefulset(docs)["spec"]
    assert spec["replicas"] == replicas
    assert spec["podManagementPolicy"] == "OrderedReady"
    assert spec["updateStrategy"] == {"type": "RollingUpdate"}
    pod_labels = spec["template"]["metadata"]["labels"]
    assert selects(spec["selector"], pod_labels)
    governing = headless_service(docs)
    assert spec["serviceName"] == governing["metadata"]["name"]
    assert governing["spec"]["selector"].items() <= pod_labels.items()
    assert scraped_service(docs)["metadata"]["name"] != spec["serviceName"]


def assert_scraped_once(docs: list[Doc]) -> None:
    """The ServiceMonitor selects the scraped Service and not the headless one (whose endpoints are the
    same pod: every series would be scraped twice)."""
    monitor = one(docs, "ServiceMonitor")
    chosen = [
        doc["metadata"]["name"]
        for doc in docs
        if doc["kind"] == "Service" and selects(monitor["spec"]["selector"], doc["metadata"]["labels"])
    ]
    assert chosen == [scraped_service(docs)["metadata"]["name"]]


def assert_checkpoints_on_volume(docs: list[Doc], persistent: bool = True) -> None:
    """SLOGUARD_CHECKPOINT__DIR is exactly where the writable `checkpoints` volume is mounted; the volume
    comes from a ReadWriteOnce claim template (``persistent``) or is an emptyDir. Claim templates cannot
    change on an existing StatefulSet, so theirs carry no label that changes with a release."""
    container = sloguard_container(docs)
    env = container_environment(docs, container)
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    mount = mounts[CHECKPOINT_VOLUME]
    assert mount["mountPath"] == CHECKPOINT_DIR
    assert not mount.get("readOnly", False)
    assert env[CHECKPOINT_DIR_ENV] == mount["mountPath"]
    # Set next to the mount, not in a settings ConfigMap that could drift from it.
    assert {"name": CHECKPOINT_DIR_ENV, "value": CHECKPOINT_DIR} in container["env"]
    spec = statefulset(docs)["spec"]
    volumes = {v["name"]: v for v in spec["template"]["spec"]["volumes"]}
    claims = {t["metadata"]["name"]: t for t in spec.get("volumeClaimTemplates", [])}
    if not persistent:
        assert claims == {}
        assert "emptyDir" in volumes[CHECKPOINT_VOLUME]
        return
    assert CHECKPOINT_VOLUME not in volumes  # the claim template provides it
    assert list(claims) == [CHECKPOINT_VOLUME]
    claim = claims[CHECKPOINT_VOLUME]
    assert claim["spec"]["accessModes"]
    assert set(claim["spec"]["accessModes"]) <= WRITABLE_ACCESS_MODES
    assert claim["spec"]["resources"]["requests"]["storage"]
    labels = claim["metadata"].get("labels", {})
    assert not labels.keys() & CHANGING_LABELS, labels


def assert_scaled_shape(docs: list[Doc], partial_replicas: int | None = 2, merge_replicas: int = 2) -> None:
    """Scaled out: stage 1 a Deployment and stage 2 a StatefulSet, each running `sloguard run --stage`
    locked down like the single process, their pods told apart by app.kubernetes.io/component. The
    scraped Service and the NetworkPolicy select both stages' pods, the ServiceMonitor only the scraped
    Service, the headless Service only stage 2's, each PodDisruptionBudget exactly one stage's (a pod
    under two budgets cannot be evicted), and nothing selects the topics Job's pod. Stage 1 keeps no
    state; stage 2 has no claim template (one volume per pod would not follow a partition)."""
    pods = {stage: pod_labels(stage_workload(docs, stage)) for stage in STAGES}
    pods["topics"] = pod_labels(topics_job(docs))

    def chosen(selector: Doc) -> set[str]:
        return {name for name, labels in pods.items() if selects(selector, labels)}

    for stage in STAGES:
        workload = stage_workload(docs, stage)
        assert pods[stage][COMPONENT] == stage
        assert chosen(workload["spec"]["selector"]) == {stage}
        assert_locked_down(docs, workload, stage)
    partial = stage_workload(docs, "partial")["spec"]
    assert partial.get("replicas") == partial_replicas
    assert partial["strategy"]["type"] == "RollingUpdate"
    merge = stage_workload(docs, "merge")["spec"]
    assert merge["replicas"] == merge_replicas
    assert merge["updateStrategy"] == {"type": "RollingUpdate"}
    assert "volumeClaimTemplates" not in merge
    assert merge["serviceName"] == headless_service(docs)["metadata"]["name"]
    assert scraped_service(docs)["metadata"]["name"] != merge["serviceName"]

    assert chosen({"matchLabels": scraped_service(docs)["spec"]["selector"]}) == {"partial", "merge"}
    assert chosen({"matchLabels": headless_service(docs)["spec"]["selector"]}) == {"merge"}
    assert chosen(one(docs, "NetworkPolicy")["spec"]["podSelector"]) == {"partial", "merge"}
    budgets = [chosen(doc["spec"]["selector"]) for doc in docs if doc["kind"] == "PodDisruptionBudget"]
    assert sorted(budgets, key=sorted) == [{"merge"}, {"partial"}]
    assert_scraped_once(docs)

    container = sloguard_container(docs, stage_workload(docs, "partial"))
    assert CHECKPOINT_DIR_ENV not in container_environment(docs, container)
    assert CHECKPOINT_VOLUME not in {m["name"] for m in container["volumeMounts"]}


def assert_topics_job(
    docs: list[Doc], monkeypatch: pytest.MonkeyPatch, partials: int, checkpoints: int
) -> Settings:
    """The Job runs `sloguard topics create`, once (never restarted in place), hardened, with the same
    Kafka connection and input topics as the stages and the partition counts given; its settings."""
    job = topics_job(docs)
    pod = job["spec"]["template"]["spec"]
    container = sloguard_container(docs, job, name="topics")
    assert container["args"] == ["topics", "create"]
    assert pod["restartPolicy"] == "Never"
    assert_hardened(pod, container)
    stage = daemon_settings(docs, monkeypatch, container=sloguard_container(docs, statefulset(docs)))
    settings = daemon_settings(docs, monkeypatch, container=container)
    assert settings.kafka == stage.kafka
    assert settings.scale == stage.scale
    assert settings.scale.partials_partitions == partials
    assert settings.scale.checkpoints_partitions == checkpoints
    return settings
