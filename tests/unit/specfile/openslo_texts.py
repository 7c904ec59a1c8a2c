"""OpenSLO v1 streams for the specfile tests: a valid stream as Python data, changed by each test."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from sloguard.core.spec import Config
from sloguard.specfile import SpecError, parse_config

ROOT = Path(__file__).resolve().parents[3]
OPENSLO = ROOT / "tests" / "testdata" / "openslo"
SPEC_EXAMPLES = OPENSLO / "spec-examples"
SOURCE = "slos.openslo.yaml"


def doc(kind: str, name: str, spec: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    return {"apiVersion": "openslo/v1", "kind": kind, "metadata": {"name": name, **metadata}, "spec": spec}


def source(
    spec: dict[str, Any] | None = None, ref: str | None = None, kind: str = "sloguard"
) -> dict[str, Any]:
    """A ``{metricSource: ...}`` of ``kind`` with ``spec``, or referring to the DataSource ``ref``."""
    ms: dict[str, Any] = {"metricSourceRef": ref} if ref else {"type": kind}
    if spec is not None:
        ms["spec"] = spec
    return {"metricSource": ms}


def base() -> list[dict[str, Any]]:
    """A valid stream: a DataSource, an SLI, an SLO (documents 1-3), an AlertPolicy and its AlertCondition
    (4-5) and an AlertNotificationTarget (6)."""
    return copy.deepcopy(
        [
            doc("DataSource", "logs", {"type": "sloguard"}),
            doc(
                "SLI",
                "api-errors",
                {
                    "ratioMetric": {
                        "bad": source({"status": ["5xx"]}, ref="logs"),
                        "total": source({"endpoints": ["/v1/*"]}, ref="logs"),
                    }
                },
            ),
            doc(
                "SLO",
                "api",
                {
                    "service": "api",
                    "indicatorRef": "api-errors",
                    "timeWindow": [{"duration": "30d", "isRolling": True}],
                    "budgetingMethod": "Occurrences",
                    "objectives": [{"target": 0.999}],
                    "alertPolicies": ["fast"],
                },
            ),
            doc(
                "AlertPolicy",
                "fast",
                {"conditions": [{"conditionRef": "fast"}], "notificationTargets": [{"targetRef": "pager"}]},
            ),
            doc(
                "AlertCondition",
                "fast",
                {
                    "severity": "page",
                    "condition": {"kind": "burnrate", "op": "gt", "threshold": 14.4, "lookbackWindow": "1h"},
                },
            ),
            doc("AlertNotificationTarget", "pager", {"target": "pagerduty"}),
        ]
    )


def text(docs: list[Any]) -> str:
    """The stream as YAML (floats are written as their shortest decimal, which sloguard reads exactly)."""
    return yaml.safe_dump_all(docs, sort_keys=False, explicit_start=True)


def parse(docs: list[Any]) -> Config:
    return parse_config(text(docs), SOURCE)


def problems(docs: list[Any]) -> list[str]:
    """The problem lines of a refused stream, without the file name."""
    try:
        parse(docs)
    except SpecError as exc:
        assert all(line.startswith(f"{SOURCE}: ") for line in exc.problems)
        return [line.removeprefix(f"{SOURCE}: ") for line in exc.problems]
    raise AssertionError("the stream was accepted")
