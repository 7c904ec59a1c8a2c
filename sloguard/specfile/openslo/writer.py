"""sloguard SLOs -> OpenSLO v1 documents (``sloguard convert --to openslo``).

Per SLO: a ``Service`` (one per service), the ``SLO`` with its SLI inline (a ratioMetric: ``bad`` and
``total``, both of metricSource type sloguard), and per custom alert tier an ``AlertCondition`` and the
``AlertPolicy`` that refers to it (the specification allows one condition per policy). SLOs on sloguard's
default tiers get no alertPolicies, which reads back as the default tiers. What OpenSLO has no field for
(resolution, series limits, short windows other than 1/12, budget tiers, labels) is written as
``sloguard/`` annotations, so reading the output back gives an equal :class:`~sloguard.core.spec.Config`.
"""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction
from typing import Any

import yaml

from sloguard import __version__
from sloguard.core.spec import AlertTier, CalendarPeriod, Config, Labels, Resolution, SloSpec, format_duration
from sloguard.specfile.errors import number
from sloguard.specfile.mapping import default_tiers
from sloguard.specfile.openslo.model import OPENSLO_VERSION
from sloguard.specfile.openslo.reader import CALENDAR_UNITS, SHORT_WINDOW_DIVISOR, SOURCE_TYPE

#: The calendar unit -> its timeWindow duration.
_CALENDAR_DURATIONS = {unit: duration for duration, unit in CALENDAR_UNITS.items()}
#: A start of every calendar unit (a Monday, the 1st of January): sloguard aligns to the unit anyway.
CALENDAR_START = "2024-01-01 00:00:00"
#: The resolution sloguard picks for an SLO without one (see `mapping.slo`): coarser per customer.
_CUSTOMER_RESOLUTION = Resolution(fine=60, coarse=3600)


