"""`sloguard report sla` as a process on a month of generated per-customer traffic with an outage that
puts customers into each credit tier (and one at each side of the first tier's boundary).

Every attainment, credit and downtime period is computed here independently, from the generated events
(plain dicts and Fractions, no sloguard code), and compared with the report's JSON; the CSV carries the
same figures; the HTML page renders in headless Chromium without a console error (its own CSP allows only
its inline style sheet). ``SLOGUARD_WRITE_DOCS=1`` writes the screenshot docs/img/sla-report.png.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import random
import subprocess
import sys
from collections import defaultdict
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By

from tests.e2e.test_ui import browser, console_errors

__all__ = ["browser"]  # the fixture, imported to be used here

T0 = 1_790_812_800_000  # 2026-10-01T00:00:00Z
MINUTES = 31 * 24 * 60  # October
MIN_MS = 60_000
OUTAGE = 20_000  # the minute the outage starts (2026-10-14T21:20Z)
#: Down minutes per customer (each 4 events, 3 bad), from the outage start; omega's in two periods.
DOWN = {"acme": 0, "edge": 4, "beta": 5, "gamma": 300, "delta": 1000, "omega": 3000}
REPO = Path(__file__).resolve().parents[2]

SLO_FILE = """\
apiVersion: sloguard/v1
slos:
  - name: api-availability
    service: api
    objective: 99.9
    sli: {type: availability}
    window: {calendar: month}
    group_by: [customer]
slas:
  - {name: api-sla, slo: api-availability, per: customer, preset: aws-compute, min_events: 100}
  - {name: storage-sla, slo: api-availability, per: customer, preset: aws-s3, min_events: 100}
