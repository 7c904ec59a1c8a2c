"""`sloguard replay` as a process on loadgen streams in each preset's shape, read through the SLO file's
``input:``: events, invalid lines and every SLO's totals exact against an oracle that reads the lines with
the stdlib; and ``SLOGUARD_INPUT__PRESET`` used only when the file has no ``input:``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sloguard.loadgen import ENDPOINTS, EventGenerator, Scenario

T0 = 1_772_366_400_000  # 2026-03-01T12:00:00Z
NOW = "2026-03-02T00:00:00Z"
ROUTES = sorted({e.split(" ", 1)[1] for _, e, *_ in ENDPOINTS})

SLOS = """slos:
  - {name: checkout-availability, service: checkout, objective: 99.9, sli: {type: availability}, window: 30d}
  - name: orders-by-id
    service: checkout
    endpoints: ["GET /v1/orders/{id}"]
    objective: 99
    sli: {type: availability}
    window: 30d
  - name: search-latency
    service: search
    objective: 99
    sli: {type: latency, threshold_ms: 100}
    window: 7d
"""
BAD_LINES = {
    "envoy": [
        b"not json",
        b'{"start_time":"2026-03-01T12:00:00Z","method":"GET","path":"/","response_code":0,'
        b'"duration":1,"authority":"checkout"}',
    ],
    "nginx-json": [
        b"not json",
        b'{"time_iso8601":"2026-03-01T12:00:00+00:00","request_method":"GET","uri":"/",'
        b'"status":"200","request_time":"-","host":"checkout"}',
    ],
    "otlp-json": [b"not json", b'{"resourceSpans":"oops"}'],
}
BAD_REASONS = {
    "envoy": {"malformed_json": 1, "bad_status": 1},
    "nginx-json": {"malformed_json": 1, "bad_type": 1},
    "otlp-json": {"malformed_json": 1, "bad_type": 1},
}


def _oracle(line_format: str, line: bytes) -> tuple[str, str, int, float]:
    """Service, endpoint (route template), status and latency ms of a generated line, read with json."""
    d: Any = json.loads(line)
    if line_format == "envoy":
        return d["authority"], f"{d['method']} {_route(d['path'])}", d["response_code"], float(d["duration"])
    if line_format == "nginx-json":
        return (
            d["host"],
            f"{d['request_method']} {_route(d['uri'])}",
            int(d["status"]),
            float(d["request_time"]) * 1000,
        )
    rs = d["resourceSpans"][0]
    span = rs["scopeSpans"][0]["spans"][0]
    attrs = {a["key"]: next(iter(a["value"].values())) for a in span["attributes"]}
    ms = (int(span["endTimeUnixNano"]) - int(span["startTimeUnixNano"])) / 1e6
    service = rs["resource"]["attributes"][0]["value"]["stringValue"]
    return (
        service,
        f"{attrs['http.request.method']} {attrs['http.route']}",
        int(attrs["http.response.status_code"]),
        ms,
    )


def _route(path: str) -> str:
    """The generator's route a raw path came from: the template whose literal segments it shares."""
    segments = path.split("?")[0].split("/")
    for route in sorted(ROUTES, key=lambda r: [s.startswith("{") for s in r.split("/")]):
        parts = route.split("/")
        if len(parts) == len(segments) and all(
            p.startswith("{") or p == s for p, s in zip(parts, segments, strict=True)
        ):
            return route
    raise AssertionError(path)


def _stream(tmp_path: Path, line_format: str) -> tuple[Path, list[bytes]]:
    generator = EventGenerator(Scenario("outage", service="checkout", incident_at_s=0.0), 11, line_format)
    lines: list[bytes] = []
    for step in range(3):
        chunk, _ = generator.generate(
            1500, T0 + step * 60_000, T0 + step * 60_000 + 59_000, elapsed_s=step * 60.0
        )
        lines += [line.encode() for line in chunk]
    data = tmp_path / f"{line_format}.ndjson"
    data.write_bytes(b"\n".join([*lines[:700], *BAD_LINES[line_format], *lines[700:]]) + b"\n")
    return data, lines


def _replay(config: Path, data: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sloguard",
            "replay",
            "-c",
            str(config),
            "--format",
            "json",
            "--now",
            NOW,
            str(data),
        ],
        capture_output=True,
        timeout=120,
        check=False,
        env={**os.environ, **(env or {})},
    )
    assert result.returncode == 0, result.stderr
    doc: dict[str, Any] = json.loads(result.stdout)
    return doc


