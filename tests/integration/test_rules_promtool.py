"""The generated rule file against promtool: `check rules` (syntax, templates, duplicates) and
`test rules` (the alerts evaluated on synthetic series of the daemon's gauges).

Marked ``promtool``: without promtool on PATH these fail (Debian package ``prometheus``).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from sloguard.rules import (
    BUDGET_EXHAUSTED_ALERT,
    BURN_ALERT,
    LATENCY_ALERT,
    NO_DATA_ALERT,
    generate,
    to_prometheus_rule,
    to_yaml,
)
from sloguard.specfile import load_config, parse_config
from tests.support.tools import require

pytestmark = pytest.mark.promtool

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = [
    ROOT / "config" / "slos.example.yaml",
    ROOT / "tests" / "testdata" / "specs" / "issue-example.yaml",
    ROOT / "config" / "examples" / "sloth-getting-started.yaml",
    ROOT / "config" / "examples" / "sloth-7d.yaml",
]


def promtool() -> str:
    return require("promtool")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_check_rules(path: Path, tmp_path: Path) -> None:
    config = load_config(path)
    doc = generate(
        config,
        runbook_url="https://runbooks.example/sloguard#{alert}",
        dashboard_url="https://grafana.example/d/slo?var-slo={{ $labels.slo }}",
    )
    rules = tmp_path / "rules.yaml"
    rules.write_text(to_yaml(doc))
    proc = run("check", "rules", "--lint=all", "--lint-fatal", str(rules))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    count = (
        sum(len(s.tiers) + 2 for s in config.slos) + 4 + len(config.latency.alerts if config.latency else ())
    )
    assert f"SUCCESS: {count} rules found" in proc.stdout


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_check_prometheus_rule_spec(path: Path, tmp_path: Path) -> None:
    """The operator writes a PrometheusRule's ``spec`` as the rule file Prometheus loads."""
    config = load_config(path)
    resource = to_prometheus_rule(generate(config), namespace="monitoring")
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(yaml.safe_load(to_yaml(resource))["spec"], sort_keys=False))
    proc = run("check", "rules", "--lint=all", "--lint-fatal", str(rules))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    count = (
        sum(len(s.tiers) + 2 for s in config.slos) + 4 + len(config.latency.alerts if config.latency else ())
    )
    assert f"SUCCESS: {count} rules found" in proc.stdout


# -- promtool test rules: one SLO, one endpoint, scraped from one target --------------------------------

SLO = """\
apiVersion: sloguard/v1
slos:
  - name: checkout
    service: checkout
    objective: 99.9
    sli: {type: availability}
    window: 30d
    group_by: [endpoint]
    alerts:
      tiers:
        - {severity: page, long: 1h, short: 5m, budget_percent: 2, min_events: 20}
        - {severity: ticket, long: 1d, short: 2h, budget_percent: 10, for: 5m}
"""

TARGET = 'endpoint="POST /v1/orders",instance="sloguard:9464",job="sloguard",slo="checkout"'
#: Labels every checkout alert carries from the series (the target's and the group label, no window).
SERIES = {"endpoint": "POST /v1/orders", "instance": "sloguard:9464", "job": "sloguard", "slo": "checkout"}
PAGE = {**SERIES, "severity": "page", "long_window": "1h", "short_window": "5m"}
TICKET = {**SERIES, "severity": "ticket", "long_window": "1d", "short_window": "2h"}


def series(metric: str, values: str, window: str | None = None) -> dict[str, str]:
    labels = TARGET + (f',window="{window}"' if window else "")
    return {"series": f"{metric}{{{labels}}}", "values": values}


def healthy(*, burn: dict[str, str] | None = None, events_1h: str = "1000x20") -> list[dict[str, str]]:
    """A full set of the daemon's series for the SLO; ``burn`` overrides burn rates by window."""
    rates = {"5m": "0x20", "1h": "0x20", "2h": "0x20", "1d": "0x20", **(burn or {})}
    return [
        {
            "series": 'sloguard_slo_objective_ratio{instance="sloguard:9464",job="sloguard",slo="checkout"}',
            "values": "0.999x20",
        },
        *(series("sloguard_slo_burn_rate", v, w) for w, v in rates.items()),
        series("sloguard_slo_events", events_1h, "1h"),
        series("sloguard_slo_events", "20000x20", "1d"),
        series("sloguard_slo_error_budget_remaining_ratio", "0.5x20"),
    ]