def _doc(
    kind: str, name: str, spec: dict[str, Any], annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": OPENSLO_VERSION, "kind": kind, "metadata": metadata, "spec": spec}


def _decimal(value: Fraction) -> Decimal:
    """An exact decimal when the value has one within 28 digits (objectives do), else 6 significant ones."""
    text = number(value, 28)
    return Decimal(text if not text.startswith("~") else number(value).lstrip("~"))


def _status(lo: int, hi: int) -> str | int:
    """(500, 599) -> "5xx", (429, 429) -> 429, (500, 503) -> "500-503"."""
    if lo == hi:
        return lo
    return f"{lo // 100}xx" if lo % 100 == 0 and hi == lo + 99 else f"{lo}-{hi}"


def _labels(prefix: str, labels: Labels) -> dict[str, str]:
    return {f"sloguard/{prefix}.{name}": value for name, value in labels}


def _indicator(s: SloSpec) -> dict[str, Any]:
    total: dict[str, Any] = {}
    for key, value in (
        ("endpoints", s.endpoints),
        ("endpointsExclude", s.endpoints_exclude),
        ("groupBy", s.group_by),
    ):
        if value:
            total[key] = list(value)
    bad: dict[str, Any] = {"status": [_status(lo, hi) for lo, hi in s.sli.bad_status]}
    if s.sli.kind == "latency" and s.sli.threshold_ms is not None:
        bad["latencyThresholdMs"] = Decimal(repr(s.sli.threshold_ms))
    return {
        "metadata": {"name": f"{s.name}-sli"},
        "spec": {
            "ratioMetric": {
                "bad": {"metricSource": {"type": SOURCE_TYPE, "spec": bad}},
                "total": {"metricSource": {"type": SOURCE_TYPE, "spec": total}},
            }
        },
    }


def _time_window(s: SloSpec) -> dict[str, Any]:
    if isinstance(s.period, CalendarPeriod):
        return {
            "duration": _CALENDAR_DURATIONS[s.period.unit],
            "calendar": {"startTime": CALENDAR_START, "timeZone": s.period.timezone},
            "isRolling": False,
        }
    return {"duration": format_duration(s.period.seconds), "isRolling": True}


def _default_min_events(s: SloSpec) -> int | None:
    """The ``alerts.min_events`` with which the SLO's tiers are exactly sloguard's defaults; None if they
    are not the defaults (custom tiers, or defaults with labels or renames)."""
    tiers = s.tiers + s.dropped_tiers
    min_events = tiers[0].min_events if tiers else 0
    defaults = default_tiers(s.period, min_events)
    # Tiers compare with their labels and annotations: defaults with alert labels are custom here.
    if (
        len(tiers) == len(defaults)
        and all(t in defaults for t in tiers)
        and tuple(t for t in defaults if t not in s.dropped_tiers) == s.tiers
    ):
        return min_events
    return None


def _default_resolution(s: SloSpec) -> Resolution:
    """The resolution `mapping.slo` gives an SLO that does not set one (per customer, per time slice)."""
    res = _CUSTOMER_RESOLUTION if "customer" in s.group_by else Resolution()
    if s.budgeting is not None:
        coarse = math.gcd(res.coarse, s.budgeting.slice)
        res = Resolution(fine=math.gcd(res.fine, coarse), coarse=coarse)
    return res


def _slo_annotations(s: SloSpec, min_events: int | None) -> dict[str, str]:
    default_resolution = _default_resolution(s)
    notes: dict[str, str] = {}
    if s.budgeting is not None and s.budgeting.empty != "good":
        notes["sloguard/empty-slice"] = s.budgeting.empty
    if s.resolution.fine != default_resolution.fine or s.resolution.coarse != default_resolution.coarse:
        notes["sloguard/fine-resolution"] = format_duration(s.resolution.fine)
        notes["sloguard/coarse-resolution"] = format_duration(s.resolution.coarse)
    if s.max_series != SloSpec.__dataclass_fields__["max_series"].default:
        notes["sloguard/max-series"] = str(s.max_series)
    if s.series_ttl is not None:
        notes["sloguard/series-ttl"] = format_duration(s.series_ttl)
    if s.export_top_k is not None:
        notes["sloguard/export-top-k"] = str(s.export_top_k)
    if min_events:
        notes["sloguard/min-events"] = str(min_events)
    if s.alert_name is not None:
        notes["sloguard/alert-name"] = s.alert_name
    return notes | _labels("label", s.labels)


def _condition(s: SloSpec, t: AlertTier) -> dict[str, Any]:
    notes: dict[str, str] = {}
    if t.short_window * SHORT_WINDOW_DIVISOR != t.long_window:
        notes["sloguard/short-window"] = format_duration(t.short_window)
    if t.budget_percent is not None:
        notes["sloguard/budget-percent"] = str(_decimal(t.budget_percent))
    if t.min_events:
        notes["sloguard/min-events"] = str(t.min_events)
    notes |= _labels("label", t.labels) | _labels("annotation", t.annotations)
    condition: dict[str, Any] = {
        "kind": "burnrate",
        "op": "gt",
        "threshold": _decimal(t.factor),
        "lookbackWindow": format_duration(t.long_window),
    }
    if t.for_seconds:
        condition["alertAfter"] = format_duration(t.for_seconds)
    spec = {"severity": t.severity.value, "condition": condition}
    return _doc("AlertCondition", f"{s.name}-{t.name}", spec, notes)


def _budgeting(s: SloSpec) -> dict[str, Any]:
    """``budgetingMethod`` and ``objectives``: Occurrences, or a time-slice method with its slice."""
    objective: dict[str, Any] = {"target": _decimal(s.objective)}
    b = s.budgeting
    if b is None:
        return {"budgetingMethod": "Occurrences", "objectives": [objective]}
    if b.good_ratio is not None:
        objective["timeSliceTarget"] = _decimal(b.good_ratio)
    objective["timeSliceWindow"] = format_duration(b.slice)
    method = "Timeslices" if b.good_ratio is not None else "RatioTimeslices"
    return {"budgetingMethod": method, "objectives": [objective]}


def _slo_docs(s: SloSpec) -> list[dict[str, Any]]:
    """The SLO document, then an AlertCondition and an AlertPolicy per custom tier."""
    min_events = _default_min_events(s)
    spec: dict[str, Any] = {"service": s.service}
    if s.description:
        spec["description"] = s.description
    spec |= {
        "indicator": _indicator(s),
        "timeWindow": [_time_window(s)],
        **_budgeting(s),
    }
    alerts: list[dict[str, Any]] = []
    if min_events is None:
        spec["alertPolicies"] = []
        for t in s.tiers:
            condition = _condition(s, t)
            name = condition["metadata"]["name"]
            policy = {"alertWhenBreaching": True, "conditions": [{"conditionRef": name}]}
            alerts += [condition, _doc("AlertPolicy", name, policy)]
            spec["alertPolicies"].append({"alertPolicyRef": name})
    return [_doc("SLO", s.name, spec, _slo_annotations(s, min_events)), *alerts]


def to_openslo(config: Config) -> tuple[list[dict[str, Any]], list[str]]:
    """The OpenSLO v1 documents of ``config``'s SLOs, and notes on what has no OpenSLO form."""
    docs = [_doc("Service", name, {}) for name in dict.fromkeys(s.service for s in config.slos)]
    for s in config.slos:
        docs += _slo_docs(s)
    notes = []
    if config.latency is not None:
        notes.append("the latency: section (percentiles, latency alerts) has no OpenSLO form and is left out")
    if config.input is not None:
        preset = f" (preset {config.input.preset})" if config.input.preset else ""
        notes.append(
            f"the input: section{preset} has no OpenSLO form and is left out: sloguard reading the output"
            " reads its own event shape, or the preset SLOGUARD_INPUT__PRESET names"
        )
    return docs, notes


class _Dumper(yaml.SafeDumper):
    """SafeDumper writing Decimals as the exact numbers they are (0.999, never 0.9990000000000001)."""


def _represent_decimal(dumper: yaml.SafeDumper, value: Decimal) -> yaml.ScalarNode:
    text = format(value.normalize(), "f")
    return dumper.represent_scalar(
        "tag:yaml.org,2002:float" if "." in text else "tag:yaml.org,2002:int", text
    )


_Dumper.add_representer(Decimal, _represent_decimal)


def dump(docs: list[dict[str, Any]]) -> str:
    """The documents as one YAML stream, with a generated-by header."""
    body = yaml.dump_all(
        docs, Dumper=_Dumper, sort_keys=False, explicit_start=True, default_flow_style=False, width=1_000
    )
    return f"# Generated by sloguard {__version__} (sloguard convert --to openslo).\n{body}"