def _check(doc: dict[str, Any], line_format: str, lines: list[bytes]) -> None:
    events = [_oracle(line_format, line) for line in lines]
    assert doc["events"] == len(lines) == 4500
    assert {k: v for k, v in doc["invalid"].items() if v} == BAD_REASONS[line_format]
    expected = {
        "checkout-availability": [e for e in events if e[0] == "checkout"],
        "orders-by-id": [e for e in events if e[0] == "checkout" and e[1] == "GET /v1/orders/{id}"],
        "search-latency": [e for e in events if e[0] == "search"],
    }
    bad = {
        "checkout-availability": lambda e: e[2] >= 500,
        "orders-by-id": lambda e: e[2] >= 500,
        "search-latency": lambda e: e[2] >= 500 or e[3] > 100,
    }
    for slo in doc["slos"]:
        mine = expected[slo["slo"]]
        assert (slo["period"]["total"], slo["period"]["bad"]) == (len(mine), sum(map(bad[slo["slo"]], mine)))
    assert len(expected["orders-by-id"]) > 50 and sum(map(bad["orders-by-id"], expected["orders-by-id"])) > 50


@pytest.mark.parametrize("line_format", ["envoy", "nginx-json", "otlp-json"])
def test_replay_counts_a_loadgen_preset_stream_exactly(tmp_path: Path, line_format: str) -> None:
    data, lines = _stream(tmp_path, line_format)
    routes = ", ".join(f'"{r}"' for r in ROUTES)
    config = tmp_path / "slos.yaml"
    mapping = f"input:\n  preset: {line_format}\n  routes: {{templates: [{routes}]}}\n"
    config.write_text(f"apiVersion: sloguard/v1\n{mapping}{SLOS}")
    _check(_replay(config, data), line_format, lines)


def test_the_setting_picks_a_preset_only_when_the_file_has_none(tmp_path: Path) -> None:
    data, lines = _stream(tmp_path, "otlp-json")  # routes are templates already: no normaliser needed
    bare = tmp_path / "bare.yaml"
    bare.write_text(f"apiVersion: sloguard/v1\n{SLOS}")
    _check(_replay(bare, data, {"SLOGUARD_INPUT__PRESET": "otlp-json"}), "otlp-json", lines)
    with_input = tmp_path / "with-input.yaml"
    with_input.write_text(f"apiVersion: sloguard/v1\ninput: {{preset: otlp-json}}\n{SLOS}")
    _check(_replay(with_input, data, {"SLOGUARD_INPUT__PRESET": "nginx-json"}), "otlp-json", lines)
    result = subprocess.run(
        [sys.executable, "-m", "sloguard", "check", str(bare)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "SLOGUARD_INPUT__PRESET": "nginxx"},
    )
    assert result.returncode == 2
    assert result.stderr.startswith(
        "sloguard: invalid settings: setting input.preset (SLOGUARD_INPUT__PRESET): must"
    )


def test_replay_refuses_otlp_proto_with_a_reason(tmp_path: Path) -> None:
    """Protobuf messages are binary and replay frames files by lines: refused before reading, exit 2, for
    the file's input: and for the setting alike; `sloguard check` says where the format is read."""
    data = tmp_path / "spans.bin"
    data.write_bytes(b"\n\x00")
    with_input = tmp_path / "with-input.yaml"
    with_input.write_text(f"apiVersion: sloguard/v1\ninput: {{preset: otlp-proto}}\n{SLOS}")
    bare = tmp_path / "bare.yaml"
    bare.write_text(f"apiVersion: sloguard/v1\n{SLOS}")
    for config, env in ((with_input, {}), (bare, {"SLOGUARD_INPUT__PRESET": "otlp-proto"})):
        result = subprocess.run(
            [sys.executable, "-m", "sloguard", "replay", "-c", str(config), str(data)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, **env},
        )
        assert result.returncode == 2 and result.stdout == ""
        assert result.stderr.startswith(
            "sloguard: replay: input format otlp-proto is binary OTLP/protobuf, one ExportTraceServiceRequest"
            " per Kafka message; replay reads lines from files"
        ), result.stderr
    check = subprocess.run(
        [sys.executable, "-m", "sloguard", "check", str(with_input)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert (
        "  shape        OTLP/protobuf trace exports, one per Kafka message (replay cannot read it)"
        in check.stdout
    )