"""

#: (below %, credit %) of the presets, as the test knows them.
COMPUTE = ((Fraction("99.99"), 10), (Fraction(99), 30), (Fraction(95), 100))
S3 = ((Fraction("99.9"), 10), (Fraction(99), 25), (Fraction(95), 100))


def down_minutes(customer: str) -> list[int]:
    n = DOWN.get(customer, 0)
    if customer == "omega":
        return [*range(OUTAGE, OUTAGE + 2000), *range(OUTAGE + 5000, OUTAGE + 6000)]
    return list(range(OUTAGE, OUTAGE + n))


Row = tuple[int, str, str, int]  # ts_ms, service, customer, status


def generate() -> list[Row]:
    rnd = random.Random(12)
    rows: list[Row] = []
    for customer in DOWN:
        down = set(down_minutes(customer))
        for m in range(MINUTES):
            base = T0 + m * MIN_MS
            if m in down:
                rows += [(base + rnd.randrange(MIN_MS), "api", customer, s) for s in (503, 500, 502, 200)]
            else:
                rows.append((base + rnd.randrange(MIN_MS), "api", customer, 200))
    # acme: 30 minutes at exactly 5 % errors (1 of 20): not down, only "above 5 %" is.
    for m in range(1000, 1030):
        rows += [(T0 + m * MIN_MS + 100 * k, "api", "acme", 500 if k == 0 else 200) for k in range(19)]
    # quiet: 50 events, all bad: below min_events, so INSUFFICIENT_DATA and no credit.
    rows += [(T0 + k * 3_600_000, "api", "quiet", 500) for k in range(50)]
    # Outside the month, or another service: not counted.
    rows += [(T0 - 1, "api", "acme", 500), (T0 + MINUTES * MIN_MS, "api", "acme", 500)]
    rows += [(T0 + 5 * MIN_MS, "search", "acme", 500)]
    rnd.shuffle(rows)
    return rows


def line(row: Row) -> str:
    ts, service, customer, status = row
    return (
        f'{{"ts": {ts}, "service": "{service}", "endpoint": "GET /v1/items", "customer": "{customer}", '
        f'"status": {status}, "latency_ms": 12.5}}\n'
    )


def credit(attainment: Fraction, tiers: tuple[tuple[Fraction, int], ...]) -> int:
    return max((pct for below, pct in tiers if attainment * 100 < below), default=0)


def expected(rows: list[Row]) -> dict[str, dict[str, Any]]:
    """Per customer, from the rows alone: counts per minute and per 5 minutes, then both SLAs' figures."""
    minute: dict[str, dict[int, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for ts, service, customer, status in rows:
        if service != "api" or not T0 <= ts < T0 + MINUTES * MIN_MS:
            continue
        cell = minute[customer][(ts - T0) // MIN_MS]
        cell[0] += 1
        cell[1] += status >= 500
    out: dict[str, dict[str, Any]] = {}
    for customer, cells in minute.items():
        total = sum(t for t, _ in cells.values())
        bad = sum(b for _, b in cells.values())
        down = sorted(m for m, (t, b) in cells.items() if Fraction(b, t) > Fraction(5, 100))
        periods: list[list[int]] = []
        for m in down:
            if periods and periods[-1][1] == m:
                periods[-1][1] = m + 1
            else:
                periods.append([m, m + 1])
        fives: dict[int, list[int]] = defaultdict(lambda: [0, 0])
        for m, (t, b) in cells.items():
            fives[m // 5][0] += t
            fives[m // 5][1] += b
        s3 = 1 - sum((Fraction(b, t) for t, b in fives.values()), Fraction(0)) / (MINUTES // 5)
        compute = Fraction(MINUTES - len(down), MINUTES)
        enough = total >= 100
        out[customer] = {
            "total": total,
            "good": total - bad,
            "compute": compute if enough else None,
            "compute_credit": credit(compute, COMPUTE) if enough else None,
            "s3": s3 if enough else None,
            "s3_credit": credit(s3, S3) if enough else None,
            "periods": [(T0 + a * MIN_MS, T0 + b * MIN_MS) for a, b in periods],
        }
    return out


def iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat().replace("+00:00", "Z")


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[str, Any]]]:
    d = tmp_path_factory.mktemp("sla")
    rows = generate()
    (d / "slos.yaml").write_text(SLO_FILE)
    (d / "requests.ndjson").write_text("".join(map(line, rows)))
    return d, expected(rows)


def report(d: Path, fmt: str, *extra: str) -> subprocess.CompletedProcess[str]:
    args = ["report", "sla", "--slo", str(d / "slos.yaml"), "--month", "2026-10", "--format", fmt, *extra]
    return subprocess.run(
        [sys.executable, "-m", "sloguard", *args, str(d / "requests.ndjson")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_attainment_and_credits_equal_ground_truth(month: tuple[Path, dict[str, dict[str, Any]]]) -> None:
    d, want = month
    proc = report(d, "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    compute, storage = doc["slas"]
    assert (compute["name"], storage["name"]) == ("api-sla", "storage-sla")
    assert compute["complete"] and compute["start"] == "2026-10-01T00:00:00Z"
    assert compute["end"] == "2026-11-01T00:00:00Z" and compute["slices"] == MINUTES
    for sla, key in ((compute, "compute"), (storage, "s3")):
        got = {c["customer"]: c for c in sla["customers"]}
        assert sorted(got) == sorted(want)
        for customer, w in want.items():
            c = got[customer]
            assert (c["good"], c["total"]) == (w["good"], w["total"]), customer
            if w[key] is None:
                assert c["status"] == "INSUFFICIENT_DATA" and c["attainment_percent"] is None
                assert c["credit_percent"] is None
                continue
            assert c["status"] == "OK" and c["credit_percent"] == w[f"{key}_credit"], customer
            if key == "compute":  # exact: a ratio of whole minutes
                assert Fraction(c["attainment_exact"]) == w[key], customer
                assert c["attainment_percent"] == float(w[key] * 100)
                periods = [(d["start"], d["end"]) for d in c["downtime"]]
                assert periods == [(iso(a), iso(b)) for a, b in w["periods"]], customer
            else:  # the mean of 8928 float error rates
                assert c["attainment_percent"] == pytest.approx(float(w[key] * 100), rel=1e-12, abs=0)
    # Every tier is reached by someone, and each side of the 99.99 % boundary is taken.
    credits = {c["customer"]: c["credit_percent"] for c in compute["customers"]}
    assert credits == {
        "acme": 0,
        "edge": 0,
        "beta": 10,
        "gamma": 10,
        "delta": 30,
        "omega": 100,
        "quiet": None,
    }
    s3 = {c["customer"]: c["credit_percent"] for c in storage["customers"]}
    assert {s3["gamma"], s3["delta"], s3["omega"]} == {10, 25, 100}


def test_csv_has_the_same_figures(month: tuple[Path, dict[str, dict[str, Any]]]) -> None:
    d, want = month
    proc = report(d, "csv", "--sla", "api-sla")
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert [r["customer"] for r in rows] == sorted(want)
    for r in rows:
        w = want[r["customer"]]
        assert int(r["total"]) == w["total"]
        assert r["credit_percent"] == (
            "" if w["compute_credit"] is None else repr(float(w["compute_credit"]))
        )
        assert int(r["downtime_periods"]) == len(w["periods"])


def test_html_renders_in_chromium(month: tuple[Path, dict[str, dict[str, Any]]], browser: WebDriver) -> None:
    d, _ = month
    page = d / "sla.html"
    proc = report(d, "html", "-o", str(page))
    assert proc.returncode == 0, proc.stderr
    browser.get(page.as_uri())
    assert browser.title == "SLA report"
    sections = browser.find_elements(By.CSS_SELECTOR, "section")
    assert len(sections) == 2
    rows = sections[0].find_elements(By.CSS_SELECTOR, "table.customers tbody tr")
    # Worst attainment first; INSUFFICIENT_DATA last.
    assert [r.find_element(By.CSS_SELECTOR, "td").text for r in rows] == [
        "omega",
        "delta",
        "gamma",
        "beta",
        "edge",
        "acme",
        "quiet",
    ]
    assert "100 % credit" in rows[0].text and "insufficient data" in rows[-1].text
    assert console_errors(browser) == []
    if os.environ.get("SLOGUARD_WRITE_DOCS") == "1":
        browser.set_window_size(1400, 900)
        browser.save_screenshot(str(REPO / "docs" / "img" / "sla-report.png"))


def test_checkpoint_with_logs_is_refused_with_a_reason(month: tuple[Path, dict[str, dict[str, Any]]]) -> None:
    # The report from a checkpoint: tests/unit/test_report_sla_checkpoint.py (equal to the one from logs).
    d, _ = month
    proc = report(d, "json", "--checkpoint", str(d))
    assert proc.returncode == 2 and "give no request-log files" in proc.stderr and proc.stdout == ""
