"""The ``otlp-proto`` preset (`sloguard.ingest.otlp_proto`): the same spans written as OTLP/JSON (by hand,
as the OTLP spec's JSON mapping says: hex ids, int64 as text) and as protobuf (built with the generated
``trace_pb2`` classes) give the same events, counts and dead letters; bad bytes are counted, never raised."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from sloguard.core.model import Event, Rejections
from sloguard.ingest.decode import Decoder
from sloguard.ingest.otlp_proto import from_otlp_json, server_spans
from sloguard.ingest.presets import PRESETS, replay_refusal
from sloguard.ingest.rules import DecodeOptions

DATA = Path(__file__).resolve().parents[2] / "testdata" / "input" / "otlp-json"
NS = 1_772_366_400_000_000_000  # 2026-03-01T12:00:00Z in ns
T0 = NS // 1_000_000

#: An attribute value: ("s", str) / ("i", int) / ("d", float) / ("b", bool) / ("a", [str]) for an array.
Value = tuple[str, Any]


@dataclass(frozen=True)
class S:
    """One span as plain values (0: unset, left out of the JSON as the Collector leaves it out)."""

    kind: int
    start: int
    end: int
    attrs: dict[str, Value] = field(default_factory=dict)
    name: str = "span"


def http(method: str, route: str, status: int, **more: Value) -> dict[str, Value]:
    return {
        "http.request.method": ("s", method),
        "http.route": ("s", route),
        "http.response.status_code": ("i", status),
        **more,
    }


#: Exports, each [(service or None, [span, ...]), ...]: one Kafka message each.
EXPORTS: list[list[tuple[str | None, list[S]]]] = [
    [  # a request with a client and an internal span inside it
        (
            "checkout",
            [
                S(2, NS, NS + 12_500_000, http("GET", "/v1/orders/{id}", 200, customer=("s", "cust-0042"))),
                S(3, NS + 1_000_000, NS + 5_000_000, {"db.system": ("s", "postgresql")}),
                S(1, NS + 2_000_000, NS + 3_000_000),
            ],
        ),
        ("search", [S(2, NS + 10**9, NS + 10**9 + 87_654_321, http("GET", "/v1/search", 503))]),
    ],
    [  # old semantic conventions: http.method, http.target (query dropped), http.status_code
        (
            "search",
            [
                S(
                    2,
                    NS + 2 * 10**9,
                    NS + 2 * 10**9 + 1_500_000_000,
                    {
                        "http.method": ("s", "GET"),
                        "http.target": ("s", "/v1/search?q=shoes"),
                        "http.status_code": ("i", 200),
                    },
                )
            ],
        )
    ],
    [  # the proto examples' server span: no HTTP attributes (missing_field)
        ("my.service", [S(2, 1544712660000000000, 1544712661000000000, {"my.span.attr": ("s", "x")})])
    ],
    [  # value and type problems, one span each
        (
            "checkout",
            [
                S(2, NS + 5 * 10**9, NS + 5 * 10**9 - 2_000_000, http("GET", "/v1/cart", 200)),  # end < start
                S(2, NS, NS + 1, {**http("GET", "/v1/cart", 200), "http.response.status_code": ("s", "2xx")}),
                S(2, NS, NS + 1, {**http("GET", "/", 200), "http.response.status_code": ("d", 200.5)}),
                S(2, NS, NS + 1, {**http("GET", "/", 200), "http.route": ("b", True)}),
                S(2, NS, NS + 1, {**http("GET", "/", 200), "http.request.method": ("a", ["GET"])}),
                S(2, NS, NS + 1, http("GET", "/", 600)),  # bad_status
                S(2, 0, NS + 1, http("GET", "/", 200)),  # start unset: missing_field
                S(2, NS, NS + 3_000_000, http("POST", "/v1/orders", 201)),  # fine
            ],
        ),
        (None, [S(2, NS, NS + 1, http("GET", "/", 200))]),  # no service.name: missing_field
    ],
    [],  # an empty export
]


def _json_value(value: Value) -> dict[str, Any]:
    kind, v = value
    if kind == "a":
        return {"arrayValue": {"values": [{"stringValue": x} for x in v]}}
    key = {"s": "stringValue", "i": "intValue", "d": "doubleValue", "b": "boolValue"}[kind]
    return {key: str(v) if kind == "i" else v}


def _json_span(s: S, i: int) -> dict[str, Any]:
    out: dict[str, Any] = {"traceId": f"{i:032x}", "spanId": f"{i:016x}", "name": s.name, "kind": s.kind}
    if s.start:
        out["startTimeUnixNano"] = str(s.start)
    if s.end:
        out["endTimeUnixNano"] = str(s.end)
    out["attributes"] = [{"key": k, "value": _json_value(v)} for k, v in s.attrs.items()]
    out["status"] = {}
    return out


def as_json(export: list[tuple[str | None, list[S]]]) -> bytes:
    """OTLP/JSON, as the Collector's otlp_json writes it."""
    if not export:
        return b"{}"
    resource_spans = []
    for service, spans in export:
        attrs = [{"key": "service.name", "value": {"stringValue": service}}] if service else []
        scope = {
            "scope": {"name": "io.opentelemetry.test"},
            "spans": [_json_span(s, i + 1) for i, s in enumerate(spans)],
        }
        resource_spans.append({"resource": {"attributes": attrs}, "scopeSpans": [scope]})
    return json.dumps({"resourceSpans": resource_spans}).encode()


