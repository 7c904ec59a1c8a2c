"""The presets on sample lines written from each format's documentation (tests/testdata/input/<preset>/):
exact counts of events and rejections, and the events themselves."""

from __future__ import annotations

from pathlib import Path

import pytest

from sloguard.core.model import Event, Rejections
from sloguard.ingest.decode import Decoder
from sloguard.ingest.presets import PRESETS, effective_input

DATA = Path(__file__).resolve().parents[2] / "testdata" / "input"


def _decode(preset: str, name: str) -> tuple[Decoder, list[Event], dict[str, int], list[tuple[str, bytes]]]:
    decoder = Decoder(input=PRESETS[preset])
    rejections = Rejections()
    dead: list[tuple[str, bytes]] = []
    batch = decoder.decode((DATA / preset / name).read_bytes(), rejections, dead)
    return decoder, batch.events(), rejections.counts, dead


def test_every_preset_reads_through_the_mapped_path() -> None:
    for spec in PRESETS.values():
        assert Decoder(input=spec).mapped is not None


def test_envoy_istio_json_access_log() -> None:
    _, events, rejected, dead = _decode("envoy", "istio-json.ndjson")
    assert events == [
        # Envoy's documented example line, as Istio's JSON format writes it.
        Event(1460751420310, "locations", "POST /api/v1/locations", "unknown", 204, 226.0),
        Event(1772366400123, "checkout", "GET /v1/orders/4711", "unknown", 200, 12.0),
        Event(1772366401000, "checkout", "POST /v1/orders", "unknown", 503, 3.0),
        Event(1772366402500, "checkout", "GET /v1/cart", "unknown", 200, 7.0),  # quoted numbers
        Event(1772366405000, "checkout", "DELETE /v1/cart/items/sku-1", "unknown", 404, 4.0),
    ]
    # A downstream disconnect has no response code (0); a TCP connection has no method, path, authority.
    assert rejected == {"bad_status": 1, "bad_type": 1}
    assert [reason for reason, _ in dead] == ["bad_status", "bad_type"]
    assert dead[1][1].startswith(b'{"start_time":"2026-03-01T12:00:04.000Z","method":null')


def test_nginx_json_log_format() -> None:
    _, events, rejected, _ = _decode("nginx-json", "json-combined.ndjson")
    assert events == [
        Event(1300722745000, "www.example.com", "GET /index.html", "unknown", 200, 0.0),  # +03:00
        Event(1772366400000, "shop.example.com", "POST /v1/orders", "unknown", 201, 183.0),
        Event(1772366401000, "shop.example.com", "GET /v1/orders/12345", "unknown", 502, 30001.0),
        Event(1772366402000, "shop.example.com", "GET /v1/search", "unknown", 499, 4.0),  # unquoted
        Event(1772366404000, "shop.example.com", "HEAD /robots.txt", "unknown", 304, 1.0),  # alternatives
    ]
    # request_time "-"; $time_local's format where $time_iso8601 belongs; no host nor server_name.
    assert rejected == {"bad_type": 1, "bad_timestamp": 1, "missing_field": 1}


def test_otlp_json_collector_export() -> None:
    decoder, events, rejected, dead = _decode("otlp-json", "collector-kafka.ndjson")
    t0 = 1772366400000
    assert events == [
        Event(t0, "checkout", "GET /v1/orders/{id}", "cust-0042", 200, 12.5),
        Event(t0 + 1000, "checkout", "POST /v1/orders", "unknown", 201, 40.000123),
        Event(t0 + 2000, "search", "GET /v1/search", "unknown", 200, 87.654321),  # old semconv, query
        Event(t0 + 3000, "search", "GET /v1/search", "unknown", 503, 1500.0),
    ]
    # proto's example server span has no HTTP attributes; resourceSpans "oops"; end before start; a
    # status that is no number. Client and internal spans are skipped, not rejected.
    assert rejected == {"missing_field": 1, "bad_type": 2, "negative_latency": 1}
    assert decoder.mapped is not None
    assert decoder.mapped.stats.as_dict() == {"lines": 5, "events": 7, "skipped_spans": 3}
    lines = (DATA / "otlp-json" / "collector-kafka.ndjson").read_bytes().split(b"\n")
    assert dead == [
        ("missing_field", lines[1]),
        ("bad_type", lines[2]),
        # Both spans of one line: the line twice (a span's type problems are found before its values').
        ("bad_type", lines[4]),
        ("negative_latency", lines[4]),
    ]


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_the_slo_files_input_wins_over_the_setting(preset: str) -> None:
    file_input = PRESETS["envoy"]
    assert effective_input(file_input, preset) is file_input
    assert effective_input(None, preset) is PRESETS[preset]
    assert effective_input(None, None) is None
