"""sloguard.rules: the Prometheus rule file generated from an SLO config (structure, exact factors, YAML).

promtool itself (syntax, evaluation) is exercised in tests/integration/test_rules_promtool.py.
"""

from __future__ import annotations

import dataclasses
import re
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import yaml

from sloguard.cli import main
from sloguard.core.spec import AlertTier, RollingPeriod, Severity, Sli, SloSpec
from sloguard.rules import (
    BUDGET_EXHAUSTED_ALERT,
    BURN_ALERT,
    DAEMON_GROUP,
    LATENCY_GROUP,
    NO_DATA_ALERT,
    format_factor,
    generate,
    tier_expr,
    to_prometheus_rule,
    to_yaml,
)
from sloguard.specfile import load_config, parse_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "slos.example.yaml"
ISSUE = ROOT / "tests" / "testdata" / "specs" / "issue-example.yaml"

DEFAULT_30D = [("page", "1h", "5m", "14.4"), ("page", "6h", "30m", "6"), ("ticket", "1d", "2h", "3")]
DEFAULT_30D += [("ticket", "3d", "6h", "1")]
DEFAULT_28D = [("page", "1h", "5m", "13.44"), ("page", "6h", "30m", "5.6"), ("ticket", "1d", "2h", "2.8")]
DEFAULT_28D += [("ticket", "3d", "6h", "0.9333333333333333")]


def groups(path: Path) -> dict[str, list[dict[str, Any]]]:
    doc = generate(load_config(path))
    return {g["name"]: g["rules"] for g in doc["groups"]}


def burn_rules(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rules if r["alert"] == BURN_ALERT]