def _proto_value(value: Value) -> AnyValue:
    kind, v = value
    if kind == "a":
        return AnyValue(array_value=ArrayValue(values=[AnyValue(string_value=x) for x in v]))
    return AnyValue(
        **{{"s": "string_value", "i": "int_value", "d": "double_value", "b": "bool_value"}[kind]: v}
    )


def _proto_span(s: S, i: int) -> Span:
    return Span(
        trace_id=i.to_bytes(16, "big"),
        span_id=i.to_bytes(8, "big"),
        name=s.name,
        kind=s.kind,  # type: ignore[arg-type]  # the enum's values are ints
        start_time_unix_nano=s.start,
        end_time_unix_nano=s.end,
        attributes=[KeyValue(key=k, value=_proto_value(v)) for k, v in s.attrs.items()],
        status=Status(),
    )


def as_proto(export: list[tuple[str | None, list[S]]]) -> bytes:
    """OTLP/protobuf, built with the generated classes."""
    request = ExportTraceServiceRequest()
    for service, spans in export:
        attrs = [KeyValue(key="service.name", value=AnyValue(string_value=service))] if service else []
        request.resource_spans.append(
            ResourceSpans(
                resource=Resource(attributes=attrs),
                scope_spans=[ScopeSpans(spans=[_proto_span(s, i + 1) for i, s in enumerate(spans)])],
            )
        )
    return request.SerializeToString()


def _decode(
    preset: str, records: list[bytes], **kw: Any
) -> tuple[Decoder, list[Event], dict[str, int], list[tuple[str, bytes]]]:
    decoder = Decoder(input=PRESETS[preset], **kw)
    rejections = Rejections()
    dead: list[tuple[str, bytes]] = []
    batch = decoder.decode_many(records, rejections, dead)
    return decoder, batch.events(), rejections.counts, dead


def test_the_same_spans_give_the_same_events_counts_and_dead_letters_both_ways() -> None:
    json_records = [as_json(e) for e in EXPORTS]
    proto_records = [as_proto(e) for e in EXPORTS]
    jd, j_events, j_counts, j_dead = _decode("otlp-json", json_records)
    pd, p_events, p_counts, p_dead = _decode("otlp-proto", proto_records)
    assert (
        p_events
        == j_events
        == [
            Event(T0, "checkout", "GET /v1/orders/{id}", "cust-0042", 200, 12.5),
            Event(T0 + 1000, "search", "GET /v1/search", "unknown", 503, 87.654321),
            Event(T0 + 2000, "search", "GET /v1/search", "unknown", 200, 1500.0),
            Event(T0, "checkout", "POST /v1/orders", "unknown", 201, 3.0),
        ]
    )
    assert (
        p_counts
        == j_counts
        == {
            "missing_field": 3,
            "negative_latency": 1,
            "bad_type": 4,
            "bad_status": 1,
        }
    )
    # Each rejected span dead-letters its whole record, in record order: the JSON line or the message.
    assert [(r, json_records.index(p)) for r, p in j_dead] == [(r, proto_records.index(p)) for r, p in p_dead]
    assert [proto_records.index(p) for _, p in p_dead] == [2, *[3] * 8]
    assert jd.mapped is not None and pd.mapped is not None
    assert (
        pd.mapped.stats.as_dict()
        == jd.mapped.stats.as_dict()
        == {"lines": 5, "events": 13, "skipped_spans": 2}
    )


def test_one_record_at_a_time_gives_the_same_as_a_batch() -> None:
    proto_records = [as_proto(e) for e in EXPORTS]
    decoder = Decoder(input=PRESETS["otlp-proto"])
    rejections = Rejections()
    one_by_one = [e for r in proto_records for e in decoder.decode(r, rejections).events()]
    _, batch, counts, _ = _decode("otlp-proto", proto_records)
    assert one_by_one == batch and rejections.counts == counts


