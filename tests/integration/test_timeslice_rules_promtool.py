"""Time-slice SLOs through the whole alerting path: the aggregator's snapshot, the daemon's real
exposition, and the generated rules evaluated by ``promtool test rules``. Each tier's rule selects exactly
the series whose tier the daemon itself judges firing (``SloSnapshot.firing``, exact fractions).

Marked ``promtool``: without promtool on PATH these fail (Debian package ``prometheus``).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from sloguard.core.aggregator import Aggregator
from sloguard.core.model import Event, EventBatch
from sloguard.export.collector import Exposition
from sloguard.rules import generate, tier_expr, to_yaml
from sloguard.specfile import parse_config
from sloguard.telemetry import TelemetrySnapshot
from tests.support.tools import require

pytestmark = pytest.mark.promtool

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z

SLOS = """\
apiVersion: sloguard/v1
slos:
  - name: minutes
    service: api
    objective: 99
    sli: {type: availability}
    window: 30d
    group_by: [customer]
    budgeting: {timeslices: {slice: 1m, good_ratio: 0.95}}
    alerts: {min_events: 10}
  - name: s3-style
    service: api
    objective: 99
    sli: {type: availability}
    window: {calendar: month, timezone: UTC}
    group_by: [customer]
    budgeting: {ratio_timeslices: {slice: 5m, empty: skip}}
"""

#: Series the burn-rate rules read.
READ = ("sloguard_slo_burn_rate", "sloguard_slo_events", "sloguard_slo_objective_ratio")


def traffic() -> list[Event]:
    """Three customers over two days; "down" fails every request of its last 40 minutes, "flaky" one
    in ten of its last 3 hours (bad 1m slices at good_ratio 0.95), "fine" never."""
    end = T0 + 2 * 86_400_000
    out = []
    for i in range(0, 2 * 86_400, 20):
        ts = T0 + i * 1000
        for n, customer in enumerate(("down", "flaky", "fine")):
            fail = (customer == "down" and ts >= end - 2_400_000) or (
                customer == "flaky" and ts >= end - 10_800_000 and (i // 20 + n) % 10 == 0
            )
            out.append(Event(ts, "api", "GET /x", customer, 503 if fail else 200, 1.0))
    return out


def test_generated_rules_fire_where_the_daemon_does(tmp_path: Path) -> None:
    config = parse_config(SLOS, "slos.yaml")
    agg = Aggregator(config)
    agg.ingest(EventBatch.from_events(traffic()))
    now = T0 + 2 * 86_400_000 + 30_000
    snap = agg.snapshot(now)
    body = Exposition(version="0").render(snap, TelemetrySnapshot()).decode()
    samples = [s for f in text_string_to_metric_families(body) for s in f.samples if s.name in READ]
    families = {f.name for f in text_string_to_metric_families(body)}
    assert {"sloguard_slo_time_slices", "sloguard_slo_bad_time_slices"} <= families
    input_series = [
        {
            "series": s.name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items())) + "}",
            "values": f"{s.value!r}x10",
        }
        for s in samples
    ]
    expr_tests = []
    firing_somewhere = 0
    for spec, slo in zip(config.slos, snap.slos, strict=True):
        for t, tier in enumerate(spec.tiers):
            firing = sorted(slo.labels[j][0] for j in range(slo.series) if slo.firing[t, j])
            firing_somewhere += len(firing)
            expr_tests.append(
                {
                    "expr": f"count by (customer) ({tier_expr(spec, tier)})",
                    "eval_time": "5m",
                    "exp_samples": [{"labels": f'{{customer="{c}"}}', "value": 1} for c in firing],
                }
            )
    assert firing_somewhere >= 3  # the page tiers of "down" in both SLOs, and a tier of "flaky"
    rules = tmp_path / "rules.yaml"
    rules.write_text(to_yaml(generate(config)))
    test = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": input_series, "promql_expr_test": expr_tests}],
    }
    test_file = tmp_path / "test.yaml"
    test_file.write_text(yaml.safe_dump(test, sort_keys=False))
    proc = subprocess.run(
        [require("promtool"), "test", "rules", str(test_file)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, f"{test_file.read_text()}\n{proc.stdout}{proc.stderr}"
    check = subprocess.run(
        [require("promtool"), "check", "metrics"], input=body, capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stdout + check.stderr
