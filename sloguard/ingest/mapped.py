"""Decoding lines of any shape through an input mapping (`InputSpec`): nested paths, constants, defaults,
other timestamp and latency units, routes joined from method and path, OTLP/JSON spans.

`Decoder` sends a buffer here when its mapping cannot be said with the flat `DecodeOptions` (`flat_options`
is None); a flat mapping keeps the byte fast path and the typed msgspec path. The results follow the same
rules (`sloguard.ingest.rules`), timestamps (`sloguard.ingest.timestamps`) and precedence of reasons
(`sloguard.ingest.reasons`) as those paths:

1. the line: ``too_large``, ``bad_encoding``, ``malformed_json`` (also nested deeper than `MAX_DEPTH`),
   ``not_an_object``; an OTLP/JSON line whose ``resourceSpans`` / ``scopeSpans`` / ``spans`` are not
   lists of objects is ``bad_type``;
2. each event (a line, or a server span of an OTLP line): a field none of whose paths is present is
   ``missing_field`` (a label with a ``default`` gets it instead, also when null or empty); a field of the
   wrong type is ``bad_type``: a label that is not a string, a status that is not an integer, a latency
   that is not a number, a timestamp of another type than its format reads (``null`` included, except
   for the customer, where null is missing as on the typed path). With ``numbers: lenient``, strings
   holding a decimal number count as numbers for status, latency and epoch timestamps. A repeated key:
   the last occurrence wins (earlier ones are not type-checked, unlike the typed path);
3. the values: the same checks, in the same order, as the other paths (`value_failure_masks`,
   `label_failures`).

Timestamp formats: ``auto`` is the flat path's rule (RFC 3339 string, integer epoch ms, float epoch s);
``rfc3339`` takes strings only; ``epoch_s`` / ``epoch_ms`` / ``epoch_us`` / ``epoch_ns`` take integers
(``epoch_s`` floats too), floored to the millisecond. A duration from ``end`` is ``end - ts``, exact in
the epoch unit (nanoseconds for OTLP), in milliseconds for RFC 3339.

Speed: a clean buffer of the json format is decoded in one msgspec call into a generated Struct holding
only the top-level keys the mapping reads, and its fields are checked column by column (`_columns`);
a buffer where some value needs a closer look (missing, wrong type) is read again as dicts, row by row
(`_row`), which is the reference the column checks agree with.

OTLP/JSON (``format: otlp-json``): each line is one ``ExportTraceServiceRequest``. Each server span
(``kind`` 2, or ``"SPAN_KIND_SERVER"``) is one event, read from a view of it whose ``resource`` and
``attributes`` are the resource's and the span's attributes as objects (``attributes."http.route"``), the
span's own fields (``startTimeUnixNano``, ``name``, ...) at the top. Other spans are skipped and counted
(`MappedStats.skipped_spans`), not rejected. A rejected span dead-letters its whole line.

OTLP/protobuf (``format: otlp-proto``): each record (a Kafka message) is one binary
``ExportTraceServiceRequest``, not lines; `sloguard.ingest.otlp_proto` reads it into the same span views,
so the mapping and every rule after it are the ones of OTLP/JSON. A record longer than
``max_record_bytes`` is ``too_large``; one protobuf cannot parse is ``malformed_json`` (the parsing
stage's reason); a rejected span dead-letters its whole record. `MappedStats.lines` counts records.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Final

import msgspec
import numpy as np

from sloguard._types import Bools, Intp
from sloguard.core.inputspec import FieldSpec, InputSpec
from sloguard.core.model import EventBatch, LabelColumn, Rejections, Vocabs
from sloguard.ingest import framing
from sloguard.ingest.explain import DECODE_ERRORS
from sloguard.ingest.framing import LineReasons
from sloguard.ingest.reasons import (
    BAD_ENCODING,
    BAD_TYPE,
    EMPTY_LABEL,
    FUTURE_TIMESTAMP,
    LABEL_TOO_LONG,
    MALFORMED_JSON,
    MISSING_FIELD,
    NOT_AN_OBJECT,
    TOO_LARGE,
    first_reasons,
)
from sloguard.ingest.routes import RouteNormaliser
from sloguard.ingest.rules import DecodeOptions, int64_column, label_failures, value_failure_masks
from sloguard.ingest.timestamps import parse_timestamps

__all__ = ["MappedDecoder", "MappedStats", "flat_options"]

#: A missing key: msgspec's UNSET, so that the Structs' defaults and dict misses are the same thing.
_ABSENT: Final = msgspec.UNSET
_FLOAT_MAX: Final = int(np.finfo(np.float64).max)
_INT_TEXT: Final = re.compile(r"-?[0-9]+")
_NUMBER_TEXT: Final = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
#: Milliseconds per unit, as (multiply, divide): division by a power of ten is correctly rounded.
_TO_MS: Final = {"ns": (1.0, 1e6), "us": (1.0, 1e3), "ms": (1.0, 1.0), "s": (1e3, 1.0)}
#: Epoch formats: integer units per millisecond (floor division), and the unit of a duration.
_EPOCH: Final = {
    "epoch_s": ("s", 0),
    "epoch_ms": ("ms", 1),
    "epoch_us": ("us", 1000),
    "epoch_ns": ("ns", 10**6),
}
_SERVER_KINDS: Final = (2, "SPAN_KIND_SERVER")


def flat_options(spec: InputSpec, base: DecodeOptions) -> DecodeOptions | None:
    """``spec`` as flat `DecodeOptions` (limits from ``base``), or None when it needs this module: nested
    paths, alternatives, constants, defaults on other labels, method + route, other units or timestamp
    formats, lenient numbers, OTLP."""
    fields = (spec.ts, spec.service, spec.endpoint, spec.status, spec.latency)
    names = [f.flat_name if f is not None else None for f in fields]
    customer = spec.customer
    flat = (
        spec.format == "json"
        and spec.numbers == "strict"
        and spec.ts_format == "auto"
        and spec.latency_unit in ("ms", "s", "us")
        and not spec.routes.active
        and spec.service.default is None
        and spec.endpoint is not None
        and spec.endpoint.default is None
        and customer.value is None
        and len(customer.paths) == 1
        and len(customer.paths[0]) == 1
        and all(n is not None for n in names)
    )
    if not flat:
        return None
    ts, service, endpoint, status, latency = (n or "" for n in names)
    try:
        return DecodeOptions(
            ts_field=ts,
            service_field=service,
            endpoint_field=endpoint,
            customer_field=customer.paths[0][0],
            status_field=status,
            latency_field=latency,
            latency_unit=spec.latency_unit,  # type: ignore[arg-type]  # checked just above
            default_customer=customer.default,
            max_record_bytes=base.max_record_bytes,
            max_label_length=base.max_label_length,
        )
    except ValueError:  # two fields read from one key: this module reads that
        return None


class MappedStats:
    """What the mapped path read: non-blank ``lines``, ``events`` (valid or not) and, for OTLP, the
    non-server ``skipped_spans``."""

    __slots__ = ("events", "lines", "skipped_spans")

    def __init__(self) -> None:
        self.lines = self.events = self.skipped_spans = 0

    def as_dict(self) -> dict[str, int]:
        return {"lines": self.lines, "events": self.events, "skipped_spans": self.skipped_spans}


class _Reject(Exception):  # control flow inside a row, never escapes this module
    def __init__(self, reason: str) -> None:
        self.reason = reason


@dataclass(slots=True)
class _Rows:
    """The events whose fields were all found with the right types, column by column."""

    lines: list[int]
    ts: list[Any]
    end: list[Any]
    status: list[int]
    latency: list[float]
    labels: list[tuple[str, str, str]]


class MappedDecoder:
    """Records of NDJSON lines -> an `EventBatch` and counted `Rejections`, through an `InputSpec`.

    The same contract as `Decoder.decode_many` (which calls it); ``vocabs`` are the decoder's.
    """

    def __init__(self, spec: InputSpec, options: DecodeOptions) -> None:
        self.spec = spec
        self.stats = MappedStats()
        self._max_line = options.max_record_bytes
        self._max_label = options.max_label_length
        self._json: msgspec.json.Decoder[Any] = msgspec.json.Decoder()
        self._raw = msgspec.json.Decoder(msgspec.Raw)
        self._routes = RouteNormaliser(spec.routes)
        self._lenient = spec.numbers == "lenient"
        epoch = _EPOCH.get(spec.ts_format)
        self._epoch_unit = epoch[0] if epoch else None
        self._per_ms = epoch[1] if epoch else 0
        mul, div = _TO_MS[spec.latency_unit if spec.latency is not None else (self._epoch_unit or "ms")]
        self._mul, self._div = mul, div
        self._endpoint = self._endpoint_reader()
        self._messages: Callable[[bytes], tuple[list[dict[str, Any]], int] | str] | None = None
        if spec.format == "otlp-proto":
            from sloguard.ingest import otlp_proto  # protobuf is imported only by the mappings that need it

            self._messages = otlp_proto.server_spans
        # Lines of sloguard's json format are first decoded into a Struct of only the top-level keys the
        # mapping reads (msgspec skips the others: ~3x faster than dicts); any surprise takes the dicts.
        keys = sorted({path[0] for f in _fields(spec) for path in f.paths})
        self._attrs = {key: f"f{i}" for i, key in enumerate(keys)}
        self._struct: msgspec.json.Decoder[Any] | None = None
        if spec.format == "json":
            fields = [(attr, Any, msgspec.UNSET) for attr in self._attrs.values()]
            rename = {attr: key for key, attr in self._attrs.items()}
            struct = msgspec.defstruct("MappedEvent", fields, rename=rename, gc=False)
            self._struct = msgspec.json.Decoder(struct)

    # -- records ---------------------------------------------------------------------------------------

    def decode_many(
        self,
        vocabs: Vocabs,
        records: Sequence[bytes],
        rejections: Rejections,
        rejected: list[tuple[str, bytes]] | None = None,
        max_ts_ms: int | None = None,
    ) -> EventBatch:
        """Decode ``records`` (see `Decoder.decode_many`: same counting, dead letters and future rule)."""
        if not records:
            return EventBatch.empty(vocabs)
        if self._messages is not None:
            rows, bad = self._read_messages(records, self._messages)
        else:
            rows, bad = self._read(b"\n".join(records) if len(records) > 1 else records[0])
        batch, row_lines, bad_rows = self._assemble(vocabs, rows)
        bad += bad_rows
        if max_ts_ms is not None and len(batch):
            future = batch.ts_ms > max_ts_ms
            if future.any():
                bad += [(row_lines[r], FUTURE_TIMESTAMP) for r in np.flatnonzero(future).tolist()]
                batch = batch.take(np.flatnonzero(~future))
        if bad:
            bad.sort(key=lambda b: b[0])
            for reason, n in Counter(reason for _, reason in bad).items():
                rejections.add(reason, n)
            if rejected is not None:
                if self._messages is not None:  # a record is one message: dead-letter it whole
                    rejected.extend((reason, records[i]) for i, reason in bad)
                else:
                    rejected.extend(framing.payloads(records, bad))
        return batch

    def _read_messages(
        self, records: Sequence[bytes], read: Callable[[bytes], tuple[list[dict[str, Any]], int] | str]
    ) -> tuple[_Rows, LineReasons]:
        """`_read` for binary records, one export each (``read``: its span views and skipped spans);
        the "line" of an event or rejection is its record's index."""
        bad: LineReasons = []
        all_views: list[dict[str, Any]] = []
        view_lines: list[int] = []
        self.stats.lines += len(records)
        for i, record in enumerate(records):
            got = TOO_LARGE if len(record) > self._max_line else read(record)
            if isinstance(got, str):
                bad.append((i, got))
                continue
            views, skipped = got
            self.stats.skipped_spans += skipped
            all_views += views
            view_lines += [i] * len(views)
        return self._view_rows(all_views, view_lines, bad)

    def _read(self, buf: bytes) -> tuple[_Rows, LineReasons]:
        """Every line's events with their raw fields, and `(line, reason)` per line or event rejected."""
        bad: LineReasons = []
        otlp = self.spec.format == "otlp-json"
        clean = self._clean(buf)
        if clean and self._struct is not None:
            structs = _decode_lines(self._struct, buf)
            if structs:
                fast = self._columns(structs, framing.non_blank_lines(buf), self._struct_column)
                if fast is not None:
                    self.stats.lines += len(structs)
                    self.stats.events += len(structs)
                    return fast, bad
        objects = self._objects(buf, clean)
        self.stats.lines += len(objects)
        all_views: list[dict[str, Any]] = []
        view_lines: list[int] = []
        for i, obj in objects:
            if isinstance(obj, str):
                bad.append((i, obj))
                continue
            views = self._spans(obj) if otlp else [obj]
            if isinstance(views, str):
                bad.append((i, views))
                continue
            all_views += views
            view_lines += [i] * len(views)
        return self._view_rows(all_views, view_lines, bad)

    def _view_rows(
        self, all_views: list[dict[str, Any]], view_lines: list[int], bad: LineReasons
    ) -> tuple[_Rows, LineReasons]:
        """The events of decoded views (objects or spans) and their lines: column by column, else row by
        row; ``bad`` gets the rejected ones."""
        rows = _Rows([], [], [], [], [], [])
        self.stats.events += len(all_views)
        fast = self._columns(all_views, view_lines, _column)
        if fast is not None:
            return fast, bad
        # Some field needs a closer look (a missing field, a default, a wrong type): row by row.
        for i, view in zip(view_lines, all_views, strict=True):
            try:
                self._row(view, rows)
            except _Reject as r:
                bad.append((i, r.reason))
            else:
                rows.lines.append(i)
        return rows, bad

    def _columns(self, views: list[Any], lines: list[int], col: _Column) -> _Rows | None:
        """`_row` for every view at once, column by column (``col`` reads one field of every view), when
        every value has the plain type (a label may take its default); None otherwise."""
        spec = self.spec
        ts = _fast_times(col(views, spec.ts.paths), spec.ts_format, self._lenient)
        end = _fast_times(col(views, spec.end.paths), spec.ts_format, self._lenient) if spec.end else None
        status = _fast_numbers(col(views, spec.status.paths), self._lenient, integer=True)
        latency = None
        if spec.latency is not None:
            latency = _fast_numbers(col(views, spec.latency.paths), self._lenient, integer=False)
        service = _fast_labels(views, spec.service, col)
        customer = _fast_labels(views, spec.customer, col)
        endpoint = self._fast_endpoints(views, col)
        if ts is None or status is None or service is None or customer is None or endpoint is None:
            return None
        if (spec.end is not None and end is None) or (spec.latency is not None and latency is None):
            return None
        mul, div = self._mul, self._div
        return _Rows(
            lines=lines,
            ts=ts,
            end=end if end is not None else [None] * len(views),
            status=status,
            latency=[v * mul / div for v in latency] if latency is not None else [0.0] * len(views),
            labels=list(zip(service, endpoint, customer, strict=True)),
        )

    def _fast_endpoints(self, views: list[Any], col: _Column) -> list[str] | None:
        spec, routes = self.spec, self._routes
        if spec.endpoint is not None:
            endpoints = _fast_labels(views, spec.endpoint, col)
            if endpoints is None or not spec.routes.active:
                return endpoints
            return [routes.normalise_endpoint(e) for e in endpoints]
        assert spec.route is not None  # InputSpec refuses a mapping with neither
        paths = _fast_labels(views, spec.route, col)
        if paths is None:
            return None
        normalise = routes.normalise
        if spec.method is None:
            return [normalise(p) if p else "" for p in paths]
        methods = _fast_labels(views, spec.method, col)
        if methods is None:
            return None
        return [f"{m} {normalise(p)}" if m and p else "" for m, p in zip(methods, paths, strict=True)]

    def _struct_column(self, structs: list[Any], paths: tuple[tuple[str, ...], ...]) -> list[Any]:
        """`_column` on the Structs: the top-level key by attribute, the rest of the path in dicts."""
        columns = []
        for first, *rest in paths:
            values = list(map(attrgetter(self._attrs[first]), structs))
            columns.append(
                [_get(v, (tuple(rest),)) if type(v) is dict else _ABSENT for v in values] if rest else values
            )
        if len(columns) == 1:
            return columns[0]
        return [_first_present(row) for row in zip(*columns, strict=True)]

    def _clean(self, buf: bytes) -> bool:
        """Whether no line of ``buf`` can fail before its JSON is read (depth, size, encoding)."""
        return (
            not framing.maybe_too_deep(buf)
            and (len(buf) <= self._max_line or framing.longest_line(buf) <= self._max_line)
            and (buf.isascii() or framing.is_utf8(buf))
        )

    def _objects(self, buf: bytes, clean: bool) -> list[tuple[int, Any]]:
        """(line number, decoded object or the reason it is rejected) per non-blank line.

        One msgspec call for the whole buffer when it is clean NDJSON (the common case), else line by
        line, so that each bad line gets its own reason.
        """
        objs = _decode_lines(self._json, buf) if clean else None
        if objs:
            return list(zip(framing.non_blank_lines(buf), objs, strict=True))
        lines = enumerate(buf.split(b"\n"))
        return [(i, self._object(line)) for i, line in lines if line.strip(framing.JSON_WS)]

    def _object(self, line: bytes) -> Any:
        """The decoded JSON object of a line, or the reason (a `str`) it is rejected."""
        if len(line) > self._max_line:
            return TOO_LARGE
        if not line.isascii():
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return BAD_ENCODING
        if framing.maybe_too_deep(line) and framing.nesting_depth(line) > framing.MAX_DEPTH:
            return MALFORMED_JSON
        try:
            obj = self._json.decode(line)
        except DECODE_ERRORS:
            try:
                self._raw.decode(line)  # syntax only
                # Valid JSON with a number beyond a double (1e400): the stdlib reads it as inf, which the
                # value rules then refuse (bad_latency, bad_timestamp) as the typed path does.
                obj = json.loads(line, parse_int=_parse_int)
            except DECODE_ERRORS:
                return MALFORMED_JSON
        return obj if type(obj) is dict else NOT_AN_OBJECT

    def _spans(self, obj: dict[str, Any]) -> list[dict[str, Any]] | str:
        """The server spans of an OTLP/JSON export as flat views, or the reason the line is rejected."""
        views: list[dict[str, Any]] = []
        skipped = 0
        try:
            for rs in _objects(obj.get("resourceSpans", [])):
                resource = rs.get("resource") or {}
                if type(resource) is not dict:
                    return BAD_TYPE
                res_attrs = _attributes(resource.get("attributes"))
                # instrumentationLibrarySpans: the name before OTLP 0.15 (still written by old SDKs).
                for ss in _objects(rs.get("scopeSpans", rs.get("instrumentationLibrarySpans", []))):
                    for span in _objects(ss.get("spans", [])):
                        if span.get("kind") not in _SERVER_KINDS:
                            skipped += 1
                            continue
                        view = dict(span)
                        view["resource"] = res_attrs
                        view["attributes"] = _attributes(span.get("attributes"))
                        views.append(view)
        except _Reject as r:
            return r.reason
        self.stats.skipped_spans += skipped
        return views

    # -- one event -------------------------------------------------------------------------------------

    def _row(self, obj: dict[str, Any], rows: _Rows) -> None:
        """Append the event of ``obj`` to ``rows``, or raise `_Reject` with its first structural reason."""
        spec = self.spec
        failed: list[str] = []
        ts = self._timestamp(obj, spec.ts, failed)
        end = self._timestamp(obj, spec.end, failed) if spec.end is not None else None
        status = _number(_get(obj, spec.status.paths), failed, self._lenient, integer=True)
        latency = 0.0
        if spec.latency is not None:
            latency = _number(_get(obj, spec.latency.paths), failed, self._lenient, integer=False)
        service = _label(obj, spec.service, failed)
        endpoint = self._endpoint(obj, failed)
        customer = _label(obj, spec.customer, failed, optional=True)
        if failed:
            raise _Reject(MISSING_FIELD if MISSING_FIELD in failed else BAD_TYPE)
        rows.ts.append(ts)
        rows.end.append(end)
        rows.status.append(status)
        rows.latency.append(latency * self._mul / self._div)
        rows.labels.append((service, endpoint, customer))

    def _timestamp(self, obj: dict[str, Any], field: FieldSpec, failed: list[str]) -> Any:
        """The value `parse_timestamps` reads for a timestamp field in ``ts_format`` (epoch units as
        integers of the unit, turned into ms in `_assemble`)."""
        value = _get(obj, field.paths)
        if value is _ABSENT:
            failed.append(MISSING_FIELD)
            return 0
        fmt = self.spec.ts_format
        kind = type(value)
        if fmt == "auto":
            ok = kind in (str, int, float)
        elif fmt == "rfc3339":
            ok = kind is str
        else:
            if kind is str and self._lenient:
                if _INT_TEXT.fullmatch(value):
                    return int(value)
                if fmt == "epoch_s" and _NUMBER_TEXT.fullmatch(value):
                    return float(value)  # nginx's $msec: "1700000000.123"
            ok = kind is int or (kind is float and fmt == "epoch_s")
        if not ok:
            failed.append(BAD_TYPE)
        return value

    def _endpoint_reader(self) -> Callable[[dict[str, Any], list[str]], str]:
        spec, routes = self.spec, self._routes
        endpoint, method, route = spec.endpoint, spec.method, spec.route
        if endpoint is not None:
            if not spec.routes.active:
                return lambda obj, failed: _label(obj, endpoint, failed)
            return lambda obj, failed: routes.normalise_endpoint(_label(obj, endpoint, failed))
        assert route is not None  # InputSpec refuses a mapping with neither

        def joined(obj: dict[str, Any], failed: list[str]) -> str:
            path = _label(obj, route, failed)
            if method is None:
                return routes.normalise(path) if path else ""
            verb = _label(obj, method, failed)
            return f"{verb} {routes.normalise(path)}" if verb and path else ""

        return joined

    # -- columns ---------------------------------------------------------------------------------------

    def _assemble(self, vocabs: Vocabs, rows: _Rows) -> tuple[EventBatch, list[int], LineReasons]:
        """The batch of the rows whose values pass the rules, their lines, and `(line, reason)` for the
        others."""
        n = len(rows.lines)
        if n == 0:
            return EventBatch.empty(vocabs), [], []
        ts_ms, ts_ok = self._times(rows.ts)
        latency = np.array(rows.latency, dtype=np.float64)
        if self.spec.end is not None:
            end_ms, end_ok = self._times(rows.end)
            ts_ok &= end_ok
            latency = self._durations(rows, ts_ms, end_ms)
        status = int64_column(rows.status)
        empty = np.zeros(n, np.bool_)
        too_long = np.zeros(n, np.bool_)
        for k, labels in enumerate(rows.labels):
            for reason in label_failures(labels, self._max_label):
                (empty if reason == EMPTY_LABEL else too_long)[k] = True
        failed: dict[str, Bools | None] = {
            **value_failure_masks(ts_ok, status, latency),
            EMPTY_LABEL: empty,
            LABEL_TOO_LONG: too_long,
        }
        bad_rows, reasons = first_reasons(failed, n)
        bad = [(rows.lines[r], reason) for r, reason in zip(bad_rows.tolist(), reasons, strict=True)]
        keep: Intp = np.setdiff1d(np.arange(n), bad_rows, assume_unique=True)
        kept = keep.tolist()
        service, endpoint, customer = ([rows.labels[k][j] for k in kept] for j in range(3))
        batch = EventBatch(
            ts_ms=ts_ms[keep],
            status=status[keep].astype(np.int32),
            latency_ms=latency[keep],
            service=LabelColumn(vocabs.service.encode(service), vocabs.service),
            endpoint=LabelColumn(vocabs.endpoint.encode(endpoint), vocabs.endpoint),
            customer=LabelColumn(vocabs.customer.encode(customer), vocabs.customer),
        )
        return batch, [rows.lines[k] for k in kept], bad

    def _times(self, values: list[Any]) -> tuple[Any, Bools]:
        """Epoch ms and validity of timestamp values (`parse_timestamps`, after the epoch unit's floor)."""
        unit, per_ms = self._epoch_unit, self._per_ms
        if unit is None:
            return parse_timestamps(values)
        if unit == "s":  # integers are whole seconds; floats go through parse_timestamps' epoch-s rule
            converted = [v * 1000 if type(v) is int else v for v in values]
        else:
            converted = [v // per_ms if type(v) is int else v for v in values]
        return parse_timestamps(converted)

    def _durations(self, rows: _Rows, ts_ms: Any, end_ms: Any) -> Any:
        """``end - ts`` in ms: exact in the epoch unit when both are integers, else from the ms values."""
        latency = (end_ms - ts_ms).astype(np.float64)
        if self._epoch_unit is not None:
            for k, (start, end) in enumerate(zip(rows.ts, rows.end, strict=True)):
                if type(start) is int and type(end) is int:
                    latency[k] = (end - start) * self._mul / self._div
        return latency


def _parse_int(text: str) -> int:
    """A JSON integer; one longer than Python reads from text (4300 digits) is beyond every rule's range
    anyway: a stand-in of its sign, as large."""
    if len(text) <= 4300:
        return int(text)
    return -(10**4300) if text.startswith("-") else 10**4300


def _objects(value: Any) -> list[dict[str, Any]]:
    """``value`` if it is a list of objects; else the line is `bad_type` (raised as `_Reject`)."""
    if type(value) is not list or any(type(v) is not dict for v in value):
        raise _Reject(BAD_TYPE)
    return value


def _any_value(value: Any) -> Any:
    """An OTLP ``AnyValue`` (``{"stringValue": "x"}``) as a plain value: int64 stays text, as in OTLP/JSON."""
    if type(value) is dict and len(value) == 1:
        for kind in ("stringValue", "intValue", "doubleValue", "boolValue"):
            if kind in value:
                return value[kind]
    return value


def _attributes(attrs: Any) -> dict[str, Any]:
    """OTLP ``[{"key": k, "value": AnyValue}]`` as ``{k: value}`` (malformed entries ignored)."""
    if type(attrs) is not list:
        return {}
    return {
        a["key"]: _any_value(a.get("value")) for a in attrs if type(a) is dict and type(a.get("key")) is str
    }


_Column = Callable[[list[Any], tuple[tuple[str, ...], ...]], list[Any]]


def _fields(spec: InputSpec) -> list[FieldSpec]:
    every = (spec.ts, spec.end, spec.service, spec.endpoint, spec.method, spec.route, spec.customer)
    return [f for f in (*every, spec.status, spec.latency) if f is not None]


def _decode_lines(decoder: msgspec.json.Decoder[Any], buf: bytes) -> list[Any] | None:
    """The objects of ``buf`` if it holds exactly one a line (``{...}``), else None."""
    try:
        objs: list[Any] = decoder.decode_lines(buf)
    except DECODE_ERRORS:
        return None
    # Every non-empty line "{...}" and as many objects as lines: one object a line.
    return objs if objs and framing.one_per_line(buf, len(objs)) else None


def _column(views: list[dict[str, Any]], paths: tuple[tuple[str, ...], ...]) -> list[Any]:
    """`_get` for every view (a top-level key in one comprehension: no call per row)."""
    if len(paths) == 1 and len(paths[0]) == 1:
        key = paths[0][0]
        return [v.get(key, _ABSENT) for v in views]
    return [_get(v, paths) for v in views]


def _digits(values: list[Any]) -> bool:
    """Whether every value is a string of ASCII digits (what lenient numbers read without a regex)."""
    return all(type(v) is str and v.isascii() and v.isdigit() for v in values)


def _fast_times(values: list[Any], fmt: str, lenient: bool) -> list[Any] | None:
    """A timestamp column if every value has its format's plain type, else None (`_row` decides)."""
    kinds = set(map(type, values))
    if fmt == "auto":
        return values if kinds <= {str, int, float} else None
    if fmt == "rfc3339":
        return values if kinds <= {str} else None
    if kinds <= ({int, float} if fmt == "epoch_s" else {int}):
        return values
    return [int(v) for v in values] if lenient and _digits(values) else None


def _fast_numbers(values: list[Any], lenient: bool, *, integer: bool) -> list[Any] | None:
    """A status (``integer``) or latency column if every value is a plain number, else None."""
    kinds = set(map(type, values))
    if integer:
        if kinds <= {int}:
            return values
        return [int(v) for v in values] if lenient and _digits(values) else None
    if kinds <= {float}:
        return values
    if kinds <= {int, float}:
        return values if all(-_FLOAT_MAX <= v <= _FLOAT_MAX for v in values) else None
    if lenient and kinds <= {str} and all(_NUMBER_TEXT.fullmatch(v) for v in values):
        return [float(v) for v in values]
    return None


def _fast_labels(views: list[Any], field: FieldSpec, col: _Column) -> list[str] | None:
    """A label column if every value is a string (or, with a default, missing, null or empty), else None."""
    if field.value is not None:
        return [field.value] * len(views)
    values = col(views, field.paths)
    kinds = set(map(type, values))
    if kinds <= {str}:
        dflt = field.default
        return values if dflt is None or all(values) else [v or dflt for v in values]
    if field.default is not None and all(type(v) is str or v is None or v is _ABSENT for v in values):
        dflt = field.default
        return [v if type(v) is str and v else dflt for v in values]
    return None


def _first_present(values: tuple[Any, ...]) -> Any:
    """Of a field's alternatives, the first non-null value; None if one was null; else `_ABSENT`."""
    for value in values:
        if value is not None and value is not _ABSENT:
            return value
    return None if None in values else _ABSENT


def _get(obj: dict[str, Any], paths: tuple[tuple[str, ...], ...]) -> Any:
    """The value of the first path holding a non-null value; None if one held null; else `_ABSENT`."""
    if len(paths) == 1 and len(paths[0]) == 1:  # the common case, a top-level key
        return obj.get(paths[0][0], _ABSENT)
    seen_null = False
    for path in paths:
        value: Any = obj
        for key in path:
            if type(value) is not dict:
                value = _ABSENT
                break
            value = value.get(key, _ABSENT)
        if value is None:
            seen_null = True
        elif value is not _ABSENT:
            return value
    return None if seen_null else _ABSENT


def _label(obj: dict[str, Any], field: FieldSpec, failed: list[str], *, optional: bool = False) -> str:
    """A label: the constant, the value found (a string), or the default for missing, null or empty.

    Without a default a missing label is `missing_field`, and so is a null one if it is ``optional``
    (the customer, as on the typed path); a null service, endpoint, method or route is `bad_type`.
    """
    if field.value is not None:
        return field.value
    value = _get(obj, field.paths)
    if type(value) is str and value:
        return value
    if field.default is not None and (value is None or value is _ABSENT or value == ""):
        return field.default
    if value is _ABSENT or (value is None and optional):
        failed.append(MISSING_FIELD)
    elif type(value) is not str:
        failed.append(BAD_TYPE)
    return ""


def _number(value: Any, failed: list[str], lenient: bool, *, integer: bool) -> Any:
    """A status (``integer``) or a latency: a JSON number (never a bool), or text of one if ``lenient``."""
    kind = type(value)
    if kind is int and not integer:
        # An integer beyond a double is +-inf, as the typed path reads it (then refused by the rules).
        return float(value) if -_FLOAT_MAX <= value <= _FLOAT_MAX else (math.inf if value > 0 else -math.inf)
    if kind is int or (kind is float and not integer):
        return value
    if kind is str and lenient and (_INT_TEXT if integer else _NUMBER_TEXT).fullmatch(value):
        return int(value) if integer else float(value)
    failed.append(MISSING_FIELD if value is _ABSENT else BAD_TYPE)
    return 0