def test_the_collector_sample_lines_converted_to_protobuf() -> None:
    """The otlp-json preset's sample lines (from the OTLP docs) as messages: the same events and counts,
    less the line whose resourceSpans is no list (no protobuf message can say that)."""
    lines = [line for line in (DATA / "collector-kafka.ndjson").read_bytes().split(b"\n") if line.strip()]
    records = []
    for line in lines:
        try:
            records.append(from_otlp_json(json.loads(line)))
        except ValueError:
            assert line == b'{"resourceSpans":"oops"}'
    _, j_events, j_counts, _ = _decode("otlp-json", [b"\n".join(lines)])
    _, p_events, p_counts, _ = _decode("otlp-proto", records)
    assert p_events == j_events and len(p_events) == 4
    assert p_counts == {**j_counts, "bad_type": j_counts["bad_type"] - 1}


def test_views_hold_the_span_fields_under_their_otlp_json_names() -> None:
    span = Span(
        trace_id=bytes.fromhex("5b8efff798038103d269b633813fc60c"),
        span_id=bytes.fromhex("eee19b7ec3c1b174"),
        name="GET /x",
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=5,
        status=Status(code=Status.STATUS_CODE_ERROR),
        attributes=[KeyValue(key="n", value=AnyValue(int_value=7)), KeyValue(key="unset")],
    )
    message = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])]
    )
    got = server_spans(message.SerializeToString())
    assert got == (
        [
            {
                "kind": 2,
                "startTimeUnixNano": 5,
                "name": "GET /x",
                "traceId": "5b8efff798038103d269b633813fc60c",
                "spanId": "eee19b7ec3c1b174",
                "status": {"code": 2},
                "resource": {},
                "attributes": {"n": 7, "unset": None},
            }
        ],
        0,
    )


def test_bad_bytes_are_counted_and_dead_lettered_whole() -> None:
    good = as_proto(EXPORTS[1])
    truncated = good[:-3]
    not_utf8 = as_proto([("ok", [S(2, NS, NS + 1, http("GET", "/", 200))])]).replace(b"ok", b"\xff\xfe")
    records = [b"not protobuf at all \x00\xff", truncated, good, not_utf8, b"", good + b"x" * 100]
    _, events, counts, dead = _decode(
        "otlp-proto", records, options=DecodeOptions(max_record_bytes=len(good) + 50)
    )
    assert [(e.service, e.endpoint) for e in events] == [("search", "GET /v1/search")]
    assert counts == {"malformed_json": 3, "too_large": 1}
    assert dead == [
        ("malformed_json", records[0]),
        ("malformed_json", truncated),
        ("malformed_json", not_utf8),
        ("too_large", records[5]),
    ]


def test_future_events_are_refused_with_their_record() -> None:
    records = [as_proto(EXPORTS[0]), as_proto(EXPORTS[1])]
    decoder = Decoder(input=PRESETS["otlp-proto"])
    rejections = Rejections()
    dead: list[tuple[str, bytes]] = []
    batch = decoder.decode_many(records, rejections, dead, max_ts_ms=T0 + 1500)
    assert [e.ts_ms for e in batch.events()] == [T0, T0 + 1000]
    assert rejections.counts == {"future_timestamp": 1} and dead == [("future_timestamp", records[1])]


def _total(counts: dict[str, int]) -> int:
    return sum(counts.values())


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_never_raise(data: bytes) -> None:
    _, _, counts, dead = _decode("otlp-proto", [data])
    assert len(dead) == _total(counts)
    assert all(payload == data for _, payload in dead)


MESSAGE = b"".join(as_proto(e) for e in EXPORTS)  # concatenated messages: one merged export


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(MESSAGE)), st.binary(max_size=8))
def test_truncated_or_corrupted_messages_never_raise(cut: int, junk: bytes) -> None:
    data = MESSAGE[:cut] + junk
    _, events, counts, dead = _decode("otlp-proto", [data])
    assert len(dead) == _total(counts) and all(payload == data for _, payload in dead)
    assert len(events) <= 4


def test_the_whole_merged_message_reads_as_the_exports_did() -> None:
    _, events, counts, _ = _decode("otlp-proto", [MESSAGE])
    _, each_events, each_counts, _ = _decode("otlp-proto", [as_proto(e) for e in EXPORTS])
    assert events == each_events and counts == each_counts


def test_replay_refuses_binary_input_and_reads_the_json_presets() -> None:
    refusal = replay_refusal(PRESETS["otlp-proto"])
    assert refusal is not None and "binary OTLP/protobuf" in refusal and "otlp-json" in refusal
    assert replay_refusal(PRESETS["otlp-json"]) is None and replay_refusal(None) is None
