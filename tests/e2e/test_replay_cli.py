"""`sloguard replay` as a process: files in, JSON out, every number checked against ground truth."""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import json
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sloguard.core.model import Event
from sloguard.core.spec import DAY, SloSpec, format_duration
from sloguard.ingest.decode import REASONS
from sloguard.specfile import load_config
from tests.support import groundtruth as gt

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z

SLOS_YAML = """\
apiVersion: sloguard/v1
slos:
  - name: checkout-availability
    service: checkout
    endpoints: ["POST /v1/*"]
    objective: 99.9
    sli: {type: availability}
    window: 30d
    group_by: [endpoint]
  - name: checkout-latency
    service: checkout
    objective: 99
    sli: {type: latency, threshold_ms: 300}
    window: 28d
    group_by: [customer]
  - name: search-monthly
    service: search
    objective: 99.5
    sli: {type: availability}
    window: {calendar: month, timezone: Europe/Berlin}
latency:
  group_by: [service, endpoint]
  percentiles: [50, 90, 99, 99.9]
  windows: [1m, 5m, 1h]
"""

BAD_LINES = {
    b"{not json": "malformed_json",
    b'{"ts": "2026-01-01T00:00:00Z", "service": "checkout"}': "missing_field",
    b'{"ts": "2026-01-01T00:00:00Z", "service": "checkout", "endpoint": "GET /x", "customer": "c",'
    b' "status": "500", "latency_ms": 1}': "bad_type",
    b'{"ts": "yesterday", "service": "checkout", "endpoint": "GET /x", "customer": "c", "status": 500,'
    b' "latency_ms": 1}': "bad_timestamp",
    b'{"ts": 1767225600000, "service": "checkout", "endpoint": "GET /x", "customer": "c", "status": 200,'
    b' "latency_ms": -3}': "negative_latency",
}


def make_events(n: int, seed: int) -> list[Event]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        ts = T0 + rnd.randrange(3 * DAY * 1000)
        if i % 97 == 0:
            ts = T0 + 3 * DAY * 1000 - rnd.randrange(600_000)  # a recent burst
        out.append(
            Event(
                ts_ms=ts,
                service=rnd.choice(("checkout", "checkout", "search")),
                endpoint=rnd.choice(("POST /v1/orders", "POST /v1/pay", "GET /v1/orders")),
                customer=rnd.choice(("acme", "globex", "initech", "umbrella")),
                status=rnd.choice((200, 200, 200, 201, 404, 500, 503)) if i % 97 else 503,
                latency_ms=round(rnd.lognormvariate(4.5, 1.2), 3),
            )
        )
    return out


def encode(e: Event, style: int) -> bytes:
    """The same event in one of three timestamp spellings."""
    if style == 0:
        ts: Any = dt.datetime.fromtimestamp(e.ts_ms / 1000, dt.UTC).isoformat(timespec="milliseconds")
        ts = ts.replace("+00:00", "Z")
    elif style == 1:
        ts = e.ts_ms
    else:
        off = dt.timezone(dt.timedelta(hours=2))
        ts = dt.datetime.fromtimestamp(e.ts_ms / 1000, off).isoformat(timespec="milliseconds")
    doc = {
        "ts": ts,
        "service": e.service,
        "endpoint": e.endpoint,
        "customer": e.customer,
        "status": e.status,
        "latency_ms": e.latency_ms,
    }
    return json.dumps(doc).encode()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("replay")
    (d / "slos.yaml").write_text(SLOS_YAML)
    events = make_events(6000, seed=3)
    lines = [encode(e, i % 3) for i, e in enumerate(events)]
    for i, bad in enumerate(BAD_LINES):
        lines.insert(100 * (i + 1), bad)
    data = b"\n".join(lines) + b"\n"
    (d / "events.ndjson").write_bytes(data)
    (d / "events.ndjson.gz").write_bytes(gzip.compress(data))
    (d / "events.json").write_text(json.dumps([dataclasses.asdict(e) for e in events]))
    return d


def run(args: list[str], stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "sloguard", *args], input=stdin, capture_output=True, timeout=120, check=False
    )


def load_events(d: Path) -> list[Event]:
    return [Event(**x) for x in json.loads((d / "events.json").read_text())]


