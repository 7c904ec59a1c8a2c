"""Input presets: the mappings of common access-log and trace formats, as `InputSpec` values.

Each is written from the format's own documentation (see docs/input.md for the sources and sample lines);
an SLO file's ``input: {preset: NAME, ...}`` starts from one and overrides fields, and
``SLOGUARD_INPUT__PRESET`` picks one when the SLO file has no ``input:``.

* ``envoy``: Envoy's JSON access log with the field names of Istio's (and Envoy Gateway's) default JSON
  format: ``start_time`` (``%START_TIME%``, RFC 3339), ``method`` (``%REQ(:METHOD)%``), ``path``
  (``%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%``, query string dropped), ``response_code``
  (``%RESPONSE_CODE%``), ``duration`` (``%DURATION%``, ms); the service is ``authority``
  (``%REQ(:AUTHORITY)%``), usually overridden with ``service: {value: NAME}``.
* ``nginx-json``: the commonly documented ``log_format ... escape=json`` fields: ``time_iso8601``
  (``$time_iso8601``; or ``time``), ``request_method``, ``uri`` (``$uri``; or ``request_uri``), ``status``,
  ``request_time`` (seconds), ``host`` (or ``server_name``) as the service. nginx quotes variables, so
  numbers may be strings.
* ``otlp-json``: OpenTelemetry spans as the Collector's Kafka exporter writes them with
  ``encoding: otlp_json`` (one ``ExportTraceServiceRequest`` a message); server spans only;
  ``service.name`` from the resource, ``http.request.method`` (or ``http.method``), ``http.route`` (or
  ``url.path``, ``http.target``), ``http.response.status_code`` (or ``http.status_code``), the duration
  from ``startTimeUnixNano`` and ``endTimeUnixNano``.
* ``otlp-proto``: the same spans as the exporter's default ``encoding: otlp_proto`` writes them: one
  protobuf ``ExportTraceServiceRequest`` a Kafka message (`sloguard.ingest.otlp_proto`), mapped as
  ``otlp-json``. Binary records, not lines: for the daemon's Kafka input (``sloguard replay`` refuses it,
  see `LINE_FORMATS`).

Every preset defaults the customer to ``unknown`` and drops query strings; none replaces ids unless
``routes:`` says so (the ``otlp-json`` route is already a template).
"""

from __future__ import annotations

import dataclasses
from typing import Final

from sloguard.core.inputspec import FieldSpec, InputSpec, path_field

__all__ = ["LINE_FORMATS", "PRESETS", "PRESET_NAMES", "effective_input", "replay_refusal"]

_UNKNOWN_CUSTOMER: Final = FieldSpec(paths=(("customer",),), default="unknown")


def _alternatives(*paths: tuple[str, ...]) -> FieldSpec:
    return FieldSpec(paths=paths)


ENVOY: Final = InputSpec(
    preset="envoy",
    ts=path_field("start_time"),
    ts_format="rfc3339",
    service=path_field("authority"),
    endpoint=None,
    method=path_field("method"),
    route=path_field("path"),
    customer=_UNKNOWN_CUSTOMER,
    status=path_field("response_code"),
    latency=path_field("duration"),
    latency_unit="ms",
    numbers="lenient",
)

NGINX_JSON: Final = InputSpec(
    preset="nginx-json",
    ts=_alternatives(("time_iso8601",), ("time",)),
    ts_format="rfc3339",
    service=_alternatives(("host",), ("server_name",)),
    endpoint=None,
    method=path_field("request_method"),
    route=_alternatives(("uri",), ("request_uri",)),
    customer=_UNKNOWN_CUSTOMER,
    status=path_field("status"),
    latency=path_field("request_time"),
    latency_unit="s",
    numbers="lenient",
)

OTLP_JSON: Final = InputSpec(
    preset="otlp-json",
    format="otlp-json",
    ts=path_field("startTimeUnixNano"),
    ts_format="epoch_ns",
    service=path_field("resource", "service.name"),
    endpoint=None,
    method=_alternatives(("attributes", "http.request.method"), ("attributes", "http.method")),
    route=_alternatives(
        ("attributes", "http.route"), ("attributes", "url.path"), ("attributes", "http.target")
    ),
    customer=FieldSpec(paths=(("attributes", "customer"),), default="unknown"),
    status=_alternatives(("attributes", "http.response.status_code"), ("attributes", "http.status_code")),
    latency=None,
    end=path_field("endTimeUnixNano"),
    numbers="lenient",
)

OTLP_PROTO: Final = dataclasses.replace(OTLP_JSON, preset="otlp-proto", format="otlp-proto")

#: Every preset by name.
PRESETS: Final[dict[str, InputSpec]] = {p.preset or "": p for p in (ENVOY, NGINX_JSON, OTLP_JSON, OTLP_PROTO)}
PRESET_NAMES: Final = tuple(PRESETS)
#: The input formats whose records are lines (what ``sloguard replay`` reads from files and stdin).
LINE_FORMATS: Final = ("json", "otlp-json")


def effective_input(file_input: InputSpec | None, preset: str | None) -> InputSpec | None:
    """The mapping in force: the SLO file's ``input:`` wins; without one, the preset the settings name
    (``SLOGUARD_INPUT__PRESET``); None: sloguard's own shape."""
    if file_input is not None:
        return file_input
    return PRESETS[preset] if preset is not None else None


def replay_refusal(spec: InputSpec | None) -> str | None:
    """Why ``sloguard replay`` cannot read input of this mapping (None: it can): files are framed by
    lines, and an ``otlp-proto`` record is binary, one Kafka message each, with no framing of its own."""
    if spec is None or spec.format in LINE_FORMATS:
        return None
    return (
        f"input format {spec.format} is binary OTLP/protobuf, one ExportTraceServiceRequest per Kafka "
        "message; replay reads lines from files: read the topic with 'sloguard run', or have the "
        "Collector write encoding: otlp_json and use the otlp-json preset"
    )
