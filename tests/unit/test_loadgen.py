"""`sloguard loadgen --format`: each preset's shape decodes, through that preset, to the same events the
generator made in sloguard's own shape (as each source rounds them)."""

from __future__ import annotations

import json

import pytest

from sloguard.core.inputspec import RouteSpec
from sloguard.core.model import Event, Rejections
from sloguard.ingest.decode import Decoder
from sloguard.ingest.presets import PRESETS
from sloguard.loadgen import ENDPOINTS, FORMATS, EventGenerator, Scenario, _Batcher, message_encoder

T0 = 1772366400000
#: The generator's routes, as a user lists theirs (literal ones too: /v1/stock/reserve is not a {sku}).
TEMPLATES = tuple(sorted({e.split(" ", 1)[1] for _, e, *_ in ENDPOINTS}))


def _events(line_format: str, n: int = 2000) -> list[Event]:
    generator = EventGenerator(Scenario("outage", incident_at_s=0.0), seed=3, line_format=line_format)
    lines, _ = generator.generate(n, T0, T0 + 60_000, elapsed_s=1.0)
    spec = PRESETS.get(line_format)
    if spec is not None:
        spec = spec.__class__(
            **{**{f: getattr(spec, f) for f in spec.__dataclass_fields__}, "routes": RouteSpec(TEMPLATES)}
        )
    rejections = Rejections()
    records = [message_encoder(line_format)(lines[i : i + 7]) for i in range(0, n, 7)]
    batch = Decoder(input=spec).decode_many(records, rejections)
    assert rejections.counts == {}
    return batch.events()


@pytest.mark.parametrize("line_format", [f for f in FORMATS if f != "sloguard"])
def test_each_format_reads_back_as_the_same_events(line_format: str) -> None:
    ours, native = _events(line_format), _events("sloguard")
    assert len(ours) == len(native) == 2000
    assert [(e.service, e.endpoint, e.status) for e in ours] == [
        (e.service, e.endpoint, e.status) for e in native
    ]
    if line_format.startswith("otlp-"):  # spans carry the customer, and the exact duration in ns
        assert [(e.ts_ms, e.customer) for e in ours] == [(e.ts_ms, e.customer) for e in native]
        assert all(abs(a.latency_ms - b.latency_ms) < 1e-6 for a, b in zip(ours, native, strict=True))
    else:  # access logs have no customer; whole ms (Envoy) or ms in seconds (nginx); nginx ts in s
        assert {e.customer for e in ours} == {"unknown"}
        assert [e.latency_ms for e in ours] == [float(round(e.latency_ms)) for e in native]
        step = 1000 if line_format == "nginx-json" else 1
        assert [e.ts_ms for e in ours] == [e.ts_ms // step * step for e in native]
    assert sum(e.status >= 500 for e in ours) > 100  # the outage is there


def test_otlp_lines_hold_a_server_and_a_client_span() -> None:
    lines, _ = EventGenerator(line_format="otlp-json").generate(3, T0, T0, 0.0)
    kinds = [s["kind"] for s in json.loads(lines[0])["resourceSpans"][0]["scopeSpans"][0]["spans"]]
    assert kinds == [2, 3]


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="one of sloguard, envoy, nginx-json, otlp-json, otlp-proto"):
        EventGenerator(line_format="apache")


def test_otlp_proto_messages_are_exports_of_ndjson_batch_events() -> None:
    """Each message is one protobuf export holding its events' resource spans, server and client."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    generator = EventGenerator(line_format="otlp-proto")
    lines, customers = generator.generate(10, T0, T0 + 9000, 0.0)
    batcher = _Batcher(2, 4, keyed=False, linger_s=0.0, encode=message_encoder("otlp-proto"))
    messages = [v for values, _ in batcher.split(lines, customers, 0.0).values() for v in values]
    assert len(messages) == 3  # 4 + 4 + 2 (the rest, linger 0)
    requests = [ExportTraceServiceRequest.FromString(m) for m in messages]
    assert sorted(len(r.resource_spans) for r in requests) == [2, 4, 4]
    kinds = {s.kind for r in requests for rs in r.resource_spans for ss in rs.scope_spans for s in ss.spans}
    assert kinds == {2, 3}
    # One event a message, keyed: the same bytes as encoding that event alone.
    single = _Batcher(3, 1, keyed=True, encode=message_encoder("otlp-proto"))
    values = sorted(v for vs, _ in single.split(lines, customers, 0.0).values() for v in vs)
    assert values == sorted(message_encoder("otlp-proto")([line]) for line in lines)
