"""The SLO file's ``input:`` section: where each field of an event is read (schema, then `core.inputspec`).

::

    input:
      preset: envoy                  # optional: start from a preset; the keys below override it
      service: {value: checkout}     # a constant label
      customer: {path: 'req."x-tenant"', default: unknown}
      routes: {templates: ["/v1/orders/{id}"], auto_ids: true}

A field is a path (``http.response.status_code``), a list of paths tried in order, or a mapping with
``path`` and, for labels, ``value`` (a constant) and ``default`` (for a missing, null or empty label).
Paths are keys joined by dots; a key holding a dot is written in double quotes (``attributes."http.route"``;
``\\"`` and ``\\\\`` inside). ``ts: {path, format}`` (``auto``, ``rfc3339``, ``epoch_s`` / ``_ms`` /
``_us`` / ``_ns``); ``latency: {path, unit}`` (``ns``, ``us``, ``ms``, ``s``) or ``latency: {end: PATH}``
(the duration from the event time to an end timestamp in the same format). ``endpoint`` is read as one
label, or joined from ``method`` and ``route`` (``"GET /v1/orders/{id}"``); giving one replaces the
other of the preset's. Everything not given keeps the preset's value, or sloguard's own shape.

This module holds both passes for the section (the pydantic models, and the mapping with its cross-field
rules), since nothing else reads them.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StrictStr,
    ValidationError,
)

from sloguard.core.inputspec import (
    DurationUnit,
    FieldPath,
    FieldSpec,
    InputFormat,
    InputSpec,
    Numbers,
    RouteSpec,
    TsFormat,
)
from sloguard.ingest.presets import PRESET_NAMES, PRESETS
from sloguard.specfile.errors import Loc, Problems, refusal

__all__ = ["InputModel", "input_spec", "parse_input", "parse_path"]

_PLAIN_KEY = re.compile(r'[^."\\]+')


def parse_path(text: str) -> FieldPath:
    """``a.b."c.d"`` -> ``("a", "b", "c.d")``; raises ValueError saying what is wrong."""
    keys: list[str] = []
    i = 0
    while True:
        if text.startswith('"', i):
            key, i = _quoted(text, i)
        else:
            match = _PLAIN_KEY.match(text, i)
            if match is None:
                raise ValueError(
                    f"has an empty key at character {i + 1}" if i < len(text) or keys else "is empty"
                )
            key, i = match.group(), match.end()
        keys.append(key)
        if i == len(text):
            return tuple(keys)
        if text[i] != ".":
            raise ValueError(f'has {text[i]!r} at character {i + 1}; quote a key holding it: "{text}"')
        i += 1
        if i == len(text):
            raise ValueError("ends with a dot")


def _quoted(text: str, start: int) -> tuple[str, int]:
    out: list[str] = []
    i = start + 1
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
        elif c == '"':
            if not out:
                raise ValueError(f"has an empty quoted key at character {start + 1}")
            return "".join(out), i + 1
        else:
            out.append(c)
            i += 1
    raise ValueError(f"has an unterminated quote at character {start + 1}")


def _path(value: Any) -> FieldPath:
    if not isinstance(value, str):
        raise refusal("path_type", 'must be a path such as http.status or attributes."http.route"', value)
    try:
        return parse_path(value)
    except ValueError as exc:
        raise refusal("path", str(exc), value) from None


def _paths(value: Any) -> tuple[FieldPath, ...]:
    """One path, or a non-empty list of them (alternatives, first present wins)."""
    if isinstance(value, list):
        if not value:
            raise refusal("paths_empty", "must name at least one path", value)
        return tuple(_path(v) for v in value)
    return (_path(value),)


def _shorthand(value: Any) -> Any:
    """``status: response_code`` / ``[a, b]`` mean ``{path: ...}``."""
    return {"path": value} if isinstance(value, str | list) else value


def _template(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith("/"):
        raise refusal("template", "must be a route template starting with / such as /v1/orders/{id}", value)
    for segment in value.split("/"):
        if ("{" in segment or "}" in segment) and not re.fullmatch(r"\{[A-Za-z_][A-Za-z0-9_]*\}", segment):
            raise refusal("template", "a placeholder is a whole segment such as {id}", value)
    return value


_Paths = Annotated[tuple[FieldPath, ...], PlainValidator(_paths)]
_Label = Annotated[StrictStr, Field(min_length=1)]


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LabelModel(_Schema):
    """A label: ``path`` (one or alternatives), or a constant ``value``; ``default`` when missing."""

    path: _Paths | None = None
    value: _Label | None = None
    default: _Label | None = None


class PathModel(_Schema):
    """A number field (status): ``path`` only."""

    path: _Paths


class TsModel(_Schema):
    path: _Paths | None = None
    format: TsFormat | None = None


class LatencyModel(_Schema):
    path: _Paths | None = None
    unit: DurationUnit | None = None
    end: _Paths | None = None


class RoutesModel(_Schema):
    templates: tuple[Annotated[str, PlainValidator(_template)], ...] = ()
    auto_ids: StrictBool = False


def _preset(value: Any) -> str:
    if value not in PRESETS:
        raise refusal("preset", f"must be one of {', '.join(PRESET_NAMES)}", value)
    return str(value)


class InputModel(_Schema):
    """The ``input:`` section as written."""

    preset: Annotated[str | None, PlainValidator(_preset)] = None
    format: InputFormat | None = None
    numbers: Numbers | None = None
    ts: Annotated[TsModel | None, BeforeValidator(_shorthand)] = None
    service: Annotated[LabelModel | None, BeforeValidator(_shorthand)] = None
    endpoint: Annotated[LabelModel | None, BeforeValidator(_shorthand)] = None
    method: Annotated[LabelModel | None, BeforeValidator(_shorthand)] = None
    route: Annotated[LabelModel | None, BeforeValidator(_shorthand)] = None
    customer: Annotated[LabelModel | None, BeforeValidator(_shorthand)] = None
    status: Annotated[PathModel | None, BeforeValidator(_shorthand)] = None
    latency: Annotated[LatencyModel | None, BeforeValidator(_shorthand)] = None
    routes: RoutesModel | None = None


Report = Any  # Callable[[Loc, str], None]


def _label(m: LabelModel | None, base: FieldSpec | None, name: str, report: Report) -> FieldSpec | None:
    """The label field: the file's over the base's (a constant drops the base's paths and the reverse)."""
    if m is None:
        return base
    if m.value is not None and (m.path is not None or m.default is not None):
        report((name,), "value is a constant label: it takes no path or default")
        return base
    if m.value is not None:
        return FieldSpec(value=m.value)
    paths = m.path if m.path is not None else (base.paths if base is not None else ())
    if not paths:
        report((name,), "needs a path (or a constant value)")
        return base
    # A new path keeps the base's default unless the file gives one (``default: null`` drops it).
    default = m.default if "default" in m.model_fields_set else (base.default if base is not None else None)
    return FieldSpec(paths=paths, default=default)


def _endpoint(m: InputModel, base: InputSpec, report: Report) -> dict[str, Any]:
    """endpoint, or method and route: the file's choice replaces the base's other one."""
    if m.endpoint is not None and (m.method is not None or m.route is not None):
        report(("endpoint",), "give endpoint, or method and route, not both")
        return {}
    if m.endpoint is not None:
        return {
            "endpoint": _label(m.endpoint, base.endpoint, "endpoint", report),
            "method": None,
            "route": None,
        }
    if m.method is None and m.route is None:
        return {}
    route = _label(m.route, base.route, "route", report)
    if route is None:
        report(("route",), "method needs a route (the request path) to join with")
        return {}
    return {"endpoint": None, "method": _label(m.method, base.method, "method", report), "route": route}


def _latency(m: LatencyModel | None, base: InputSpec, report: Report) -> dict[str, Any]:
    if m is None:
        return {}
    if m.end is not None:
        if m.path is not None or m.unit is not None:
            report(("latency",), "end (a timestamp) takes no path or unit: the duration is end - ts")
            return {}
        return {"latency": None, "end": FieldSpec(paths=m.end)}
    out: dict[str, Any] = {}
    if m.path is not None:
        out.update(latency=FieldSpec(paths=m.path), end=None)
    elif base.latency is None:
        report(("latency",), "needs a path (or end: a timestamp)")
        return {}
    if m.unit is not None:
        out["latency_unit"] = m.unit
    return out


def input_spec(m: InputModel, report: Report) -> InputSpec | None:
    """The section mapped onto `InputSpec` over its preset (or sloguard's own shape); problems go to
    ``report(loc, message)`` and give None."""
    base = PRESETS[m.preset] if m.preset is not None else InputSpec()
    problems: list[tuple[Loc, str]] = []

    def note(loc: Loc, message: str) -> None:
        problems.append((loc, message))

    changes: dict[str, Any] = {"preset": m.preset}
    for name in ("format", "numbers"):
        if getattr(m, name) is not None:
            changes[name] = getattr(m, name)
    if m.ts is not None:
        if m.ts.path is not None:
            changes["ts"] = FieldSpec(paths=m.ts.path)
        if m.ts.format is not None:
            changes["ts_format"] = m.ts.format
    for name in ("service", "customer"):
        changes[name] = _label(getattr(m, name), getattr(base, name), name, note)
    if m.status is not None:
        changes["status"] = FieldSpec(paths=m.status.path)
    changes.update(_endpoint(m, base, note))
    changes.update(_latency(m.latency, base, note))
    if m.routes is not None:
        changes["routes"] = RouteSpec(templates=m.routes.templates, auto_ids=m.routes.auto_ids)
    for loc, message in problems:
        report(loc, message)
    if problems:
        return None
    try:
        return dataclasses.replace(base, **changes)
    except ValueError as exc:
        report((), str(exc))
        return None


def parse_input(raw: Any, problems: Problems) -> InputSpec | None:
    """The ``input:`` section validated and mapped (``input.`` in its problems); None if it is invalid."""
    try:
        model = InputModel.model_validate(raw)
    except ValidationError as exc:
        problems.add_validation("", exc, InputModel, prefix=("input",))
        return None
    return input_spec(model, lambda loc, message: problems.add("", ("input", *loc), message))
