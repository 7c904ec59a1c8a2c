"""The CLI as a process on an OpenSLO v1 stream: `check`, `replay`, `rules` and `convert` accept it, replay
counts exactly what the OpenSLO SLIs select, and a refused stream ends in one line per problem, exit 2."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

OPENSLO = Path(__file__).resolve().parents[1] / "testdata" / "openslo"
STREAM = OPENSLO / "checkout.yaml"
SAME_AS_SLOGUARD = OPENSLO / "checkout.sloguard.yaml"
NOW = "2026-01-03T00:00:00Z"
ORDERS = ("POST /v1/orders", "POST /v1/orders/42/pay", "GET /v1/orders/7", "GET /v1/orders/health")
ENDPOINTS = (*ORDERS, "GET /search", "GET /search?q=caf\u00e9", "GET /v1/cart")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sloguard", *args], capture_output=True, text=True, timeout=120, check=False
    )


def make_log(path: Path, n: int = 3000, seed: int = 12) -> list[dict[str, Any]]:
    """Request-log lines as real services write them: extra and nested fields, any key order, escapes."""
    rnd = random.Random(seed)
    events = []
    lines = []
    for i in range(n):
        event = {
            "ts": f"2026-01-0{1 + i % 2}T{rnd.randrange(24):02d}:{rnd.randrange(60):02d}:00Z",
            "service": rnd.choice(("checkout", "checkout", "search")),
            "endpoint": rnd.choice(ENDPOINTS),
            "customer": rnd.choice(("acme", "globex", 'in"itech')),
            "status": rnd.choice((200, 200, 201, 404, 429, 500, 503)),
            "latency_ms": round(rnd.lognormvariate(5, 1), 3),
        }
        events.append(event)
        extra = {"trace": {"id": f"{i:x}", "endpoint": "nested, not the field"}, "ua": 'curl/8 "x"\\y'}
        items = [*event.items(), *extra.items()]
        rnd.shuffle(items)
        lines.append(json.dumps(dict(items), ensure_ascii=rnd.random() < 0.5))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return events


def _bad_and_total(events: list[dict[str, Any]], slo: str) -> tuple[int, int]:
    """Ground truth from the OpenSLO documents' meaning, computed here without sloguard."""
    if slo == "checkout-availability":
        chosen = [
            e
            for e in events
            if e["service"] == "checkout"
            and any(fnmatchcase(e["endpoint"], g) for g in ("POST /v1/orders*", "GET /v1/orders/*"))
            and e["endpoint"] != "GET /v1/orders/health"
        ]
        return sum(e["status"] >= 500 or e["status"] == 429 for e in chosen), len(chosen)
    chosen = [e for e in events if e["service"] == "search" and fnmatchcase(e["endpoint"], "GET /search*")]
    return sum(e["latency_ms"] > 300 for e in chosen), len(chosen)


def test_replay_reads_the_openslo_stream_exactly(tmp_path: Path) -> None:
    log = tmp_path / "requests.ndjson"
    events = make_log(log)
    proc = run("replay", "-c", str(STREAM), str(log), "--format", "json", "--now", NOW)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    for slo in ("checkout-availability", "search-latency"):
        series = [s for s in doc["slos"] if s["slo"] == slo]
        bad = sum(s["period"]["bad"] for s in series)
        total = sum(s["period"]["total"] for s in series)
        assert (bad, total) == _bad_and_total(events, slo)
    same = run("replay", "-c", str(SAME_AS_SLOGUARD), str(log), "--format", "json", "--now", NOW)
    assert same.stdout == proc.stdout


def test_check_rules_and_convert_accept_the_stream(tmp_path: Path) -> None:
    check = run("check", str(STREAM))
    assert check.returncode == 0, check.stderr
    assert "SLO checkout-availability" in check.stdout and "calendar month (Europe/Berlin)" in check.stdout
    rules = run("rules", "-c", str(STREAM))
    assert rules.returncode == 0, rules.stderr
    assert rules.stdout == run("rules", str(SAME_AS_SLOGUARD)).stdout
    out = tmp_path / "back.yaml"
    convert = run("convert", "--to", "openslo", str(STREAM), "-o", str(out))
    assert convert.returncode == 0, convert.stderr
    assert run("check", str(out)).stdout == check.stdout


def test_refused_stream_exits_2_one_line_per_problem(tmp_path: Path) -> None:
    stream = STREAM.read_text().replace("budgetingMethod: Occurrences", "budgetingMethod: Timeslices", 1)
    stream = stream.replace(
        "metricSourceRef: request-logs\n        spec:\n          status",
        "type: Prometheus\n        spec:\n          status",
    )
    path = tmp_path / "slos.yaml"
    path.write_text(stream)
    proc = run("replay", "-c", str(path), "-")
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "sloguard: invalid SLO file:",
        f"{path}: document 3 (SLI checkout-errors): spec.ratioMetric.bad.metricSource.type: sloguard cannot "
        "evaluate Prometheus sources: it computes SLIs from its own request-log events, so it reads only "
        "metricSource type sloguard (see docs/openslo.md)",
        f"{path}: document 4 (SLO checkout-availability): spec.objectives[0].timeSliceWindow: is required "
        "for Timeslices budgeting: the slice, e.g. 1m",
        f"{path}: document 4 (SLO checkout-availability): spec.objectives[0].timeSliceTarget: is required "
        "for Timeslices budgeting: the good ratio of a good slice",
    ]
    assert "Traceback" not in proc.stderr