def burn_annotations(value: str, long: str = "1h", short: str = "5m", factor: str = "14.4") -> dict[str, str]:
    guard = ", with at least 20 events in 1h" if long == "1h" else ""
    return {
        "summary": f"SLO checkout (endpoint=POST /v1/orders) is burning its error budget at {value}x",
        "description": f"The {long} burn rate of SLO checkout (endpoint=POST /v1/orders) is {value} "
        f"(objective 99.9%); the {long} and {short} burn rates both exceed {factor}{guard}. "
        "A burn rate of 1 spends the budget in exactly one period (30d).",
    }


def alert(labels: dict[str, str], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"exp_labels": labels}
    if annotations is not None:
        out["exp_annotations"] = annotations
    return out


CASES: dict[str, tuple[list[dict[str, str]], list[dict[str, Any]]]] = {
    # (a) both windows over 14.4, exactly min_events in the long window: the page fires with slo, the
    # group label and the target labels, without window; $value is the long-window burn rate.
    "both-windows-over": (
        healthy(burn={"1h": "14.5x20", "5m": "15x20"}, events_1h="20x20"),
        [
            {
                "eval_time": "10m",
                "alertname": BURN_ALERT,
                "exp_alerts": [alert(PAGE, burn_annotations("14.5"))],
            },
        ],
    ),
    # (b) the short window recovered (1) while the long one is still over: reset.
    "short-window-recovered": (
        healthy(burn={"1h": "14.5x20", "5m": "15x5 1x15"}),
        [
            {
                "eval_time": "3m",
                "alertname": BURN_ALERT,
                "exp_alerts": [alert(PAGE, burn_annotations("14.5"))],
            },
            {"eval_time": "10m", "alertname": BURN_ALERT, "exp_alerts": []},
        ],
    ),
    # (c) just under the factor on both windows, and exactly at it (strictly greater fires): nothing.
    "just-under-factor": (
        healthy(burn={"1h": "14.399x10 14.4x10", "5m": "14.399x10 14.4x10"}),
        [
            {"eval_time": "5m", "alertname": BURN_ALERT, "exp_alerts": []},
            {"eval_time": "15m", "alertname": BURN_ALERT, "exp_alerts": []},
        ],
    ),
    # (d) low traffic: 19 events in 1h < min_events 20, however high the burn rate.
    "low-traffic": (
        healthy(burn={"1h": "1000x20", "5m": "1000x20"}, events_1h="19x20"),
        [{"eval_time": "10m", "alertname": BURN_ALERT, "exp_alerts": []}],
    ),
    # The ticket tier has no guard and holds 5m: pending at 4m, firing at 10m.
    "ticket-tier-for": (
        healthy(burn={"1d": "3.5x20", "2h": "4x20"}),
        [
            {"eval_time": "4m", "alertname": BURN_ALERT, "exp_alerts": []},
            {
                "eval_time": "10m",
                "alertname": BURN_ALERT,
                "exp_alerts": [alert(TICKET, burn_annotations("3.5", "1d", "2h", "3"))],
            },
        ],
    ),
    # (e) budget spent: fires after 5m.
    "budget-exhausted": (
        [*healthy()[:-1], series("sloguard_slo_error_budget_remaining_ratio", "0.01 0 -0.1x18")],
        [
            {"eval_time": "4m", "alertname": BUDGET_EXHAUSTED_ALERT, "exp_alerts": []},
            {
                "eval_time": "10m",
                "alertname": BUDGET_EXHAUSTED_ALERT,
                "exp_alerts": [
                    alert(
                        {**SERIES, "severity": "ticket"},
                        {
                            "summary": "SLO checkout (endpoint=POST /v1/orders) has spent its error budget",
                            "description": "SLO checkout (endpoint=POST /v1/orders) (objective 99.9%, period "
                            "30d) has -10% of its error budget left.",
                        },
                    )
                ],
            },
        ],
    ),
    # (f) the objective is absent (the daemon lost this SLO): no-data fires after 5m.
    "no-data": (
        healthy()[1:],
        [
            {"eval_time": "4m", "alertname": NO_DATA_ALERT, "exp_alerts": []},
            {
                "eval_time": "10m",
                "alertname": NO_DATA_ALERT,
                "exp_alerts": [
                    alert(
                        {"slo": "checkout", "severity": "ticket"},
                        {
                            "summary": "No data for SLO checkout",
                            "description": "Prometheus has no sloguard_slo_objective_ratio for SLO checkout: "
                            "sloguard is down, not scraped, or runs a config without this SLO. Its burn-rate "
                            "alerts cannot fire.",
                        },
                    )
                ],
            },
        ],
    ),
    # Daemon health: no build_info (down), a large growing lag, 2 % invalid events, overflow.
    "daemon-health": (
        [
            {
                "series": 'sloguard_consumer_lag{partition="0",topic="requests",job="sloguard"}',
                "values": "10000+100x30",
            },
            {
                "series": 'sloguard_consumer_lag{partition="1",topic="requests",job="sloguard"}',
                "values": "20000x30",
            },
            {
                "series": 'sloguard_events_invalid_total{reason="malformed_json",job="sloguard"}',
                "values": "0+15x30",
            },
            {"series": 'sloguard_events_invalid_total{reason="bad_type",job="sloguard"}', "values": "0+5x30"},
            {"series": 'sloguard_events_processed_total{job="sloguard"}', "values": "0+1000x30"},
            {"series": 'sloguard_overflow_events_total{slo="checkout",job="sloguard"}', "values": "0+60x30"},
            {"series": 'sloguard_overflow_events_total{slo="search",job="sloguard"}', "values": "0x30"},
        ],
        [
            {"eval_time": "4m", "alertname": "SloguardDown", "exp_alerts": []},
            {
                "eval_time": "10m",
                "alertname": "SloguardDown",
                "exp_alerts": [
                    alert(
                        {"severity": "page"},
                        {
                            "summary": "sloguard is down or not scraped",
                            "description": "Prometheus has no sloguard_build_info: "
                            "no SLO burn-rate alert can fire.",
                        },
                    )
                ],
            },
            {"eval_time": "14m", "alertname": "SloguardConsumerLagGrowing", "exp_alerts": []},
            {
                "eval_time": "25m",
                "alertname": "SloguardConsumerLagGrowing",
                "exp_alerts": [
                    alert(
                        {"job": "sloguard", "partition": "0", "topic": "requests", "severity": "ticket"},
                        {
                            "summary": "sloguard is falling behind on requests/0",
                            "description": "The consumer lag of requests/0 is 12.5k messages and growing: "
                            "SLO alerts are late by as much.",
                        },
                    )
                ],
            },
            {
                "eval_time": "25m",
                "alertname": "SloguardInvalidEventsHigh",
                "exp_alerts": [
                    alert(
                        {"job": "sloguard", "severity": "ticket"},
                        {
                            "summary": "sloguard rejects many input events",
                            "description": "Invalid events are 2% of processed events "
                            "(sloguard_events_invalid_total by reason tells why); "
                            "rejected events are not in any SLO.",
                        },
                    )
                ],
            },
            {
                "eval_time": "25m",
                "alertname": "SloguardSeriesOverflow",
                "exp_alerts": [
                    alert(
                        {"job": "sloguard", "slo": "checkout", "severity": "ticket"},
                        {
                            "summary": "SLO checkout has more series than max_series",
                            "description": "1 events/s of SLO checkout go to its __overflow__ series: raise "
                            "max_series or group by fewer labels.",
                        },
                    )
                ],
            },
        ],
    ),
    # The healthy baseline raises nothing of the SLO's.
    "healthy": (
        healthy(),
        [
            {"eval_time": "10m", "alertname": name, "exp_alerts": []}
            for name in (BURN_ALERT, BUDGET_EXHAUSTED_ALERT, NO_DATA_ALERT)
        ],
    ),
}


