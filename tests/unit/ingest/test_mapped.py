"""The mapped decode path (`sloguard.ingest.mapped`): side by side with the typed path on the fuzzer's
adversarial records, then each mapping feature on realistic lines."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sloguard.core.inputspec import FieldSpec, InputSpec, RouteSpec, path_field
from sloguard.core.model import Event, Rejections
from sloguard.ingest.decode import Decoder
from sloguard.ingest.rules import DecodeOptions
from tests.fuzz.generator import Fuzzer

#: sloguard's own shape, but with the service read from "one of two paths" (the same one twice): not
#: expressible as flat options, so it takes the mapped path with exactly the typed path's meaning.
FORCED = InputSpec(service=FieldSpec(paths=(("service",), ("service",))))
T0 = 1772366400000  # 2026-03-01T12:00:00Z


def _run(decoder: Decoder, data: bytes, max_ts_ms: int | None = None) -> tuple[Any, ...]:
    rejections = Rejections()
    dead: list[tuple[str, bytes]] = []
    batch = decoder.decode_many((data,), rejections, dead, max_ts_ms=max_ts_ms)
    return batch.events(), rejections.counts, dead


def _has_repeated_key(data: bytes) -> bool:
    found: list[bool] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        found.append(len({k for k, _ in items}) != len(items))
        return dict(items)

    for line in data.split(b"\n"):
        try:
            json.loads(line, object_pairs_hook=pairs, parse_int=str)
        except (ValueError, RecursionError):  # not JSON, or nested too deep for the stdlib
            continue
    return any(found)


@pytest.mark.parametrize("seed", [11, 12])
def test_same_results_as_the_typed_path_on_adversarial_records(seed: int) -> None:
    """Events, counts by reason and dead letters equal the typed path's, record by record: the same rules
    and precedence. The one documented difference: a repeated key whose earlier occurrence has the wrong
    type (the typed path refuses it, the mapped path reads the last)."""
    typed, mapped = Decoder(fast_path=False), Decoder(input=FORCED)
    assert mapped.mapped is not None
    same = 0
    for record in Fuzzer(seed).records(800):
        ours, theirs = _run(mapped, record.data), _run(typed, record.data)
        if ours == theirs:
            same += 1
        else:
            assert _has_repeated_key(record.data), record.data[:500]
    assert same > 640


def test_flat_mappings_keep_the_fast_path() -> None:
    spec = InputSpec(ts=path_field("time"), latency=path_field("took"), latency_unit="s")
    decoder = Decoder(input=spec)
    assert decoder.mapped is None
    assert decoder.options == DecodeOptions(ts_field="time", latency_field="took", latency_unit="s")
    assert Decoder(input=InputSpec(latency_unit="ns")).mapped is not None  # ns: not a flat unit
    assert Decoder(input=InputSpec(numbers="lenient")).mapped is not None


def _line(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def test_nested_paths_quoted_keys_constants_and_defaults() -> None:
    spec = InputSpec(
        ts=path_field("@timestamp"),
        service=FieldSpec(value="checkout"),
        endpoint=None,
        method=path_field("http", "request", "method"),
        route=path_field("url.path"),
        customer=FieldSpec(paths=(("labels", "tenant"),), default="anon"),
        status=path_field("http", "response", "status_code"),
        latency=path_field("event", "duration"),
        latency_unit="ns",
    )
    ecs = {
        "@timestamp": "2026-03-01T12:00:00.000Z",
        "http": {"request": {"method": "GET"}, "response": {"status_code": 200, "bytes": 512}},
        "url.path": "/v1/cart",
        "event": {"duration": 12_345_678, "kind": "event"},
        "labels": {"tenant": "acme"},
        "user_agent": {"original": "curl/8"},
    }
    no_tenant = {**ecs, "labels": {"tenant": None}}
    events, rejected, _ = _run(Decoder(input=spec), _line(**ecs) + b"\r\n" + _line(**no_tenant))
    assert events == [
        Event(T0, "checkout", "GET /v1/cart", "acme", 200, 12.345678),
        Event(T0, "checkout", "GET /v1/cart", "anon", 200, 12.345678),
    ]
    assert rejected == {}


@pytest.mark.parametrize(
    ("fmt", "value", "ms"),
    [
        ("epoch_ns", 1772366400123456789, T0 + 123),
        ("epoch_ns", "1772366400123456789", T0 + 123),  # OTLP/JSON writes int64 as text
        ("epoch_us", 1772366400123999, T0 + 123),
        ("epoch_ms", 1772366400123, T0 + 123),
        ("epoch_s", 1772366400, T0),
        ("epoch_s", 1772366400.1239, T0 + 123),
        ("epoch_s", "1772366400.123", T0 + 123),  # nginx's $msec
        ("rfc3339", "2026-03-01T13:00:00.123+01:00", T0 + 123),
        ("auto", 1772366400123, T0 + 123),
    ],
)
def test_timestamp_formats(fmt: str, value: Any, ms: int) -> None:
    spec = InputSpec(ts_format=fmt, numbers="lenient")  # type: ignore[arg-type]
    line = _line(ts=value, service="s", endpoint="e", status=200, latency_ms=1)
    events, rejected, _ = _run(Decoder(input=spec), line)
    assert rejected == {} and events[0].ts_ms == ms


@pytest.mark.parametrize(
    ("fmt", "value", "reason"),
    [
        ("rfc3339", 1772366400123, "bad_type"),
        ("epoch_ns", "2026-03-01T12:00:00Z", "bad_type"),
        ("epoch_ns", 1772366400.5, "bad_type"),
        ("epoch_ns", True, "bad_type"),
        ("epoch_ns", None, "bad_type"),
        ("epoch_ms", 1772366400, "bad_timestamp"),  # seconds sent as ms: 1970
        ("epoch_ns", 4102444800000000000, "bad_timestamp"),  # 2100
    ],
)
def test_timestamp_refusals(fmt: str, value: Any, reason: str) -> None:
    spec = InputSpec(ts_format=fmt)  # type: ignore[arg-type]
    line = _line(ts=value, service="s", endpoint="e", status=200, latency_ms=1)
    assert _run(Decoder(input=spec), line)[1] == {reason: 1}


@pytest.mark.parametrize(("unit", "ms"), [("ns", 0.0015), ("us", 1.5), ("ms", 1500.0), ("s", 1_500_000.0)])
def test_latency_units(unit: str, ms: float) -> None:
    spec = InputSpec(latency_unit=unit, numbers="lenient")  # type: ignore[arg-type]
    line = _line(ts=T0, service="s", endpoint="e", status=200, latency_ms="1500")
    assert _run(Decoder(input=spec), line)[0][0].latency_ms == ms


def test_duration_from_end_timestamps() -> None:
    ns = InputSpec(ts_format="epoch_ns", latency=None, end=path_field("end"))
    start = 1772366400000000001
    line = _line(ts=start, end=start + 1_234_567, service="s", endpoint="e", status=200)
    assert _run(Decoder(input=ns), line)[0][0].latency_ms == 1.234567  # exact, not from floored ms
    rfc = InputSpec(ts_format="rfc3339", latency=None, end=path_field("end"))
    line = _line(
        ts="2026-03-01T12:00:00.100Z", end="2026-03-01T12:00:01.350Z", service="s", endpoint="e", status=200
    )
    assert _run(Decoder(input=rfc), line)[0][0].latency_ms == 1250.0
    bad_end = _line(ts="2026-03-01T12:00:00.100Z", end="yesterday", service="s", endpoint="e", status=200)
    assert _run(Decoder(input=rfc), bad_end)[1] == {"bad_timestamp": 1}


def test_method_and_route_with_the_normaliser() -> None:
    spec = InputSpec(
        endpoint=None,
        method=path_field("m"),
        route=path_field("p"),
        routes=RouteSpec(templates=("/v1/stock/{sku}",), auto_ids=True),
    )
    lines = [
        _line(ts=T0, service="s", m="GET", p="/v1/stock/A-1?full=1", status=200, latency_ms=1),
        _line(ts=T0, service="s", m="GET", p="/v1/orders/98765", status=200, latency_ms=1),
        _line(ts=T0, service="s", m="", p="/v1/orders/98765", status=200, latency_ms=1),
        _line(ts=T0, service="s", m=None, p="/x", status=200, latency_ms=1),
        _line(ts=T0, service="s", p="/x", status=200, latency_ms=1),
    ]
    events, rejected, _ = _run(Decoder(input=spec), b"\n".join(lines))
    assert [e.endpoint for e in events] == ["GET /v1/stock/{sku}", "GET /v1/orders/{id}"]
    assert rejected == {"empty_label": 1, "bad_type": 1, "missing_field": 1}
    route_only = InputSpec(endpoint=None, route=path_field("p"))
    assert _run(Decoder(input=route_only), lines[0])[0][0].endpoint == "/v1/stock/A-1"


def test_lenient_numbers_only_when_asked() -> None:
    line = _line(ts=T0, service="s", endpoint="e", status="503", latency_ms="2.5")
    assert _run(Decoder(input=FORCED), line)[1] == {"bad_type": 1}
    lenient = InputSpec(service=FORCED.service, numbers="lenient")
    assert _run(Decoder(input=lenient), line)[0] == [Event(T0, "s", "e", "unknown", 503, 2.5)]
    for status, latency in (("5O3", "2.5"), ("503", "-"), ("503.0", "2.5"), ("503", "")):
        odd = _line(ts=T0, service="s", endpoint="e", status=status, latency_ms=latency)
        assert _run(Decoder(input=lenient), odd)[1] == {"bad_type": 1}, (status, latency)


def test_future_events_are_refused_with_their_lines() -> None:
    lines = [_line(ts=T0 + i * 60_000, service="s", endpoint="e", status=200, latency_ms=1) for i in range(3)]
    data = b"\n".join([lines[0], b"{oops", lines[1], lines[2]])
    events, rejected, dead = _run(Decoder(input=FORCED), data, max_ts_ms=T0 + 60_000)
    assert [e.ts_ms for e in events] == [T0, T0 + 60_000]
    assert rejected == {"malformed_json": 1, "future_timestamp": 1}
    assert dead == [("malformed_json", b"{oops"), ("future_timestamp", lines[2])]


def test_otlp_many_spans_and_skipped_ones() -> None:
    spec = InputSpec(
        format="otlp-json",
        ts=path_field("startTimeUnixNano"),
        ts_format="epoch_ns",
        service=path_field("resource", "service.name"),
        endpoint=path_field("name"),
        status=path_field("attributes", "http.response.status_code"),
        latency=None,
        end=path_field("endTimeUnixNano"),
        numbers="lenient",
    )

    def span(kind: Any, code: str) -> dict[str, Any]:
        start = str(T0 * 10**6)
        attrs = [{"key": "http.response.status_code", "value": {"intValue": code}}]
        return {
            "name": "GET /x",
            "kind": kind,
            "startTimeUnixNano": start,
            "endTimeUnixNano": start,
            "attributes": attrs,
        }

    export = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "api"}}]},
                "scopeSpans": [{"spans": [span(2, "200"), span(3, "200"), span(2, "500"), span(1, "200")]}],
            },
            {"resource": {}, "scopeSpans": [{"spans": [span("SPAN_KIND_SERVER", "200")]}]},
        ]
    }
    decoder = Decoder(input=spec)
    events, rejected, _ = _run(decoder, json.dumps(export).encode())
    assert [(e.service, e.status) for e in events] == [("api", 200), ("api", 500)]
    assert rejected == {"missing_field": 1}  # the second resource has no service.name
    assert decoder.mapped is not None and decoder.mapped.stats.skipped_spans == 2
    broken_exports: list[dict[str, Any]] = [
        {"resourceSpans": [1]},
        {"resourceSpans": [{"scopeSpans": {}}]},
        {"resourceSpans": [{"resource": 1}]},
    ]
    for broken in broken_exports:
        assert _run(decoder, json.dumps(broken).encode())[1] == {"bad_type": 1}
    assert _run(decoder, b"{}\n[]")[1] == {"not_an_object": 1}