def tier_table(rules: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """(severity, long, short, factor) per burn rule, the factor read from both comparisons of the expr."""
    out = []
    for r in burn_rules(rules):
        labels = r["labels"]
        found = re.findall(r'window="([^"]+)"\}\)? > (\S+)', r["expr"])
        assert [w for w, _ in found] == [labels["long_window"], labels["short_window"]], r["expr"]
        assert found[0][1] == found[1][1]
        out.append((labels["severity"], labels["long_window"], labels["short_window"], found[0][1]))
    return out


def guard(rule: dict[str, Any]) -> int | None:
    m = re.search(r'sloguard_slo_events\{slo="[^"]+",window="([^"]+)"\} >= (\d+)$', rule["expr"])
    if m is None:
        assert "sloguard_slo_events" not in rule["expr"]
        return None
    assert m.group(1) == rule["labels"]["long_window"]
    return int(m.group(2))


# -- the example configs ------------------------------------------------------------------------------


def test_example_groups_in_file_order_then_daemon() -> None:
    assert list(groups(EXAMPLE)) == [
        "sloguard-checkout-availability",
        "sloguard-checkout-latency",
        "sloguard-search-latency-per-customer",
        "sloguard-search-availability",
        "sloguard-auth-availability",
        "sloguard-payments-availability",
        "sloguard-catalog-availability",
        LATENCY_GROUP,
        DAEMON_GROUP,
    ]
    assert list(groups(ISSUE)) == [
        "sloguard-checkout-availability",
        "sloguard-checkout-latency",
        DAEMON_GROUP,
    ]


@pytest.mark.parametrize(
    ("path", "slo", "table"),
    [
        (EXAMPLE, "checkout-availability", DEFAULT_30D),
        (EXAMPLE, "checkout-latency", DEFAULT_28D),
        (EXAMPLE, "search-latency-per-customer", DEFAULT_30D),
        (EXAMPLE, "search-availability", DEFAULT_30D),
        (EXAMPLE, "auth-availability", DEFAULT_30D),  # calendar month: nominal 30d
        (
            EXAMPLE,
            "payments-availability",
            [("page", "1h", "5m", "14.4"), ("page", "6h", "30m", "6"), ("ticket", "3d", "6h", "1")],
        ),
        (EXAMPLE, "catalog-availability", DEFAULT_30D),
        (ISSUE, "checkout-availability", DEFAULT_30D),
        (ISSUE, "checkout-latency", DEFAULT_28D),
    ],
)
def test_one_burn_rule_per_tier_with_its_exact_factor(path: Path, slo: str, table: list[Any]) -> None:
    rules = groups(path)[f"sloguard-{slo}"]
    assert [r["alert"] for r in rules] == [BURN_ALERT] * len(table) + [BUDGET_EXHAUSTED_ALERT, NO_DATA_ALERT]
    assert tier_table(rules) == table
    spec = next(s for s in load_config(path).slos if s.name == slo)
    for rule, tier in zip(burn_rules(rules), spec.tiers, strict=True):
        assert rule["labels"] == {
            "severity": tier.severity.value,
            "slo": slo,
            "long_window": rule["labels"]["long_window"],
            "short_window": rule["labels"]["short_window"],
        }
        factor = tier_table([rule])[0][3]
        if tier.factor.denominator in (1, 2, 4, 5, 10, 20, 25, 50, 100):
            assert Fraction(Decimal(factor)) == tier.factor  # exact
        else:
            assert float(factor) == float(tier.factor)  # nearest double
        assert f'sloguard_slo_burn_rate{{slo="{slo}",' in rule["expr"]


@pytest.mark.parametrize(
    ("path", "slo", "guards", "fors"),
    [
        (EXAMPLE, "checkout-availability", [None] * 4, [None] * 4),
        (EXAMPLE, "search-latency-per-customer", [100] * 4, [None] * 4),
        (EXAMPLE, "payments-availability", [100, 50, 50], ["2m", "5m", None]),
        (ISSUE, "checkout-availability", [None] * 4, [None] * 4),
        (ISSUE, "checkout-latency", [None] * 4, [None] * 4),
    ],
)
def test_min_events_guard_only_when_positive_and_for_only_when_set(
    path: Path, slo: str, guards: list[int | None], fors: list[str | None]
) -> None:
    rules = burn_rules(groups(path)[f"sloguard-{slo}"])
    assert [guard(r) for r in rules] == guards
    assert [r.get("for") for r in rules] == fors


def test_budget_and_no_data_alerts() -> None:
    rules = groups(EXAMPLE)["sloguard-checkout-availability"]
    exhausted, no_data = rules[-2:]
    assert exhausted == {
        "alert": BUDGET_EXHAUSTED_ALERT,
        "expr": 'sloguard_slo_error_budget_remaining_ratio{slo="checkout-availability"} <= 0',
        "for": "5m",
        "labels": {"severity": "ticket", "slo": "checkout-availability"},
        "annotations": exhausted["annotations"],
    }
    assert no_data["expr"] == 'absent(sloguard_slo_objective_ratio{slo="checkout-availability"})'
    assert no_data["for"] == "5m"
    assert no_data["labels"] == {"severity": "ticket", "slo": "checkout-availability"}


def test_daemon_group() -> None:
    rules = {r["alert"]: r for r in groups(EXAMPLE)[DAEMON_GROUP]}
    assert list(rules) == [
        "SloguardDown",
        "SloguardConsumerLagGrowing",
        "SloguardInvalidEventsHigh",
        "SloguardSeriesOverflow",
    ]
    assert rules["SloguardDown"]["expr"] == "absent(sloguard_build_info)"
    assert (rules["SloguardDown"]["for"], rules["SloguardDown"]["labels"]) == ("5m", {"severity": "page"})
    for name in ("SloguardConsumerLagGrowing", "SloguardInvalidEventsHigh", "SloguardSeriesOverflow"):
        assert (rules[name]["for"], rules[name]["labels"]) == ("15m", {"severity": "ticket"})
    lag = rules["SloguardConsumerLagGrowing"]["expr"]
    assert "deriv(sloguard_consumer_lag[10m]) > 0" in lag
    assert "sloguard_consumer_lag > 10000" in lag
    invalid = rules["SloguardInvalidEventsHigh"]["expr"]
    # without (reason), not a bare sum: the target labels must still match the processed counter.
    assert "sum without (reason) (rate(sloguard_events_invalid_total[5m]))" in invalid
    assert "rate(sloguard_events_processed_total[5m])" in invalid
    assert invalid.endswith("> 0.01")
    assert rules["SloguardSeriesOverflow"]["expr"] == "rate(sloguard_overflow_events_total[5m]) > 0"


# -- expression shape ---------------------------------------------------------------------------------


def test_tier_expr_drops_window_and_matches_on_the_rest() -> None:
    spec = next(s for s in load_config(EXAMPLE).slos if s.name == "payments-availability")
    assert tier_expr(spec, spec.tiers[0]) == (
        'max without (window) (sloguard_slo_burn_rate{slo="payments-availability",window="1h"}) > 14.4\n'
        'and ignoring (window) sloguard_slo_burn_rate{slo="payments-availability",window="5m"} > 14.4\n'
        'and ignoring (window) sloguard_slo_events{slo="payments-availability",window="1h"} >= 100'
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Fraction(72, 5), "14.4"),
        (Fraction(336, 25), "13.44"),
        (Fraction(6), "6"),
        (Fraction(1), "1"),
        (Fraction(1, 1024), "0.0009765625"),
        (Fraction(14, 15), "0.9333333333333333"),
        (Fraction(1, 3), "0.3333333333333333"),
        (Fraction(1000000), "1000000"),
    ],
)
def test_format_factor(value: Fraction, text: str) -> None:
    assert format_factor(value) == text


