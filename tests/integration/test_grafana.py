"""deploy/grafana: the dashboards against the real tools.

* Every dashboard type-checks against ``@grafana/schema`` with ``tsc --strict`` (``deploy/grafana/check.mjs``:
  each file assigned as an object literal, so unknown keys fail too), and deliberately broken copies are
  rejected — the check is real.
* Structure: every panel and target reads through the ``datasource`` variable, every variable used is
  defined (before the variables that use it), uids are stable and unique, the template variables the
  dashboards promise exist, the grid does not overlap, the dashboards link to each other.
* Every metric a query reads is one sloguard exports, every alert name one its rules define, and every
  query (variables filled in) parses with Prometheus 2.42's promtool.

Running the queries against data is ``tests/e2e/test_paging.py``'s job.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.dashboard_png import (
    DATASOURCE,
    GRAFANA_DIR,
    REPO,
    Selection,
    interpolate,
    load_dashboards,
    panels,
    parse_label_values,
    referenced_variables,
    strings,
    variables,
)
from tests.support.tools import require

NODE_MODULES = GRAFANA_DIR / "node_modules"
CHECK = GRAFANA_DIR / "check.mjs"

#: file stem -> (uid, template variables it must have besides `datasource`)
EXPECTED = {
    "slo-overview": ("sloguard-slo-overview", {"slo"}),
    "slo-detail": ("sloguard-slo-detail", {"slo", "endpoint", "customer"}),
    "latency": ("sloguard-latency", {"service", "endpoint"}),
    "customers": ("sloguard-customers", {"slo", "customer"}),
    "sloguard-health": ("sloguard-health", {"job", "instance"}),
}
DASHBOARDS = load_dashboards()

#: Values for the variables when only the syntax matters; regex specials on purpose (escaping).
SAMPLE_VALUES = {
    "datasource": "prometheus",
    "slo": "checkout-availability",
    "endpoint": "GET /v1/orders/{id}",
    "service": "checkout",
    "customer": "cust-0001",
    "window": "1h",
    "top": "10",
    "job": "sloguard",
    "instance": "127.0.0.1:9464",
}


def by_name() -> list[Any]:
    return [pytest.param(name, DASHBOARDS[name], id=name) for name in DASHBOARDS]


def test_the_expected_dashboards_exist() -> None:
    assert set(DASHBOARDS) == set(EXPECTED)


# -- tsc against @grafana/schema ----------------------------------------------------------------------------


def node_deps() -> None:
    require("node")
    missing = [
        p
        for p in (
            NODE_MODULES / "typescript" / "bin" / "tsc",
            NODE_MODULES / "@grafana" / "schema" / "package.json",
        )
        if not p.exists()
    ]
    if missing:
        pytest.fail(f"{NODE_MODULES.relative_to(REPO)} lacks {missing[0].name}: run make node-deps")


def check(*files: Path) -> subprocess.CompletedProcess[str]:
    node_deps()
    return subprocess.run(
        ["node", str(CHECK), *map(str, files)],
        cwd=GRAFANA_DIR,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_every_dashboard_type_checks_against_grafana_schema() -> None:
    res = check()
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"ok: {len(DASHBOARDS)} dashboard(s)" in res.stdout


def _set(path: str, value: Any) -> Any:
    """A mutation of a dashboard: set the value at a dotted path (integers index lists)."""

    def mutate(d: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = d
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[int(last) if isinstance(node, list) else last] = value

    return mutate


def first_panel(dashboard: dict[str, Any], kind: str) -> int:
    return next(i for i, p in enumerate(dashboard["panels"]) if p["type"] == kind)


DETAIL = DASHBOARDS["slo-detail"]
TS = first_panel(DETAIL, "timeseries")
TABLE = first_panel(DETAIL, "table")


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        pytest.param(
            _set("schemaVersion", "42"), "Type 'string' is not assignable to type 'number'", id="type"
        ),
        pytest.param(_set("panles", []), "'\"panles\"' does not exist in type", id="unknown-key"),
        pytest.param(
            _set(f"panels.{TS}.fieldConfig.defaults.custom.drawStyle", "lines"),
            "Type '\"lines\"' is not assignable",
            id="panel-plugin-option",
        ),
        pytest.param(
            _set(f"panels.{TABLE}.options.cellHeight", "tiny"),
            "Type '\"tiny\"' is not assignable",
            id="table-option",
        ),
        pytest.param(
            _set(f"panels.{TS}.fieldConfig.defaults.thresholds.mode", "absolut"),
            "Type '\"absolut\"' is not assignable",
            id="enum-value",
        ),
        pytest.param(
            _set(f"panels.{TS}.targets.0.legend", "x"),
            "'\"legend\"' does not exist in type 'PrometheusQuery'",
            id="prometheus-target-key",
        ),
        pytest.param(_set("templating.list.0.type", "dropdown"), "not assignable", id="variable-type"),
    ],
)
def test_a_broken_dashboard_is_rejected_by_tsc(tmp_path: Path, mutate: Any, error: str) -> None:
    broken = copy.deepcopy(DETAIL)
    mutate(broken)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken, indent=2) + "\n")
    res = check(path)
    assert res.returncode != 0, res.stdout
    assert error in res.stdout, res.stdout
    assert re.search(r"broken\.json\(\d+,\d+\): error TS\d+", res.stdout), res.stdout


def test_installed_versions_are_the_pinned_ones() -> None:
    node_deps()
    wanted = json.loads((GRAFANA_DIR / "package.json").read_text())["devDependencies"]
    lock = json.loads((GRAFANA_DIR / "package-lock.json").read_text())["packages"]
    for name, version in wanted.items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name}: pin an exact version, not {version!r}"
        assert lock[f"node_modules/{name}"]["version"] == version
        installed = json.loads((NODE_MODULES / name / "package.json").read_text())["version"]
        assert installed == version, f"{name} {installed} installed, {version} pinned: run make node-deps"


@pytest.mark.parametrize(("name", "dashboard"), by_name())
def test_schema_version_is_the_current_one(name: str, dashboard: dict[str, Any]) -> None:
    node_deps()
    source = NODE_MODULES / "@grafana/schema/dist/esm/raw/dashboard/x/types.gen.mjs"
    m = re.search(r"schemaVersion:\s*(\d+)", source.read_text())
    assert m, f"no default schemaVersion in {source}"
    assert dashboard["schemaVersion"] == int(m.group(1))


# -- structure ----------------------------------------------------------------------------------------------


def test_uids_are_stable_and_unique() -> None:
    uids = {name: d["uid"] for name, d in DASHBOARDS.items()}
    assert uids == {name: uid for name, (uid, _) in EXPECTED.items()}
    assert len(set(uids.values())) == len(uids)


@pytest.mark.parametrize(("name", "dashboard"), by_name())
def test_every_panel_and_target_reads_through_the_datasource_variable(
    name: str, dashboard: dict[str, Any]
) -> None:
    first = variables(dashboard)[0]
    assert (first["type"], first["name"], first["query"]) == ("datasource", "datasource", "prometheus")
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {ids}"
    for p in panels(dashboard):
        where = f"{name}: panel {p['title']!r}"
        assert p["datasource"] == DATASOURCE, where
        assert p["targets"], f"{where} has no targets"
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), f"{where}: duplicate refIds {refs}"
        for t in p["targets"]:
            assert t["datasource"] == DATASOURCE, f"{where} target {t['refId']}"
            assert t["expr"].strip(), f"{where} target {t['refId']} has no query"
    for v in variables(dashboard):
        if v["type"] == "query":
            assert v["datasource"] == DATASOURCE, f"{name}: variable {v['name']}"


@pytest.mark.parametrize(("name", "dashboard"), by_name())
def test_every_variable_used_is_defined_first(name: str, dashboard: dict[str, Any]) -> None:
    defined: list[str] = []
    for v in variables(dashboard):
        used = referenced_variables(json.dumps(v.get("query", "")))
        assert used <= set(defined), (
            f"{name}: variable {v['name']} uses {used - set(defined)} before definition"
        )
        defined.append(v["name"])
    assert len(defined) == len(set(defined)), f"{name}: duplicate variables {defined}"
    used = set().union(*(referenced_variables(s) for s in strings(dashboard)))
    assert used <= set(defined), f"{name}: undefined variables {sorted(used - set(defined))}"


@pytest.mark.parametrize(("name", "dashboard"), by_name())
def test_the_template_variables_the_dashboards_promise(name: str, dashboard: dict[str, Any]) -> None:
    by_var = {v["name"]: v for v in variables(dashboard)}
    assert EXPECTED[name][1] <= set(by_var), f"{name} lacks {EXPECTED[name][1] - set(by_var)}"
    for v in by_var.values():
        if v["type"] == "query":
            parse_label_values(v["query"])  # Grafana's Prometheus variable query
            assert v.get("refresh") in (1, 2), f"{name}: {v['name']} never refreshes"
        if v.get("includeAll"):
            # "All" must also match series without the label (SLOs not grouped by it): .* does.
            assert v.get("allValue") == ".*", f"{name}: {v['name']}"


@pytest.mark.parametrize(("name", "dashboard"), by_name())
def test_grid_layout_fits_and_does_not_overlap(name: str, dashboard: dict[str, Any]) -> None:
    taken: dict[tuple[int, int], str] = {}
    for p in dashboard["panels"]:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24 and g["h"] > 0, f"{name}: {p['title']} {g}"
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in taken, f"{name}: {p['title']!r} overlaps {taken[(x, y)]!r}"
                taken[(x, y)] = p["title"]


@pytest.mark.parametrize(("name", "dashboard"), by_name())
def test_dashboards_link_to_each_other(name: str, dashboard: dict[str, Any]) -> None:
    tagged = [link for link in dashboard["links"] if link["type"] == "dashboards"]
    assert any("sloguard" in link["tags"] for link in tagged), f"{name}: no link to the other dashboards"
    for d in DASHBOARDS.values():
        assert "sloguard" in d["tags"]


def test_the_overview_links_to_the_detail_of_each_slo() -> None:
    detail = f"/d/{EXPECTED['slo-detail'][0]}/"
    links = [s for s in strings(DASHBOARDS["slo-overview"]["panels"]) if s.startswith(detail)]
    assert links, "no data link from the overview to the SLO detail"
    for url in links:
        assert "var-slo=${__value.raw}" in url or "var-slo=${__field.labels.slo}" in url, url
        assert "${datasource:queryparam}" in url and "${__url_time_range}" in url, url


def test_the_provisioning_file_is_a_file_provider() -> None:
    doc = yaml.safe_load((GRAFANA_DIR / "provisioning" / "dashboards" / "sloguard.yaml").read_text())
    assert doc["apiVersion"] == 1
    (provider,) = doc["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]


# -- metrics, alerts, PromQL --------------------------------------------------------------------------------


def exported_metrics() -> set[str]:
    """Metric names sloguard's exporter writes (sloguard/export/ is their one home: a module per source)."""
    source = "\n".join(p.read_text() for p in sorted((REPO / "sloguard" / "export").glob("*.py")))
    return set(re.findall(r'"(sloguard_[a-z0-9_]+)"', source))


