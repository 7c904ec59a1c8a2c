"""`sloguard report sla` in process: usage errors, exit statuses, a range and a partial month with its
projection, the HTML page's own CSP. The month-long ground truth is tests/e2e/test_sla_report.py."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import pytest

from sloguard.cli import main
from sloguard.report_sla.html import STYLE

SLOS = """\
apiVersion: sloguard/v1
slos:
  - {name: api, service: api, objective: 99.9, sli: {type: availability}, window: 30d}
slas:
  - {name: compute, slo: api, preset: aws-compute}
  - {name: s3, slo: api, preset: aws-s3}
"""
T0 = 1_793_491_200_000  # 2026-11-01T00:00:00Z


def line(minute: int, customer: str, status: int) -> str:
    return (
        f'{{"ts": {T0 + minute * 60_000 + 5}, "service": "api", "endpoint": "GET /", '
        f'"customer": "{customer}", "status": {status}, "latency_ms": 1}}\n'
    )


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "slos.yaml").write_text(SLOS)
    # acme: one request a minute for the first 2 days, minutes 60-89 failing.
    text = "".join(line(m, "acme", 500 if 60 <= m < 90 else 200) for m in range(2 * 1440))
    (tmp_path / "r.ndjson").write_text(text)
    return tmp_path / "slos.yaml", tmp_path / "r.ndjson"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["report", "sla", *args])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give either --month YYYY-MM or --from and --to"),
        (["--month", "2026-11", "--from", "2026-11-01"], "give either --month"),
        (["--from", "2026-11-01"], "--from and --to are both needed"),
        (["--month", "2026-11", "--sla", "nope"], "no SLA named nope (SLAs in the file: compute, s3)"),
        (["--month", "2026-11", "--checkpoint", "/tmp"], "give no request-log files"),
        (["--from", "2026-11-01T00:00:30Z", "--to", "2026-11-02"], "not a whole number of compute's slices"),
    ],
)
def test_usage_errors(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    slo, logs = files
    status, out, err = run(capsys, "--slo", str(slo), *args, str(logs))
    assert status == 2 and out == "" and message in err


def test_no_events_in_the_range_exits_3(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    slo, logs = files
    status, out, err = run(capsys, "--slo", str(slo), "--month", "2026-09", str(logs))
    assert status == 3 and json.loads(out)["slas"][0]["customers"] == [] and "no event" in err


def test_a_partial_month_is_projected(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    slo, logs = files
    now = "2026-11-02T00:00:00Z"  # one day of 30 elapsed; the last day (the projection's past) held it all
    status, out, _ = run(
        capsys, "--slo", str(slo), "--month", "2026-11", "--now", now, "--sla", "compute", str(logs)
    )
    assert status == 0
    (sla,) = json.loads(out)["slas"]
    (acme,) = sla["customers"]
    assert not sla["complete"] and sla["elapsed_slices"] == 1440 and sla["slices"] == 30 * 1440
    assert acme["attainment_exact"] == "47/48"  # 1410 / 1440
    assert acme["credit_percent"] == 30.0  # 97.9 %
    # 30 down minutes a day for 30 days: 900 of 43200.
    assert acme["projected_percent"] == pytest.approx((1 - 900 / 43200) * 100, rel=1e-15)
    assert acme["downtime"] == [
        {
            "start": "2026-11-01T01:00:00Z",
            "end": "2026-11-01T01:30:00Z",
            "seconds": 1800,
            "bad": 30,
            "total": 30,
        }
    ]


def test_a_range(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    slo, logs = files
    args = ("--from", "2026-11-01T02:00:00Z", "--to", "2026-11-02", "--format", "csv", "--sla", "compute")
    status, out, _ = run(capsys, "--slo", str(slo), *args, str(logs))
    assert status == 0
    _, row = out.splitlines()
    assert row.split(",")[:8] == ["compute", "acme", "OK", "100.0", "1320", "1320", "1320", "1320"]


def test_html_carries_the_hash_of_its_only_style(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    slo, logs = files
    page = tmp_path / "r.html"
    status, _, _ = run(
        capsys, "--slo", str(slo), "--month", "2026-11", "--format", "html", "-o", str(page), str(logs)
    )
    text = page.read_text()
    digest = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
    assert status == 0 and f"style-src 'sha256-{digest}'" in text and "default-src 'none'" in text
    assert re.findall(r"<style>(.*?)</style>", text, re.S) == [STYLE]
    assert "<script" not in text and " style=" not in text


def test_customers_over_the_cap_are_reported_under_overflow(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "slos.yaml").write_text(SLOS.replace("window: 30d}", "window: 30d, max_series: 2}"))
    customers = ["a", "b", "c", "d", "a"]
    (tmp_path / "r.ndjson").write_text(
        "".join(line(m, c, 500 if c == "c" else 200) for m, c in enumerate(customers))
    )
    args = ("--month", "2026-11", "--sla", "compute", str(tmp_path / "r.ndjson"))
    status, out, err = run(capsys, "--slo", str(tmp_path / "slos.yaml"), *args)
    (sla,) = json.loads(out)["slas"]
    got = {c["customer"]: (c["total"], c["good"]) for c in sla["customers"]}
    assert status == 0 and got == {"a": (2, 2), "b": (1, 1), "__overflow__": (2, 1)}
    assert sla["overflow_customers"] == 2 and sla["overflow_events"] == 2
    assert "warning: compute: 2 customers beyond the SLO's max_series (2)" in err


def test_html_escapes_what_the_logs_say(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    xss = "<img src=x onerror=alert(1)>"
    (tmp_path / "slos.yaml").write_text(SLOS)
    (tmp_path / "r.ndjson").write_text(line(0, xss, 500))
    page = tmp_path / "r.html"
    args = ("--month", "2026-11", "--format", "html", "-o", str(page), str(tmp_path / "r.ndjson"))
    status, _, _ = run(capsys, "--slo", str(tmp_path / "slos.yaml"), *args)
    text = page.read_text()
    assert status == 0 and xss not in text and "&lt;img src=x onerror=alert(1)&gt;" in text