def test_custom_tier_factor_is_exact() -> None:
    spec = SloSpec(
        name="x",
        service="s",
        objective=Fraction(999, 1000),
        sli=Sli("availability"),
        period=RollingPeriod(30 * 86400),
        tiers=(AlertTier(Severity.PAGE, 3600, 300, Fraction(123456789, 1000000), min_events=1),),
    )
    expr = tier_expr(spec, spec.tiers[0])
    assert expr.count("> 123.456789") == 2
    assert expr.endswith(">= 1")


# -- annotations, YAML ----------------------------------------------------------------------------------


def test_annotations() -> None:
    doc = generate(load_config(EXAMPLE))
    for g in doc["groups"]:
        for r in g["rules"]:
            assert set(r["annotations"]) == {"summary", "description"}
    burn = doc["groups"][0]["rules"][0]["annotations"]
    assert "{{ $value | humanize }}" in burn["summary"]
    assert "endpoint={{ $labels.endpoint }}" in burn["summary"]

    doc = generate(
        load_config(EXAMPLE),
        runbook_url="https://runbooks.example/sloguard#{alert}",
        dashboard_url="https://grafana.example/d/slo?var-slo={{ $labels.slo }}",
    )
    for g in doc["groups"]:
        for r in g["rules"]:
            assert r["annotations"]["runbook_url"] == f"https://runbooks.example/sloguard#{r['alert']}"
            assert (
                r["annotations"]["dashboard_url"] == "https://grafana.example/d/slo?var-slo={{ $labels.slo }}"
            )


@pytest.mark.parametrize("path", [EXAMPLE, ISSUE], ids=["example", "issue"])
def test_yaml_round_trip(path: Path) -> None:
    doc = generate(
        load_config(path), runbook_url="https://r.example/{alert}", dashboard_url="https://d.example"
    )
    text = to_yaml(doc)
    assert text.startswith("# Generated by sloguard ")
    assert yaml.safe_load(text) == doc
    assert text.isascii()
    assert "expr: |-\n" in text  # multi-line expressions as literal blocks
    # Prometheus 2.42 refuses group-level labels and query_offset.
    for g in yaml.safe_load(text)["groups"]:
        assert set(g) == {"name", "rules"}


def test_slo_named_daemon_is_refused() -> None:
    config = load_config(ISSUE)
    spec = dataclasses.replace(config.slos[0], name="daemon")
    with pytest.raises(ValueError, match="sloguard-daemon"):
        generate(dataclasses.replace(config, slos=(spec,)))


# -- PrometheusRule (prometheus-operator) ---------------------------------------------------------------

LABELS = {"app.kubernetes.io/name": "sloguard", "app.kubernetes.io/part-of": "sloguard"}


@pytest.mark.parametrize("path", [EXAMPLE, ISSUE], ids=["example", "issue"])
def test_prometheus_rule_validates_against_the_operator_schema(path: Path) -> None:
    from cloudcoil.models.prometheus_operator.v1 import PrometheusRule

    doc = generate(load_config(path), runbook_url="https://r.example/{alert}")
    resource = to_prometheus_rule(doc, namespace="monitoring")
    assert resource == {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "sloguard-slos", "namespace": "monitoring", "labels": LABELS},
        "spec": {"groups": doc["groups"]},
    }
    model = PrometheusRule.model_validate(yaml.safe_load(to_yaml(resource)))
    # pydantic ignores unknown keys: dumping back must give every key, none dropped or renamed.
    assert model.model_dump(by_alias=True, exclude_none=True, mode="json") == resource