def check_against_ground_truth(
    doc: dict[str, Any], specs: tuple[SloSpec, ...], events: list[Event], now: int
) -> None:
    by_slo: dict[str, list[dict[str, Any]]] = {}
    for s in doc["slos"]:
        by_slo.setdefault(s["slo"], []).append(s)
    for spec in specs:
        series = {tuple(s["labels"][d] for d in spec.group_by): s for s in by_slo[spec.name]}
        assert set(series) == {gt.key(spec, e) for e in events if gt.matches(spec, e)}
        for key, s in series.items():
            assert s["objective"] == float(spec.objective)
            for w in spec.windows:
                start, end = gt.window_bounds(spec, w, now)
                total, bad = gt.counts(spec, events, start, end).get(key, (0, 0))
                got = s["windows"][format_duration(w)]
                assert (got["total"], got["bad"]) == (total, bad), (spec.name, key, w)
                assert got["error_ratio"] == gt.ratio(bad, total)
                assert got["burn_rate"] == gt.burn(bad, total, spec.objective)
            ps, pe = gt.period_bounds(spec, now)
            total, bad = gt.counts(spec, events, ps, pe).get(key, (0, 0))
            p = s["period"]
            assert (p["total"], p["bad"]) == (total, bad)
            assert p["budget_remaining"] == gt.remaining(bad, total, spec.objective)
            assert p["budget_consumed"] == gt.burn(bad, total, spec.objective)
            for alert, tier in zip(s["alerts"], spec.tiers, strict=True):
                ls, le = gt.window_bounds(spec, tier.long_window, now)
                ss, se = gt.window_bounds(spec, tier.short_window, now)
                lt, lb = gt.counts(spec, events, ls, le).get(key, (0, 0))
                st, sb = gt.counts(spec, events, ss, se).get(key, (0, 0))
                assert alert["firing"] == gt.fires(
                    lb, lt, sb, st, tier.factor, spec.objective, tier.min_events
                )
                assert alert["factor"] == float(tier.factor)