def alert_names() -> set[str]:
    source = (REPO / "sloguard" / "rules.py").read_text()
    return set(re.findall(r'"(Sloguard[A-Za-z]+)"', source))


def queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) of every target and query variable."""
    out = [
        (f"panel {p['title']!r} target {t['refId']}", t["expr"])
        for p in panels(dashboard)
        for t in p["targets"]
    ]
    for v in variables(dashboard):
        if v["type"] == "query":
            selector, _ = parse_label_values(v["query"])
            if selector:
                out.append((f"variable {v['name']}", selector))
    return out


@pytest.mark.parametrize(("name", "dashboard"), by_name())
def test_queries_read_only_metrics_sloguard_exports(name: str, dashboard: dict[str, Any]) -> None:
    exported = exported_metrics()
    assert {"sloguard_slo_burn_rate", "sloguard_latency_seconds", "sloguard_consumer_lag"} <= exported
    alerts = alert_names()
    assert "SloguardErrorBudgetBurn" in alerts
    for where, expr in queries(dashboard):
        for metric in re.findall(r"\bsloguard_[a-z0-9_]+", expr):
            assert metric in exported, f"{name}: {where} reads {metric}, which sloguard does not export"
        for alert in re.findall(r'alertname="([^"]+)"', expr):
            assert alert in alerts, f"{name}: {where} reads alert {alert}, which the rules do not define"
        for selector in re.findall(r"\b([A-Za-z_:][A-Za-z0-9_:]*)\{", expr):
            assert selector.startswith("sloguard_") or selector in ("ALERTS", "up"), f"{name}: {where}"


@pytest.mark.promtool
def test_every_query_parses_with_promtool(tmp_path: Path) -> None:
    """promtool (Prometheus 2.42) parses each query as a recording rule, variables filled in."""
    promtool = require("promtool")
    rules = []
    for name, dashboard in DASHBOARDS.items():
        multi = frozenset(v["name"] for v in variables(dashboard) if v.get("multi") or v.get("includeAll"))
        selection = Selection(SAMPLE_VALUES, regex=multi)
        for i, (where, expr) in enumerate(queries(dashboard)):
            query = interpolate(expr, selection)
            assert "$" not in query.replace('"$1"', ""), f"{name}: {where}: uninterpolated: {query}"
            rules.append({"record": f"dashboard:{name.replace('-', '_')}:{i}", "expr": query})
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    res = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"SUCCESS: {len(rules)} rules found" in res.stdout
