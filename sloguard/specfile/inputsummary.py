"""`describe_input`: the input mapping in force, as `sloguard check` prints it.

Which mapping is in force: the SLO file's ``input:`` section; without one, the preset named by
``SLOGUARD_INPUT__PRESET``; without that, sloguard's own shape. The file wins because it is what users
edit and hot-reload, next to the SLOs that depend on its field names.
"""

from __future__ import annotations

from sloguard.core.inputspec import FieldSpec, InputSpec, show_path
from sloguard.ingest.mapped import flat_options
from sloguard.ingest.presets import PRESETS
from sloguard.ingest.rules import DEFAULT_OPTIONS

__all__ = ["describe_input"]

_ENV = "SLOGUARD_INPUT__PRESET"


def _field(f: FieldSpec) -> str:
    if f.value is not None:
        return f'"{f.value}" (constant)'
    text = " or ".join(show_path(p) for p in f.paths)
    return text + (f' (default "{f.default}")' if f.default is not None else "")


def _endpoint(spec: InputSpec) -> str:
    if spec.endpoint is not None:
        text = _field(spec.endpoint)
        return text + (", path part normalised" if spec.routes.active else "")
    assert spec.route is not None  # InputSpec refuses a mapping with neither
    route = _field(spec.route)
    text = f"{_field(spec.method)} + ' ' + {route}" if spec.method is not None else route
    return text + " (query string dropped)"


def _routes(spec: InputSpec) -> str:
    parts = [f"templates {', '.join(spec.routes.templates)}"] if spec.routes.templates else []
    if spec.routes.auto_ids:
        parts.append("numeric, UUID and hex segments -> {id}")
    return "; ".join(parts) if parts else "none (routes kept as read)"


def _source(spec: InputSpec | None, input_preset: str | None) -> tuple[InputSpec, str]:
    if spec is not None:
        origin = (
            f"the SLO file's input: (from preset {spec.preset})" if spec.preset else "the SLO file's input:"
        )
        if input_preset is not None:
            origin += f"; {_ENV}={input_preset} is ignored: the file's input: wins"
        return spec, origin
    if input_preset is not None:
        return PRESETS[input_preset], f"preset {input_preset} from {_ENV} (the SLO file has no input:)"
    return InputSpec(), f"sloguard's own shape (no input: in the SLO file, {_ENV} not set)"


def describe_input(spec: InputSpec | None, input_preset: str | None = None) -> list[str]:
    """Lines describing the effective mapping: where it comes from, then each field."""
    effective, origin = _source(spec, input_preset)
    fast = flat_options(effective, DEFAULT_OPTIONS) is not None
    if effective.format == "otlp-json":
        shape = "OTLP/JSON trace exports, one event per server span (other spans skipped)"
    elif effective.format == "otlp-proto":
        shape = (
            "OTLP/protobuf trace exports, one per Kafka message (replay cannot read it), one event per"
            " server span (other spans skipped)"
        )
    else:
        shape = "NDJSON, one event per line"
    latency = (
        f"{_field(effective.latency)} in {effective.latency_unit}"
        if effective.latency is not None
        else f"{_field(effective.end) if effective.end else '?'} - ts (end timestamp)"
    )
    rows = [
        ("source", origin),
        ("shape", shape + ("; numbers may be strings" if effective.numbers == "lenient" else "")),
        (
            "decoder",
            "the fast path (flat field names)" if fast else "the mapped path (ingest/mapped.py)",
        ),
        ("ts", f"{_field(effective.ts)} ({effective.ts_format})"),
        ("service", _field(effective.service)),
        ("endpoint", _endpoint(effective)),
        ("routes", _routes(effective)),
        ("customer", _field(effective.customer)),
        ("status", _field(effective.status)),
        ("latency", latency),
    ]
    return ["input", *(f"  {name:<12} {value}" for name, value in rows)]