def test_prometheus_rule_namespace_only_when_given() -> None:
    doc = generate(load_config(ISSUE))
    resource = to_prometheus_rule(doc, name="checkout-slos")
    assert resource["metadata"] == {"name": "checkout-slos", "labels": LABELS}
    assert resource["spec"]["groups"] is doc["groups"]


@pytest.mark.parametrize(
    ("name", "namespace"), [("Sloguard", None), ("slo_rules", None), ("", None), ("ok", "Mon"), ("ok", "a.b")]
)
def test_prometheus_rule_refuses_invalid_names(name: str, namespace: str | None) -> None:
    with pytest.raises(ValueError, match="DNS"):
        to_prometheus_rule(generate(load_config(ISSUE)), name=name, namespace=namespace)


def test_rules_command_prometheusrule_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rule.yaml"
    args = ["rules", str(EXAMPLE), "--format", "prometheusrule", "-o", str(out)]
    assert main([*args, "--namespace", "monitoring", "--name", "slos"]) == 0
    text = out.read_text()
    assert text.startswith("# Generated by sloguard ")
    resource = yaml.safe_load(text)
    assert resource["metadata"] == {"name": "slos", "namespace": "monitoring", "labels": LABELS}
    assert resource["spec"] == generate(load_config(EXAMPLE))

    assert main(["rules", str(EXAMPLE), "--format", "prometheusrule"]) == 0
    metadata = yaml.safe_load(capsys.readouterr().out)["metadata"]
    assert metadata == {"name": "sloguard-slos", "labels": LABELS}

    assert main(["rules", str(EXAMPLE), "--format", "rules"]) == 0
    assert set(yaml.safe_load(capsys.readouterr().out)) == {"groups"}


def test_rules_command_refuses_bad_prometheusrule_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", str(EXAMPLE), "--namespace", "monitoring"]) == 2
    assert "--format prometheusrule" in capsys.readouterr().err
    assert main(["rules", str(EXAMPLE), "--format", "prometheusrule", "--name", "Bad_Name"]) == 2
    assert "'Bad_Name'" in capsys.readouterr().err


def test_rules_command_takes_the_file_as_config_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "--config", str(EXAMPLE)]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == generate(load_config(EXAMPLE))
    for args in (["rules"], ["rules", str(EXAMPLE), "-c", str(EXAMPLE)]):
        with pytest.raises(SystemExit) as exc:
            main(args)
        assert exc.value.code == 2
        assert "give the SLO file once" in capsys.readouterr().err


def test_latency_alert_expressions() -> None:
    doc = generate(load_config(EXAMPLE))
    (group,) = [g for g in doc["groups"] if g["name"] == LATENCY_GROUP]
    assert [(r["expr"], r["labels"]) for r in group["rules"]] == [
        (
            'sloguard_latency_seconds{quantile="0.99",window="5m"} > 3\n'
            'and ignoring (quantile) sloguard_latency_events{window="5m"} >= 100',
            {"severity": "ticket", "threshold_ms": "3000"},
        ),
        (
            'sloguard_latency_seconds{quantile="0.99",window="5m",'
            'endpoint="POST /v1/orders",service="checkout"} > 1.5\nand ignoring (quantile) '
            'sloguard_latency_events{window="5m",endpoint="POST /v1/orders",service="checkout"} >= 100',
            {
                "severity": "ticket",
                "threshold_ms": "1500",
                "endpoint": "POST /v1/orders",
                "service": "checkout",
            },
        ),
    ]
    assert all(r["for"] == "10m" for r in group["rules"])


# -- what Sloth users bring: labels, alert names, severities, routing labels -----------------------------

SLOTH_GETTING_STARTED = ROOT / "config" / "examples" / "sloth-getting-started.yaml"
SLOTH_7D = ROOT / "config" / "examples" / "sloth-7d.yaml"