def promtool_test(
    tmp_path: Path, slo_file: str, input_series: list[dict[str, str]], alert_tests: list[dict[str, Any]]
) -> None:
    """`promtool test rules` of the rules generated for ``slo_file`` on these series and expectations."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(to_yaml(generate(parse_config(slo_file, "slo.yaml"))))
    test = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": input_series, "alert_rule_test": alert_tests}],
    }
    test_file = tmp_path / "test.yaml"
    test_file.write_text(yaml.safe_dump(test, sort_keys=False))
    proc = run("test", "rules", str(test_file))
    assert proc.returncode == 0, f"{test_file.read_text()}\n{proc.stdout}{proc.stderr}"


@pytest.mark.parametrize("case", list(CASES))
def test_rules_unit(case: str, tmp_path: Path) -> None:
    promtool_test(tmp_path, SLO, *CASES[case])


# -- promtool test rules: latency alerts --------------------------------------------------------------

LATENCY = """\
apiVersion: sloguard/v1
slos:
  - {name: checkout, service: checkout, objective: 99.9, sli: {type: availability}, window: 30d}
latency:
  group_by: [service, endpoint]
  windows: [1m, 5m]
  alerts:
    - {percentile: 99, window: 5m, threshold_ms: 3000, min_events: 100, for: 5m}
    - {percentile: 99.9, window: 1m, threshold_ms: 1500, severity: page, for: 0s,
       match: {service: checkout, endpoint: "POST /v1/orders"}}