def test_replay_json_equals_ground_truth(workdir: Path) -> None:
    res = run(
        ["replay", str(workdir / "events.ndjson"), "--config", str(workdir / "slos.yaml"), "--format", "json"]
    )
    assert res.returncode == 0, res.stderr.decode()
    doc = json.loads(res.stdout)
    events = load_events(workdir)
    config = load_config(workdir / "slos.yaml")
    newest = max(e.ts_ms for e in events)
    now = (newest // 10_000 + 1) * 10_000
    assert doc["now"] == dt.datetime.fromtimestamp(now / 1000, dt.UTC).isoformat().replace("+00:00", "Z")
    assert doc["events"] == len(events)
    check_against_ground_truth(doc, config.slos, events, now)
    expected_invalid: dict[str, int] = {}
    for reason in BAD_LINES.values():
        expected_invalid[reason] = expected_invalid.get(reason, 0) + 1
    assert {k: v for k, v in doc["invalid"].items() if v} == expected_invalid
    assert set(doc["invalid"]) == set(REASONS)
    assert doc["overflow"] == {"checkout-availability": 0, "checkout-latency": 0, "search-monthly": 0}
    # Latency: counts exact; percentiles the exact nearest-rank value's HDR slot top.
    assert config.latency is not None
    for entry in doc["latency"]:
        svc, ep = entry["labels"]["service"], entry["labels"]["endpoint"]
        start = int(dt.datetime.fromisoformat(entry["start"]).timestamp() * 1000)
        end = int(dt.datetime.fromisoformat(entry["end"]).timestamp() * 1000)
        inside = [
            e.latency_ms for e in events if (e.service, e.endpoint) == (svc, ep) and start <= e.ts_ms < end
        ]
        assert entry["count"] == len(inside)
        for p in config.latency.percentiles:
            got = entry["percentiles_ms"][f"{p:g}"]
            assert got == gt.hdr_percentile(inside, p, config.latency), (entry["labels"], p)
            if inside:
                assert gt.within_hdr_precision(
                    got, gt.order_statistic(inside, p), config.latency.significant_figures
                )


def test_replay_of_uniform_lines_equals_ground_truth(tmp_path: Path) -> None:
    """Every line in one shape, as most log shippers write them: the decoder's byte-level fast path
    reads them, and the pieces holding the few bad lines go through msgspec."""
    (tmp_path / "slos.yaml").write_text(SLOS_YAML)
    events = make_events(8000, seed=5)
    lines = [encode(e, 0) for e in events]
    for i, bad in enumerate(BAD_LINES):
        lines.insert(1500 * (i + 1), bad)
    (tmp_path / "events.ndjson").write_bytes(b"\n".join(lines) + b"\n")
    res = run(
        [
            "replay",
            str(tmp_path / "events.ndjson"),
            "--config",
            str(tmp_path / "slos.yaml"),
            "--format",
            "json",
        ]
    )
    assert res.returncode == 0, res.stderr.decode()
    doc = json.loads(res.stdout)
    # The default `now`: the end of the bucket holding the newest event, at the coarsest fine resolution
    # (1 minute: checkout-latency is grouped by customer).
    now = (max(e.ts_ms for e in events) // 60_000 + 1) * 60_000
    assert doc["now"] == dt.datetime.fromtimestamp(now / 1000, dt.UTC).isoformat().replace("+00:00", "Z")
    assert doc["events"] == len(events)
    check_against_ground_truth(doc, load_config(tmp_path / "slos.yaml").slos, events, now)
    assert sum(doc["invalid"].values()) == len(BAD_LINES)


def test_explicit_now_gz_and_stdin_agree(workdir: Path) -> None:
    now = "2026-01-03T12:00:00+01:00"
    cfg = ["--config", str(workdir / "slos.yaml"), "--format", "json", "--now", now]
    plain = run(["replay", str(workdir / "events.ndjson"), *cfg])
    gz = run(["replay", str(workdir / "events.ndjson.gz"), *cfg])
    stdin = run(["replay", "-", *cfg], stdin=(workdir / "events.ndjson").read_bytes())
    assert plain.returncode == gz.returncode == stdin.returncode == 0, plain.stderr
    assert plain.stdout == gz.stdout == stdin.stdout
    doc = json.loads(plain.stdout)
    now_ms = int(dt.datetime.fromisoformat(now).timestamp() * 1000)
    # Events after `now` are in no window; the ring still holds them (they are within a day).
    check_against_ground_truth(doc, load_config(workdir / "slos.yaml").slos, load_events(workdir), now_ms)


def table_rows(out: list[str]) -> dict[str, list[str]]:
    """The SLO table's series rows under each SLO's heading."""
    header = next(i for i, line in enumerate(out) if line.startswith("SLO / SERIES"))
    blocks: dict[str, list[str]] = {}
    for line in out[header + 1 :]:
        if not line.strip():
            break
        if line.startswith("  "):
            blocks[list(blocks)[-1]].append(line)
        else:
            blocks[line.split()[0]] = []
    return blocks


def test_table_is_sorted_by_budget_left(workdir: Path) -> None:
    res = run(["replay", str(workdir / "events.ndjson"), "--config", str(workdir / "slos.yaml")])
    assert res.returncode == 0, res.stderr.decode()
    out = res.stdout.decode().splitlines()
    blocks = table_rows(out)
    assert {k: len(v) for k, v in blocks.items()} == {
        "checkout-availability": 2,  # 2 endpoints
        "checkout-latency": 4,  # 4 customers
        "search-monthly": 1,
    }
    budgets = {k: [float(re.findall(r"(-?[0-9.]+)%", r)[0]) for r in rows] for k, rows in blocks.items()}
    assert all(b == sorted(b) for b in budgets.values())
    assert [b[0] for b in budgets.values()] == sorted(b[0] for b in budgets.values())  # worst SLO first
    assert "invalid: " in res.stdout.decode()
    assert max(len(line) for line in out) <= 120


def test_bad_config_is_refused_naming_file_and_field(tmp_path: Path) -> None:
    cfg = tmp_path / "slos.yaml"
    cfg.write_text(SLOS_YAML.replace("objective: 99.9", "objective: 100.5"))
    res = run(["replay", "-", "--config", str(cfg)], stdin=b"")
    assert res.returncode == 2
    err = res.stderr.decode()
    assert str(cfg) in err and "checkout-availability" in err and "objective" in err


def test_missing_input_file(tmp_path: Path, workdir: Path) -> None:
    res = run(["replay", str(tmp_path / "nope.ndjson"), "--config", str(workdir / "slos.yaml")])
    assert res.returncode == 2
    assert "nope.ndjson" in res.stderr.decode()


# -- what a new user trips over ----------------------------------------------------------------------------


def assert_one_line(res: subprocess.CompletedProcess[bytes], code: int, *needles: str) -> str:
    err = res.stderr.decode()
    assert res.returncode == code, err
    assert "Traceback" not in err and err.startswith("sloguard: "), err
    assert all(n in err for n in needles), err
    return err


@pytest.mark.parametrize("case", ["directory", "truncated-gz", "fake-gz", "missing"])
def test_unreadable_input_is_one_line_and_exit_2(tmp_path: Path, workdir: Path, case: str) -> None:
    data = (workdir / "events.ndjson").read_bytes()
    path = tmp_path / "logs.ndjson.gz"
    if case == "directory":
        path = tmp_path
    elif case == "truncated-gz":
        path.write_bytes(gzip.compress(data)[: len(data) // 20])
    elif case == "fake-gz":
        path.write_bytes(b"\x1f\x8b" + bytes(range(256)) * 8)  # the magic, then not gzip at all
    res = run(["replay", str(path), "--config", str(workdir / "slos.yaml")])
    problem = {
        "directory": "is a directory",
        "truncated-gz": "truncated gzip",
        "fake-gz": "corrupt gzip data",
        "missing": "no such file",
    }[case]
    err = assert_one_line(res, 2, f"{path}: {problem}")
    assert err.count("\n") == 1


def test_rules_into_a_missing_directory(tmp_path: Path, workdir: Path) -> None:
    out = tmp_path / "missing" / "dir" / "x.yaml"
    res = run(["rules", str(workdir / "slos.yaml"), "-o", str(out)])
    assert_one_line(res, 2, str(out), "does not exist")


def test_gzip_on_stdin_and_under_any_name_is_read(tmp_path: Path, workdir: Path) -> None:
    cfg = ["--config", str(workdir / "slos.yaml"), "--format", "json"]
    packed = (workdir / "events.ndjson.gz").read_bytes()
    (tmp_path / "events.log").write_bytes(packed)
    plain = run(["replay", str(workdir / "events.ndjson"), *cfg])
    stdin = run(["replay", "-", *cfg], stdin=packed)
    named = run(["replay", str(tmp_path / "events.log"), *cfg])
    assert plain.returncode == stdin.returncode == named.returncode == 0, stdin.stderr
    assert plain.stdout == stdin.stdout == named.stdout
    assert json.loads(stdin.stdout)["events"] == 6000


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"", "the input is empty"),
        (b"GET /index.html HTTP/1.1 200\n<html>\n" * 50, "no valid event"),
        (None, "matched an SLO"),
    ],
    ids=["empty", "garbage", "service-case"],
)
def test_nothing_usable_exits_3(tmp_path: Path, workdir: Path, data: bytes | None, needle: str) -> None:
    if data is None:  # every event of service "Checkout"/"Search": the SLOs say "checkout"/"search"
        raw = (workdir / "events.ndjson").read_bytes()
        data = raw.replace(b'"checkout"', b'"Checkout"').replace(b'"search"', b'"Search"')
    path = tmp_path / "events.ndjson"
    path.write_bytes(data)
    res = run(["replay", str(path), "--config", str(workdir / "slos.yaml")])
    assert_one_line(res, 3, needle, str(path))
    out = res.stdout.decode()
    assert out.startswith("now ")
    if needle == "matched an SLO":
        assert "matched no SLO 6000" in out.splitlines()[0]
        # Grouped SLOs without series are rows saying so, not missing from the table.
        assert "checkout-latency  objective 99%, by customer: no events" in out
        res = run(["replay", str(path), "--config", str(workdir / "slos.yaml"), "--format", "json"])
        assert res.returncode == 3 and json.loads(res.stdout)["unmatched"] == 6000


def test_a_far_future_event_leaves_now_and_every_count_alone(tmp_path: Path, workdir: Path) -> None:
    cfg = ["--config", str(workdir / "slos.yaml"), "--format", "json"]
    stray = (
        b'{"ts": "2030-06-01T12:00:00Z", "service": "checkout", "endpoint": "POST /v1/orders",'
        b' "customer": "acme", "status": 200, "latency_ms": 3.0, "host": "clock-broken-7"}\n'
    )
    data = (workdir / "events.ndjson").read_bytes()
    at = data.index(b"\n", 5000) + 1
    (tmp_path / "events.ndjson").write_bytes(data[:at] + stray + data[at:])
    clean = json.loads(run(["replay", str(workdir / "events.ndjson"), *cfg]).stdout)
    res = run(["replay", str(tmp_path / "events.ndjson"), *cfg])
    assert res.returncode == 0
    dirty = json.loads(res.stdout)
    assert dirty["after_now"] == 1 and clean["after_now"] == 0
    assert {k: v for k, v in dirty.items() if k != "after_now"} == {
        k: v for k, v in clean.items() if k != "after_now"
    }
    assert "2030-06-01T12:00:00Z" in res.stderr.decode() and "--now" in res.stderr.decode()
    table = run(["replay", str(tmp_path / "events.ndjson"), "--config", str(workdir / "slos.yaml")])
    assert re.search(r"after now 1  too old 0$", table.stdout.decode().splitlines()[0])


def test_help_states_the_default_now_rule_and_exit_codes() -> None:
    res = run(["replay", "--help"])
    text = " ".join(res.stdout.decode().split())
    assert "far-future outliers" in text and "0.1%" in text and "more than 1 day" in text
    assert "3 no valid event" in text


def test_latencies_in_the_table_have_the_histogram_precision(workdir: Path) -> None:
    res = run(["replay", str(workdir / "events.ndjson"), "--config", str(workdir / "slos.yaml")])
    out = res.stdout.decode()
    rows = out[out.index("GROUP") :].split("\n\n")[0].splitlines()[1:]
    values = [v for r in rows for v in r.split()[-4:] if v != "-"]
    # significant_figures 2 (the default): at most two significant digits.
    assert values and all(len(v.replace(".", "").strip("0")) <= 2 for v in values), values