def test_sloth_getting_started_alerts_like_sloth() -> None:
    """Sloth's example: alert MyServiceHighErrorRate, severity pageteam / slack, routing labels per
    severity, the SLO's labels on every alert, the summary replaced."""
    rules = groups(SLOTH_GETTING_STARTED)["sloguard-requests-availability"]
    burn = [r for r in rules if r["alert"] == "MyServiceHighErrorRate"]
    assert [r["labels"]["severity"] for r in burn] == ["pageteam", "pageteam", "slack", "slack"]
    static = {"owner": "myteam", "repo": "myorg/myservice", "tier": "2"}
    for r in burn:
        routing = (
            {"routing_key": "myteam"}
            if r["labels"]["severity"] == "pageteam"
            else {"slack_channel": "#alerts-myteam"}
        )
        assert r["labels"] == {
            "severity": r["labels"]["severity"],
            "slo": "requests-availability",
            "long_window": r["labels"]["long_window"],
            "short_window": r["labels"]["short_window"],
            **static,
            "category": "availability",
            **routing,
        }
        assert r["annotations"]["summary"] == "High error rate on 'myservice' requests responses"
        assert r["annotations"]["description"].startswith("The ")
    others = {r["alert"]: r["labels"] for r in rules if r not in burn}
    assert others == {
        BUDGET_EXHAUSTED_ALERT: {"severity": "ticket", "slo": "requests-availability", **static},
        NO_DATA_ALERT: {"severity": "ticket", "slo": "requests-availability", **static},
    }


def test_sloth_7d_windows_give_sloths_factors() -> None:
    """Sloth's 7d windows: 8 % in 1h, 12.5 % in 6h, 20 % in 1d, 42 % in 3d of a 7-day budget."""
    table = [("page", "1h", "5m", "13.44"), ("page", "6h", "30m", "3.5"), ("ticket", "1d", "2h", "1.4")]
    table += [("ticket", "3d", "6h", "0.98")]
    for rules in groups(SLOTH_7D).values():
        if rules[0]["alert"] == BURN_ALERT:
            assert tier_table(rules) == table
            assert rules[0]["labels"]["owner"] == "myteam"


def test_tier_annotations_replace_generated_ones_and_links_name_the_custom_alert() -> None:
    config = parse_config(
        "apiVersion: sloguard/v1\nslos:\n  - {name: a, service: s, objective: 99.9,"
        " sli: {type: availability}, window: 30d, alerts: {name: ABurn,"
        " annotations: {runbook_url: 'https://rb/a', extra: '{{ $value }}'}}}\n"
    )
    doc = generate(config, runbook_url="https://runbooks/#{alert}", dashboard_url="https://d/{alert}")
    burn = doc["groups"][0]["rules"][0]
    assert burn["alert"] == "ABurn"
    assert burn["annotations"]["runbook_url"] == "https://rb/a"  # the SLO's runbook wins over the flag's
    assert burn["annotations"]["dashboard_url"] == "https://d/ABurn"
    assert burn["annotations"]["extra"] == "{{ $value }}"
    exhausted = doc["groups"][0]["rules"][4]
    assert exhausted["alert"] == BUDGET_EXHAUSTED_ALERT
    assert exhausted["annotations"]["runbook_url"] == f"https://runbooks/#{BUDGET_EXHAUSTED_ALERT}"
    assert "extra" not in exhausted["annotations"]


def test_without_labels_or_names_the_rules_are_unchanged() -> None:
    """A spec without the new fields writes the rule labels and annotations it always wrote."""
    rules = groups(EXAMPLE)["sloguard-checkout-availability"]
    assert rules[0]["alert"] == BURN_ALERT
    assert list(rules[0]["labels"]) == ["severity", "slo", "long_window", "short_window"]
    assert list(rules[0]["annotations"]) == ["summary", "description"]


def test_time_slice_slos_get_the_same_rules_on_slice_burn_rates() -> None:
    slo = "  - {name: a, service: s, objective: 99.9, sli: {type: availability}, window: 30d%s}\n"
    plain, sliced = (
        generate(parse_config("apiVersion: sloguard/v1\nslos:\n" + slo % extra, "x.yaml"))["groups"][0][
            "rules"
        ]
        for extra in ("", ", budgeting: {timeslices: {slice: 1m, good_ratio: 0.95}}")
    )
    assert [r["expr"] for r in sliced] == [r["expr"] for r in plain]
    assert "(objective 99.9% of 1m slices)" in sliced[0]["annotations"]["description"]
    assert "(objective 99.9%)" in plain[0]["annotations"]["description"]
