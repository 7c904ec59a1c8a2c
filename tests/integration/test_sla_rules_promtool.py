"""The SLA alert (``SloguardSlaCreditTierProjected``) under promtool: `check rules` and `test rules` on
synthetic series of the daemon's ``sloguard_sla_*`` gauges (issue 12 item 2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from sloguard.rules import SLA_ALERT, SLA_GROUP, generate, sla_expr, to_yaml
from sloguard.specfile import parse_config
from tests.integration.test_rules_promtool import promtool_test, run
from tests.integration.test_sla_daemon import SLOS as SLO

pytestmark = pytest.mark.promtool

TARGET = {"instance": "sloguard:9464", "job": "sloguard"}


def gauges(customer: str, credit: str, projected: str) -> list[dict[str, str]]:
    labels = f'sla="api-sla",customer="{customer}",instance="sloguard:9464",job="sloguard"'
    return [
        {"series": f"sloguard_sla_credit_percent{{{labels}}}", "values": credit},
        {"series": f"sloguard_sla_projected_credit_percent{{{labels}}}", "values": projected},
    ]


def fired(customer: str, value: str) -> dict[str, Any]:
    return {
        "exp_labels": {"severity": "ticket", "sla": "api-sla", "customer": customer, **TARGET},
        "exp_annotations": {
            "summary": f"SLA api-sla: {customer} heads for the {value}% credit tier",
            "description": f"At the rate of the last 1d, customer {customer} ends this calendar month (UTC) "
            f"of SLA api-sla (SLO api) in the {value}% credit tier, above the credit its attainment earns "
            "so far (sloguard_sla_credit_percent). Tiers: below 99.99% -> 10%, below 99% -> 30%, "
            "below 95% -> 100%.",
        },
    }


def test_generated_group() -> None:
    doc = generate(parse_config(SLO, "slo.yaml"))
    names = [g["name"] for g in doc["groups"]]
    assert names == ["sloguard-api", SLA_GROUP, "sloguard-daemon"]
    (rule,) = doc["groups"][1]["rules"]
    assert rule["alert"] == SLA_ALERT and rule["for"] == "15m"
    assert rule["expr"] == (
        'sloguard_sla_projected_credit_percent{sla="api-sla"}\n> sloguard_sla_credit_percent{sla="api-sla"}'
    )
    assert rule["expr"] == sla_expr(parse_config(SLO, "slo.yaml").slas[0])
    without = generate(parse_config(SLO.split("slas:")[0], "slo.yaml"))
    assert SLA_GROUP not in [g["name"] for g in without["groups"]]
    with pytest.raises(ValueError, match="sloguard-slas"):
        generate(
            parse_config(SLO.replace("name: api,", "name: slas,").replace("slo: api,", "slo: slas,"), "s")
        )


def test_check_rules(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(to_yaml(generate(parse_config(SLO, "slo.yaml"))))
    proc = run("check", "rules", "--lint=all", str(rules))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert yaml.safe_load(rules.read_text())["groups"][1]["name"] == SLA_GROUP


def test_rules_unit(tmp_path: Path) -> None:
    series = [
        # acme: 0 % now, heading for 10 % from minute 2 on: pending until 15m held, firing at 17m.
        *gauges("acme", "0x30", "0 0 10x28"),
        # globex: heading for the tier it is in already (30 %): nothing.
        *gauges("globex", "30x30", "30x30"),
        # initech: 10 % now, heading for 100 % for 10 minutes only, then back: never fires.
        *gauges("initech", "10x30", "10 100x10 10x19"),
        # hooli: 10 % now, heading for 30 % throughout: fires with value 30.
        *gauges("hooli", "10x30", "30x30"),
    ]
    tests = [
        {"eval_time": "16m", "alertname": SLA_ALERT, "exp_alerts": [fired("hooli", "30")]},
        {
            "eval_time": "17m",
            "alertname": SLA_ALERT,
            "exp_alerts": [fired("acme", "10"), fired("hooli", "30")],
        },
    ]
    promtool_test(tmp_path, SLO, series, tests)
