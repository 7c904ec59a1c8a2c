"""How to read request-log events whose shape is not sloguard's own: the input mapping, as plain values.

The SLO file's ``input:`` section (or a preset named by ``SLOGUARD_INPUT__PRESET``) is parsed by
`sloguard.specfile` into an `InputSpec`; `sloguard.ingest.mapped` reads lines with it. It lives here, with
the rest of what an SLO file declares (`core.spec.Config.input`), as pure data: nothing in the core reads
events.

A `FieldPath` is the keys from the top of a JSON object down to a value (``("http", "response",
"status_code")``); a field may name several paths, tried in order (the first present wins), a constant
``value`` (labels only) or a ``default`` for a missing, null or empty label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "DURATION_UNITS",
    "TS_FORMATS",
    "DurationUnit",
    "FieldPath",
    "FieldSpec",
    "InputFormat",
    "InputSpec",
    "Numbers",
    "RouteSpec",
    "TsFormat",
    "path_field",
    "show_path",
]

FieldPath = tuple[str, ...]
TsFormat = Literal["auto", "rfc3339", "epoch_s", "epoch_ms", "epoch_us", "epoch_ns"]
DurationUnit = Literal["ns", "us", "ms", "s"]
#: ``json``: one event per NDJSON line; ``otlp-json``: one OTLP/JSON trace export per line, one event per
#: server span; ``otlp-proto``: one OTLP/protobuf trace export per record (a Kafka message: binary, not
#: lines), one event per server span.
InputFormat = Literal["json", "otlp-json", "otlp-proto"]
#: ``strict``: status and latency are JSON numbers (as sloguard's own shape); ``lenient``: strings
#: holding a decimal number are accepted too (nginx quotes every variable, OTLP/JSON writes int64 as text).
Numbers = Literal["strict", "lenient"]

TS_FORMATS: Final[tuple[str, ...]] = ("auto", "rfc3339", "epoch_s", "epoch_ms", "epoch_us", "epoch_ns")
DURATION_UNITS: Final[tuple[str, ...]] = ("ns", "us", "ms", "s")


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """Where one field of an event comes from: the first of ``paths`` present, else ``default``; or the
    constant ``value`` (no paths)."""

    paths: tuple[FieldPath, ...] = ()
    value: str | None = None
    default: str | None = None

    def __post_init__(self) -> None:
        if (self.value is None) == (not self.paths):
            raise ValueError("a field has paths or a constant value, not both")

    @property
    def flat_name(self) -> str | None:
        """The one top-level key this field is read from, if it is that simple (no value or default)."""
        if self.value is None and len(self.paths) == 1 and len(self.paths[0]) == 1:
            return self.paths[0][0]
        return None


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """The route normaliser: ``templates`` (``/v1/orders/{id}``) matched segment by segment, the most
    specific match wins; with ``auto_ids``, numeric, UUID and hexadecimal segments of other paths become
    ``{id}``. A ``route`` always loses its query string and fragment; an ``endpoint`` read as one label
    is normalised only when templates or ``auto_ids`` are given."""

    templates: tuple[str, ...] = ()
    auto_ids: bool = False

    @property
    def active(self) -> bool:
        return bool(self.templates) or self.auto_ids


def path_field(*keys: str) -> FieldSpec:
    """A field read from one path."""
    return FieldSpec(paths=(keys,))


# sloguard's own shape (frozen values: safe to share as defaults).
_TS: Final = path_field("ts")
_SERVICE: Final = path_field("service")
_ENDPOINT: Final = path_field("endpoint")
_CUSTOMER: Final = FieldSpec(paths=(("customer",),), default="unknown")
_STATUS: Final = path_field("status")
_LATENCY: Final = path_field("latency_ms")


@dataclass(frozen=True, slots=True)
class InputSpec:
    """The input mapping: where each field of an event is read, and how.

    ``endpoint`` is read as one label, or (``endpoint`` None) joined from ``method`` and ``route`` as
    ``"METHOD /route"`` (``route`` alone when there is no ``method``), the route normalised by
    ``routes``. Latency is read from ``latency`` in ``latency_unit``, or (``end`` set) is ``end`` minus the
    event time, both timestamps in ``ts_format``. ``preset`` names the preset it started from (shown by
    ``sloguard check``).
    """

    format: InputFormat = "json"
    ts: FieldSpec = _TS
    ts_format: TsFormat = "auto"
    service: FieldSpec = _SERVICE
    endpoint: FieldSpec | None = _ENDPOINT
    method: FieldSpec | None = None
    route: FieldSpec | None = None
    customer: FieldSpec = _CUSTOMER
    status: FieldSpec = _STATUS
    latency: FieldSpec | None = _LATENCY
    latency_unit: DurationUnit = "ms"
    end: FieldSpec | None = None
    numbers: Numbers = "strict"
    routes: RouteSpec = RouteSpec()
    preset: str | None = None

    def __post_init__(self) -> None:
        if self.endpoint is None and self.route is None:
            raise ValueError("an input mapping needs endpoint, or route (and method)")
        if self.endpoint is not None and (self.method is not None or self.route is not None):
            raise ValueError("endpoint, or method and route: not both")
        if (self.latency is None) == (self.end is None):
            raise ValueError("latency is read from a duration field or from an end timestamp: one of them")
        for f in (self.ts, self.status, self.latency, self.end):
            if f is not None and (f.value is not None or f.default is not None):
                raise ValueError("ts, status, latency and end take paths only")


def show_path(path: FieldPath) -> str:
    """A path as written in the SLO file: keys joined by dots, a key holding a dot (or a quote) quoted."""
    return ".".join(_quote(k) if ("." in k or '"' in k or "\\" in k or not k) else k for k in path)


def _quote(key: str) -> str:
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'
