"""OTLP/protobuf trace exports: the one home of ``opentelemetry-proto`` and ``protobuf``.

The OpenTelemetry Collector's Kafka exporter writes ``encoding: otlp_proto`` by default: each Kafka
message is one serialized ``ExportTraceServiceRequest`` (``opentelemetry/proto/collector/trace/v1``),
binary, with no line framing. `server_spans` reads one message into the same span views the ``otlp-json``
reader builds (`sloguard.ingest.mapped`), so the ``otlp-proto`` preset maps them with the same paths and
gets the same events, counts and rejections for the same spans:

* each **server** span (``kind`` ``SPAN_KIND_SERVER``, 2) is one view; the others are skipped and
  counted;
* a view holds the span's own fields under their OTLP/JSON names (``startTimeUnixNano``, ``name``,
  ``traceId`` in hex, ...), ``resource``: the resource's attributes as an object, and ``attributes``: the
  span's. A field at its zero value is left out, as the Collector's ``otlp_json`` encoder leaves it out
  (proto3 has no presence for scalars: an unset ``startTimeUnixNano`` is ``missing_field``, as in JSON);
* an ``AnyValue`` is its plain value: ``stringValue`` a `str`, ``intValue`` an `int` (OTLP/JSON writes
  text; the presets read both), ``doubleValue`` a `float`, ``boolValue`` a `bool`; an array, key-value
  list or bytes value stays an object (``{"arrayValue": ...}``, as in OTLP/JSON), which no field reads as
  a label or a number (``bad_type``).

A message that protobuf cannot parse (truncated, not protobuf, invalid UTF-8 in a string, nested past
protobuf's recursion limit) is `NOT_PROTOBUF`: counted under ``malformed_json``, the reason string of the
parsing stage (the reason names are a metrics contract; see docs/input.md#otlp-proto). Protobuf skips
unknown fields, so bytes that happen to parse as a message with none of the export's fields are an empty
export: no event, as ``{}`` in OTLP/JSON. Span events and links are not read.

`from_otlp_json` writes an OTLP/JSON export as the same protobuf message (hex ids, int64 as text,
``instrumentationLibrarySpans`` read as ``scopeSpans``): what ``sloguard loadgen --format otlp-proto``
sends, and how tests turn sample lines into messages.
"""

from __future__ import annotations

import base64
import copy
from typing import Any, Final

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from sloguard.ingest.reasons import MALFORMED_JSON

__all__ = ["NOT_PROTOBUF", "from_otlp_json", "server_spans"]

#: The reason of a message protobuf cannot parse: the parsing stage's reason string.
NOT_PROTOBUF: Final = MALFORMED_JSON
_SERVER: Final = Span.SPAN_KIND_SERVER
_SCALARS: Final = frozenset(("string_value", "int_value", "double_value", "bool_value"))
_ID_KEYS: Final = ("traceId", "spanId", "parentSpanId")

SpanViews = tuple[list[dict[str, Any]], int]


def server_spans(message: bytes) -> SpanViews | str:
    """The server spans of one ``ExportTraceServiceRequest`` as views, and how many other spans were
    skipped; or `NOT_PROTOBUF` when ``message`` does not parse."""
    try:
        request = ExportTraceServiceRequest.FromString(message)
    except (DecodeError, RecursionError, ValueError):
        return NOT_PROTOBUF
    views: list[dict[str, Any]] = []
    skipped = 0
    for rs in request.resource_spans:
        resource = _attributes(rs.resource.attributes)
        for ss in rs.scope_spans:
            for span in ss.spans:
                if span.kind != _SERVER:
                    skipped += 1
                    continue
                view = _span_fields(span)
                view["resource"] = resource
                view["attributes"] = _attributes(span.attributes)
                views.append(view)
    return views, skipped


def _span_fields(span: Span) -> dict[str, Any]:
    """The span's own fields under their OTLP/JSON names, zero values left out (``kind`` is always 2)."""
    view: dict[str, Any] = {"kind": _SERVER}
    if span.start_time_unix_nano:
        view["startTimeUnixNano"] = span.start_time_unix_nano
    if span.end_time_unix_nano:
        view["endTimeUnixNano"] = span.end_time_unix_nano
    if span.name:
        view["name"] = span.name
    if span.trace_id:
        view["traceId"] = span.trace_id.hex()
    if span.span_id:
        view["spanId"] = span.span_id.hex()
    if span.parent_span_id:
        view["parentSpanId"] = span.parent_span_id.hex()
    if span.trace_state:
        view["traceState"] = span.trace_state
    if span.flags:
        view["flags"] = span.flags
    if span.HasField("status"):
        status: dict[str, Any] = {}
        if span.status.message:
            status["message"] = span.status.message
        if span.status.code:
            status["code"] = span.status.code
        view["status"] = status
    return view


def _attributes(attrs: Any) -> dict[str, Any]:
    """``repeated KeyValue`` as ``{key: value}`` (the last of a repeated key wins, as in OTLP/JSON)."""
    out: dict[str, Any] = {}
    for kv in attrs:  # the hot loop of this module: strings first, one oneof look-up each
        value = kv.value
        kind = value.WhichOneof("value")
        if kind == "string_value":
            out[kv.key] = value.string_value
        elif kind in _SCALARS:
            out[kv.key] = getattr(value, kind)
        else:
            out[kv.key] = _other(kv)
    return out


def _other(kv: KeyValue) -> Any:
    """A value that is not a scalar: None if unset, else an object as in OTLP/JSON."""
    if not kv.HasField("value"):
        return None
    return json_format.MessageToDict(kv.value)  # {} (no value), {"arrayValue": ...}, {"bytesValue": ...}


def from_otlp_json(doc: dict[str, Any]) -> bytes:
    """An OTLP/JSON export (as the Collector's ``otlp_json`` writes it) as ``otlp_proto`` bytes.

    Raises `ValueError` if ``doc`` is not an export protobuf's JSON reader accepts.
    """
    doc = copy.deepcopy(doc)
    try:
        for rs in doc.get("resourceSpans", []):
            if "instrumentationLibrarySpans" in rs:  # the name before OTLP 0.15
                rs.setdefault("scopeSpans", rs.pop("instrumentationLibrarySpans"))
            for ss in rs.get("scopeSpans", []):
                for span in ss.get("spans", []):
                    for key in _ID_KEYS:  # OTLP/JSON writes ids in hex; protobuf's JSON mapping in base64
                        if key in span:
                            span[key] = base64.b64encode(bytes.fromhex(span[key])).decode()
        request = json_format.ParseDict(doc, ExportTraceServiceRequest(), ignore_unknown_fields=True)
    except (json_format.ParseError, AttributeError, TypeError) as exc:
        raise ValueError(f"not an OTLP/JSON trace export: {exc}") from None
    return request.SerializeToString()
