"""Prometheus alerting rules for the metrics the daemon exports (`sloguard rules`).

`generate` turns a loaded :class:`~sloguard.core.spec.Config` into a Prometheus rule file document
(``{"groups": [...]}``) and `to_yaml` spells it as YAML for ``rule_files:``. The rules read only the
daemon's gauges (``sloguard_slo_burn_rate``, ``sloguard_slo_events``, ...): no recording rules, no
long range queries in Prometheus.

Per SLO, one group ``sloguard-<slo>``:

* ``SloguardErrorBudgetBurn`` (or the SLO's ``alerts.name``), one rule per alert tier: the long-window
  AND the short-window burn rate both above the tier's factor and, when the tier has ``min_events > 0``,
  at least that many events in the long window (the low-traffic guard). Labels ``severity``, ``slo``,
  ``long_window``, ``short_window``, then the SLO's static ``labels`` and the tier's alert labels
  (``alerts.labels``, ``alerts.by_severity``, its own; the more specific wins); the alert series also
  carry the SLO's group labels (``endpoint``, ``customer``) and the scrape's target labels, never
  ``window``. ``$value`` is the long-window burn rate. The tier's annotations from the file add to or
  replace ``summary``, ``description`` and the links.
* ``SloguardErrorBudgetExhausted`` (ticket): budget remaining <= 0 for 5m.
* ``SloguardSloNoData`` (ticket): the SLO's ``sloguard_slo_objective_ratio`` absent for 5m (the daemon
  always exports it for every configured SLO, so absence means the daemon is down, not scraped, or runs
  another config).

These two carry the SLO's static ``labels`` too (``absent()`` keeps only its selector's labels), not
the ``alerts:`` labels and annotations, which belong to the burn-rate alerts.

One group ``sloguard-latency`` when the latency section declares ``alerts``: ``SloguardLatencyHigh`` per
alert, the percentile over its window above ``threshold_ms`` (and at least ``min_events`` events in the
window), restricted to the groups its ``match`` names.

One group ``sloguard-slas`` when the file declares ``slas:``: ``SloguardSlaCreditTierProjected`` (ticket,
for 15m) per SLA, a customer's projected end-of-period credit above the credit it earns now (labels
``severity``, ``sla``; the series add ``customer``; ``$value`` is the projected credit percent).

One group ``sloguard-daemon`` with the daemon's own health: ``SloguardDown`` (page), and tickets
``SloguardConsumerLagGrowing``, ``SloguardInvalidEventsHigh``, ``SloguardSeriesOverflow``.

Factors are written exactly when they have a finite decimal expansion (14.4, 13.44, 6); otherwise
(10 % over 3d of 28d = 14/15) as the shortest decimal that reads back as the nearest double
(``0.9333333333333333``). The daemon decides firing with exact fractions, Prometheus compares doubles,
so at a burn rate within one ulp of such a factor the two may disagree; ``sloguard_slo_alert_firing``
is the daemon's exact verdict.

Time-slice SLOs (``budgeting: timeslices | ratio_timeslices``, docs/budgeting.md) get the same rules: the
daemon's ``sloguard_slo_burn_rate`` and ``sloguard_slo_error_budget_remaining_ratio`` are then computed on
slices, and ``min_events`` still counts events (``sloguard_slo_events``); the descriptions say "objective
99.9% of 1m slices".

Written for Prometheus 2.42: no group ``labels``/``query_offset``, ASCII names only.

`to_prometheus_rule` wraps the same groups in a prometheus-operator ``PrometheusRule`` resource
(``monitoring.coreos.com/v1``) for clusters where the operator loads rules from the API server.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from decimal import Context, Decimal
from fractions import Fraction
from typing import Any

import yaml

from sloguard import __version__
from sloguard.core.sla import SlaSpec
from sloguard.core.spec import (
    AlertTier,
    Config,
    LatencyAlert,
    LatencySpec,
    Severity,
    SloSpec,
    format_duration,
)
from sloguard.export.collector import quantile_label

__all__ = [
    "BUDGET_EXHAUSTED_ALERT",
    "BURN_ALERT",
    "DAEMON_GROUP",
    "LATENCY_ALERT",
    "LATENCY_GROUP",
    "NO_DATA_ALERT",
    "PROMETHEUS_RULE_NAME",
    "SLA_ALERT",
    "SLA_GROUP",
    "format_factor",
    "generate",
    "group_name",
    "tier_expr",
    "to_prometheus_rule",
    "to_yaml",
]

BURN_ALERT = "SloguardErrorBudgetBurn"
BUDGET_EXHAUSTED_ALERT = "SloguardErrorBudgetExhausted"
NO_DATA_ALERT = "SloguardSloNoData"
LATENCY_ALERT = "SloguardLatencyHigh"
DAEMON_GROUP = "sloguard-daemon"
LATENCY_GROUP = "sloguard-latency"
SLA_ALERT = "SloguardSlaCreditTierProjected"
SLA_GROUP = "sloguard-slas"
#: How long the projected credit must stay above the current one before the SLA alert fires.
SLA_FOR = 900

#: Hold times of the non-tier alerts, in seconds.
BUDGET_EXHAUSTED_FOR = 300
NO_DATA_FOR = 300

#: ``sloguard_consumer_lag`` above which a growing lag alerts.
CONSUMER_LAG_LIMIT = 10_000
#: Invalid events / processed events above which the input is considered broken.
INVALID_RATIO_LIMIT = 0.01


def group_name(slo: str) -> str:
    """The rule group of one SLO: ``sloguard-<slo>``."""
    return f"sloguard-{slo}"


def format_factor(value: Fraction) -> str:
    """A factor as a PromQL number: the exact decimal when there is one (``Fraction(72, 5)`` -> ``14.4``),
    else the shortest decimal that reads back as the nearest double (``14/15`` -> ``0.9333333333333333``).
    """
    den = value.denominator
    for p in (2, 5):
        while den % p == 0:
            den //= p
    if den == 1:  # finite decimal expansion: divide with enough digits to be exact
        digits = len(str(value.numerator)) + len(str(value.denominator)) + 2
        exact = Context(prec=digits).divide(Decimal(value.numerator), Decimal(value.denominator))
        assert Fraction(exact) == value
        return format(exact.normalize(), "f")
    return repr(float(value))


def _quote(value: str) -> str:
    """A PromQL string literal (double-quoted, Go escapes; JSON's are a subset for these names)."""
    return json.dumps(value, ensure_ascii=True)


def _selector(metric: str, **labels: str) -> str:
    return metric + "{" + ",".join(f"{k}={_quote(v)}" for k, v in labels.items()) + "}"


def tier_expr(spec: SloSpec, tier: AlertTier) -> str:
    """The PromQL of one burn-rate tier.

    ``max without (window)`` removes ``window`` from the long-window series (one series per group, so
    ``max`` keeps its value); ``and ignoring (window)`` then matches the short-window burn rate and the
    long-window event count on every other label (slo, group labels, target labels), so two daemons
    scraped as different targets never vouch for each other.
    """
    factor = format_factor(tier.factor)
    long_w = format_duration(tier.long_window)
    short_w = format_duration(tier.short_window)
    lines = [
        f"max without (window) ({_selector('sloguard_slo_burn_rate', slo=spec.name, window=long_w)})"
        f" > {factor}",
        f"and ignoring (window) {_selector('sloguard_slo_burn_rate', slo=spec.name, window=short_w)}"
        f" > {factor}",
    ]
    if tier.min_events > 0:
        lines.append(
            f"and ignoring (window) {_selector('sloguard_slo_events', slo=spec.name, window=long_w)}"
            f" >= {tier.min_events}"
        )
    return "\n".join(lines)


def _links(runbook_url: str, dashboard_url: str, alert: str) -> dict[str, str]:
    links = {"runbook_url": runbook_url, "dashboard_url": dashboard_url}
    return {k: v.replace("{alert}", alert) for k, v in links.items() if v}


def _rule(
    alert: str,
    expr: str,
    for_seconds: int,
    labels: dict[str, str],
    summary: str,
    description: str,
    links: dict[str, str],
    annotations: Iterable[tuple[str, str]] = (),
) -> dict[str, Any]:
    """One alerting rule; ``annotations`` (the SLO file's) add to or replace the generated ones."""
    rule: dict[str, Any] = {"alert": alert, "expr": expr}
    if for_seconds > 0:
        rule["for"] = format_duration(for_seconds)
    rule["labels"] = labels
    rule["annotations"] = {"summary": summary, "description": description, **links, **dict(annotations)}
    return rule


def _where(spec: SloSpec) -> str:
    """Template text naming the series: ``{{ $labels.endpoint }}`` etc. for the group labels."""
    if not spec.group_by:
        return ""
    parts = ", ".join(f"{d}={{{{ $labels.{d} }}}}" for d in spec.group_by)
    return f" ({parts})"


def _slo_group(spec: SloSpec, runbook_url: str, dashboard_url: str) -> dict[str, Any]:
    rules: list[dict[str, Any]] = []
    where = _where(spec)
    objective = format_factor(spec.objective * 100)
    if spec.budgeting is not None:
        # Time-slice SLOs: the objective is a share of slices, and the burn rates count slices.
        objective += f"% of {format_duration(spec.budgeting.slice)} slices"
    else:
        objective += "%"
    burn_alert = spec.alert_name or BURN_ALERT
    for tier in spec.tiers:
        long_w = format_duration(tier.long_window)
        short_w = format_duration(tier.short_window)
        factor = format_factor(tier.factor)
        guard = f", with at least {tier.min_events} events in {long_w}" if tier.min_events > 0 else ""
        rules.append(
            _rule(
                burn_alert,
                tier_expr(spec, tier),
                tier.for_seconds,
                {
                    "severity": tier.severity.value,
                    "slo": spec.name,
                    "long_window": long_w,
                    "short_window": short_w,
                    **dict(spec.labels),
                    **dict(tier.labels),
                },
                f"SLO {spec.name}{where} is burning its error budget at {{{{ $value | humanize }}}}x",
                f"The {long_w} burn rate of SLO {spec.name}{where} is {{{{ $value | humanize }}}} "
                f"(objective {objective}); the {long_w} and {short_w} burn rates both exceed {factor}"
                f"{guard}. A burn rate of 1 spends the budget in exactly one period "
                f"({format_duration(spec.period.nominal_seconds)}).",
                _links(runbook_url, dashboard_url, burn_alert),
                tier.annotations,
            )
        )
    rules.append(
        _rule(
            BUDGET_EXHAUSTED_ALERT,
            f"{_selector('sloguard_slo_error_budget_remaining_ratio', slo=spec.name)} <= 0",
            BUDGET_EXHAUSTED_FOR,
            {"severity": Severity.TICKET.value, "slo": spec.name, **dict(spec.labels)},
            f"SLO {spec.name}{where} has spent its error budget",
            f"SLO {spec.name}{where} (objective {objective}, period {spec.period.describe()}) has "
            f"{{{{ $value | humanizePercentage }}}} of its error budget left.",
            _links(runbook_url, dashboard_url, BUDGET_EXHAUSTED_ALERT),
        )
    )
    rules.append(
        _rule(
            NO_DATA_ALERT,
            f"absent({_selector('sloguard_slo_objective_ratio', slo=spec.name)})",
            NO_DATA_FOR,
            {"severity": Severity.TICKET.value, "slo": spec.name, **dict(spec.labels)},
            f"No data for SLO {spec.name}",
            f"Prometheus has no sloguard_slo_objective_ratio for SLO {spec.name}: sloguard is down, not "
            "scraped, or runs a config without this SLO. Its burn-rate alerts cannot fire.",
            _links(runbook_url, dashboard_url, NO_DATA_ALERT),
        )
    )
    return {"name": group_name(spec.name), "rules": rules}


def latency_expr(alert: LatencyAlert) -> str:
    """The PromQL of one latency alert: the percentile (seconds) over the threshold, and, with
    ``min_events``, enough events in the window (``ignoring (quantile)``: the count has no quantile).
    """
    window = format_duration(alert.window)
    threshold = format_factor(Fraction(repr(alert.threshold_ms)) / 1000)
    labels = {"quantile": quantile_label(alert.percentile), "window": window, **dict(alert.match)}
    expr = f"{_selector('sloguard_latency_seconds', **labels)} > {threshold}"
    if alert.min_events > 0:
        del labels["quantile"]
        events = _selector("sloguard_latency_events", **labels)
        expr += f"\nand ignoring (quantile) {events} >= {alert.min_events}"
    return expr


def _latency_group(spec: LatencySpec, runbook_url: str, dashboard_url: str) -> dict[str, Any]:
    where = ", ".join(f"{d}={{{{ $labels.{d} }}}}" for d in spec.group_by)
    where = f" ({where})" if where else ""
    rules = []
    for alert in spec.alerts:
        window = format_duration(alert.window)
        p = f"p{alert.percentile:g}"
        guard = f" (with at least {alert.min_events} events)" if alert.min_events else ""
        rules.append(
            _rule(
                LATENCY_ALERT,
                latency_expr(alert),
                alert.for_seconds,
                # threshold_ms and the match labels (the series carry them anyway) tell apart two alerts
                # on the same percentile; promtool --lint rejects identical static labels.
                {
                    "severity": alert.severity.value,
                    "threshold_ms": f"{alert.threshold_ms:g}",
                    **dict(alert.match),
                },
                f"{p} latency{where} is {{{{ $value | humanizeDuration }}}} over {window}",
                f"The {p} latency over {window}{where} is {{{{ $value | humanizeDuration }}}}, above the "
                f"{alert.threshold_ms:g} ms threshold{guard}. Percentiles come from an HDR histogram "
                f"with {spec.significant_figures} significant figures.",
                _links(runbook_url, dashboard_url, LATENCY_ALERT),
            )
        )
    return {"name": LATENCY_GROUP, "rules": rules}


def _daemon_group(runbook_url: str, dashboard_url: str) -> dict[str, Any]:
    ticket = {"severity": Severity.TICKET.value}
    specs: list[tuple[str, str, int, dict[str, str], str, str]] = [
        (
            "SloguardDown",
            "absent(sloguard_build_info)",
            300,
            {"severity": Severity.PAGE.value},
            "sloguard is down or not scraped",
            "Prometheus has no sloguard_build_info: no SLO burn-rate alert can fire.",
        ),
        (
            "SloguardConsumerLagGrowing",
            # The lag first: $value is the lag, not its derivative.
            f"sloguard_consumer_lag > {CONSUMER_LAG_LIMIT}\nand deriv(sloguard_consumer_lag[10m]) > 0",
            900,
            ticket,
            "sloguard is falling behind on {{ $labels.topic }}/{{ $labels.partition }}",
            "The consumer lag of {{ $labels.topic }}/{{ $labels.partition }} is {{ $value | humanize }} "
            "messages and growing: SLO alerts are late by as much.",
        ),
        (
            "SloguardInvalidEventsHigh",
            "sum without (reason) (rate(sloguard_events_invalid_total[5m]))\n"
            f"/ rate(sloguard_events_processed_total[5m])\n> {INVALID_RATIO_LIMIT}",
            900,
            ticket,
            "sloguard rejects many input events",
            "Invalid events are {{ $value | humanizePercentage }} of processed events "
            "(sloguard_events_invalid_total by reason tells why); rejected events are not in any SLO.",
        ),
        (
            "SloguardSeriesOverflow",
            "rate(sloguard_overflow_events_total[5m]) > 0",
            900,
            ticket,
            "SLO {{ $labels.slo }} has more series than max_series",
            "{{ $value | humanize }} events/s of SLO {{ $labels.slo }} go to its __overflow__ series: "
            "raise max_series or group by fewer labels.",
        ),
    ]
    return {
        "name": DAEMON_GROUP,
        "rules": [
            _rule(
                alert,
                expr,
                for_s,
                dict(labels),
                summary,
                description,
                _links(runbook_url, dashboard_url, alert),
            )
            for alert, expr, for_s, labels, summary, description in specs
        ],
    }


def sla_expr(sla: SlaSpec) -> str:
    """The projected credit above the credit earned now, per customer (both gauges of one series)."""
    projected = _selector("sloguard_sla_projected_credit_percent", sla=sla.name)
    return f"{projected}\n> {_selector('sloguard_sla_credit_percent', sla=sla.name)}"


def _sla_group(slas: Iterable[SlaSpec], runbook_url: str, dashboard_url: str) -> dict[str, Any]:
    """``SloguardSlaCreditTierProjected`` per SLA: at the current rate, a customer ends the period in a
    higher credit tier than the one its attainment earns now."""
    rules = []
    for sla in slas:
        tiers = ", ".join(
            f"below {format_factor(t.below)}% -> {format_factor(t.percent)}%"
            for t in sorted(sla.credits, key=lambda t: -t.below)
        )
        period = sla.period.describe()
        rules.append(
            _rule(
                SLA_ALERT,
                sla_expr(sla),
                SLA_FOR,
                {"severity": Severity.TICKET.value, "sla": sla.name},
                f"SLA {sla.name}: {{{{ $labels.customer }}}} heads for the {{{{ $value }}}}% credit tier",
                f"At the rate of the last {format_duration(sla.projection_seconds)}, customer "
                f"{{{{ $labels.customer }}}} ends this {period} of SLA {sla.name} (SLO {sla.slo}) in the "
                f"{{{{ $value }}}}% credit tier, above the credit its attainment earns so far "
                f"(sloguard_sla_credit_percent). Tiers: {tiers}.",
                _links(runbook_url, dashboard_url, SLA_ALERT),
            )
        )
    return {"name": SLA_GROUP, "rules": rules}


def generate(config: Config, *, runbook_url: str = "", dashboard_url: str = "") -> dict[str, Any]:
    """A Prometheus rule file document: one group per SLO (in file order), then
    ``sloguard-latency``, ``sloguard-slas`` (each when configured) and ``sloguard-daemon``.

    ``runbook_url`` and ``dashboard_url`` become annotations of every alert (left out when empty);
    ``{alert}`` in them is replaced by the alert name, and Prometheus templates such as
    ``{{ $labels.slo }}`` pass through to Prometheus. Raises ValueError for an SLO named ``daemon``,
    ``latency`` or ``slas`` (their groups would be sloguard's own).
    """
    own = (DAEMON_GROUP, LATENCY_GROUP, SLA_GROUP)
    clash = [spec.name for spec in config.slos if group_name(spec.name) in own]
    if clash:
        # Prometheus refuses a rule file with two groups of the same name.
        raise ValueError(
            f"SLO name {clash[0]!r} gives the group name {group_name(clash[0])!r} of sloguard's own alerts"
        )
    groups = [_slo_group(spec, runbook_url, dashboard_url) for spec in config.slos]
    if config.latency is not None and config.latency.alerts:
        groups.append(_latency_group(config.latency, runbook_url, dashboard_url))
    if config.slas:
        groups.append(_sla_group(config.slas, runbook_url, dashboard_url))
    groups.append(_daemon_group(runbook_url, dashboard_url))
    return {"groups": groups}


#: Default ``metadata.name`` of the ``PrometheusRule`` resource.
PROMETHEUS_RULE_NAME = "sloguard-slos"

_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def to_prometheus_rule(
    doc: dict[str, Any], name: str = PROMETHEUS_RULE_NAME, namespace: str | None = None
) -> dict[str, Any]:
    """``doc`` (from `generate`) as a prometheus-operator ``PrometheusRule``: ``spec.groups`` are
    ``doc["groups"]`` unchanged, ``metadata.namespace`` only when given (else ``kubectl apply -n``
    decides). Raises ValueError for a name that is not a DNS subdomain or a namespace that is not a
    DNS label (the API server would refuse them).
    """
    if len(name) > 253 or not _DNS_SUBDOMAIN.fullmatch(name):
        raise ValueError(f"PrometheusRule name {name!r} is not a DNS subdomain (a-z, 0-9, '-', '.')")
    if namespace is not None and (len(namespace) > 63 or not _DNS_LABEL.fullmatch(namespace)):
        raise ValueError(f"namespace {namespace!r} is not a DNS label (lower case a-z, 0-9, '-', <= 63)")
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    metadata["labels"] = {"app.kubernetes.io/name": "sloguard", "app.kubernetes.io/part-of": "sloguard"}
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": metadata,
        "spec": {"groups": doc["groups"]},
    }


class _Dumper(yaml.SafeDumper):
    """SafeDumper writing multi-line strings (expressions) as literal blocks."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def to_yaml(doc: dict[str, Any]) -> str:
    """The rule file (or ``PrometheusRule``) text (``yaml.safe_load`` gives ``doc`` back), with a
    generated-by header."""
    body = yaml.dump(
        doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1_000, allow_unicode=False
    )
    return f"# Generated by sloguard {__version__} (sloguard rules); do not edit.\n{body}"