"""

ORDERS = 'endpoint="POST /v1/orders",instance="sloguard:9464",job="sloguard",service="checkout"'
SEARCH = 'endpoint="GET /v1/search",instance="sloguard:9464",job="sloguard",service="search"'


def latency_series(target: str, quantile: str, window: str, values: str) -> dict[str, str]:
    return {
        "series": f'sloguard_latency_seconds{{{target},quantile="{quantile}",window="{window}"}}',
        "values": values,
    }


def latency_events(target: str, window: str, values: str) -> dict[str, str]:
    return {"series": f'sloguard_latency_events{{{target},window="{window}"}}', "values": values}


def latency_alert(
    target: str, severity: str, quantile: str, window: str, threshold: str, annotations: dict[str, str]
) -> dict[str, Any]:
    labels = dict(part.split("=", 1) for part in target.split(","))
    return alert(
        {
            **{k: v.strip('"') for k, v in labels.items()},
            "quantile": quantile,
            "window": window,
            "severity": severity,
            "threshold_ms": threshold,
        },
        annotations,
    )


def latency_annotations(
    p: str, window: str, service: str, endpoint: str, value: str, threshold: str, min_events: int
) -> dict[str, str]:
    where = f"(service={service}, endpoint={endpoint})"
    guard = f" (with at least {min_events} events)" if min_events else ""
    return {
        "summary": f"{p} latency {where} is {value} over {window}",
        "description": f"The {p} latency over {window} {where} is {value}, above the {threshold} ms "
        f"threshold{guard}. Percentiles come from an HDR histogram with 2 significant figures.",
    }


LATENCY_CASES: dict[str, tuple[list[dict[str, str]], list[dict[str, Any]]]] = {
    # p99 over 3 s with enough events, held 5m: pending at 4m, firing at 10m; only for that group.
    "p99-over-threshold": (
        [
            latency_series(SEARCH, "0.99", "5m", "3.2x20"),
            latency_events(SEARCH, "5m", "5000x20"),
            latency_series(ORDERS, "0.99", "5m", "0.9x20"),
            latency_events(ORDERS, "5m", "5000x20"),
        ],
        [
            {"eval_time": "4m", "alertname": LATENCY_ALERT, "exp_alerts": []},
            {
                "eval_time": "10m",
                "alertname": LATENCY_ALERT,
                "exp_alerts": [
                    latency_alert(
                        SEARCH,
                        "ticket",
                        "0.99",
                        "5m",
                        "3000",
                        latency_annotations("p99", "5m", "search", "GET /v1/search", "3.2s", "3000", 100),
                    )
                ],
            },
        ],
    ),
    # Exactly at the threshold (strictly greater fires) and just under: nothing.
    "at-and-under-threshold": (
        [
            latency_series(SEARCH, "0.99", "5m", "3x20"),
            latency_events(SEARCH, "5m", "5000x20"),
            latency_series(ORDERS, "0.99", "5m", "2.999x20"),
            latency_events(ORDERS, "5m", "5000x20"),
        ],
        [{"eval_time": "10m", "alertname": LATENCY_ALERT, "exp_alerts": []}],
    ),
    # Low traffic: 99 events < min_events 100, however slow.
    "low-traffic": (
        [latency_series(SEARCH, "0.99", "5m", "60x20"), latency_events(SEARCH, "5m", "99x20")],
        [{"eval_time": "10m", "alertname": LATENCY_ALERT, "exp_alerts": []}],
    ),
    # The matched alert (p99.9 over 1m > 1.5 s, page, no hold) fires for checkout POST /v1/orders only;
    # the same percentile on another group does not fire it.
    "matched-group": (
        [
            latency_series(ORDERS, "0.999", "1m", "1.6x20"),
            latency_series(SEARCH, "0.999", "1m", "9x20"),
        ],
        [
            {
                "eval_time": "1m",
                "alertname": LATENCY_ALERT,
                "exp_alerts": [
                    latency_alert(
                        ORDERS,
                        "page",
                        "0.999",
                        "1m",
                        "1500",
                        latency_annotations("p99.9", "1m", "checkout", "POST /v1/orders", "1.6s", "1500", 0),
                    )
                ],
            },
        ],
    ),
}


@pytest.mark.parametrize("case", list(LATENCY_CASES))
def test_latency_rules_unit(case: str, tmp_path: Path) -> None:
    promtool_test(tmp_path, LATENCY, *LATENCY_CASES[case])


# -- promtool test rules: Sloth's getting-started example (labels, alert name, severities) -------------

SLOTH_EXAMPLE = ROOT / "config" / "examples" / "sloth-getting-started.yaml"
#: The series as sloguard exports them for that SLO: the SLO's static labels on each.
SLOTH_TARGET = (
    'instance="sloguard:9464",job="sloguard",owner="myteam",repo="myorg/myservice",'
    'slo="requests-availability",tier="2"'
)
SLOTH_STATIC = {"owner": "myteam", "repo": "myorg/myservice", "tier": "2"}


def sloth_series(metric: str, values: str, window: str | None = None) -> dict[str, str]:
    labels = SLOTH_TARGET + (f',window="{window}"' if window else "")
    return {"series": f"{metric}{{{labels}}}", "values": values}


def test_sloth_example_alerts_with_its_name_severities_and_routing_labels(tmp_path: Path) -> None:
    burn = {"5m": "20x20", "1h": "15x20", "30m": "0x20", "6h": "0x20", "2h": "4x20", "1d": "3.5x20"}
    series = [sloth_series("sloguard_slo_burn_rate", v, w) for w, v in burn.items()]
    series.append(sloth_series("sloguard_slo_error_budget_remaining_ratio", "0.5x20"))
    target = {"instance": "sloguard:9464", "job": "sloguard", "slo": "requests-availability", **SLOTH_STATIC}
    page = {
        **target,
        "severity": "pageteam",
        "long_window": "1h",
        "short_window": "5m",
        "category": "availability",
        "routing_key": "myteam",
    }
    ticket = {
        **target,
        "severity": "slack",
        "long_window": "1d",
        "short_window": "2h",
        "category": "availability",
        "slack_channel": "#alerts-myteam",
    }

    def notes(value: str, long: str, short: str, factor: str) -> dict[str, str]:
        return {
            "summary": "High error rate on 'myservice' requests responses",  # Sloth's, replacing sloguard's
            "description": f"The {long} burn rate of SLO requests-availability is {value} (objective 99.9%); "
            f"the {long} and {short} burn rates both exceed {factor}. A burn rate of 1 spends the budget in "
            "exactly one period (30d).",
        }

    no_data = {
        "summary": "No data for SLO requests-availability",
        "description": "Prometheus has no sloguard_slo_objective_ratio for SLO requests-availability: "
        "sloguard is down, not scraped, or runs a config without this SLO. Its burn-rate alerts cannot fire.",
    }
    tests: list[dict[str, Any]] = [
        {
            "eval_time": "10m",
            "alertname": "MyServiceHighErrorRate",
            "exp_alerts": [
                alert(page, notes("15", "1h", "5m", "14.4")),
                alert(ticket, notes("3.5", "1d", "2h", "3")),
            ],
        },
        # The objective is absent: no-data names the SLO and carries its static labels (absent() keeps
        # only its selector's, so they come from the rule).
        {
            "eval_time": "10m",
            "alertname": NO_DATA_ALERT,
            "exp_alerts": [
                alert({"slo": "requests-availability", "severity": "ticket", **SLOTH_STATIC}, no_data)
            ],
        },
        {"eval_time": "10m", "alertname": BURN_ALERT, "exp_alerts": []},
    ]
    promtool_test(tmp_path, SLOTH_EXAMPLE.read_text(), series, tests)
