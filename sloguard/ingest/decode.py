"""Decode raw request-log records (JSON / NDJSON bytes) into `EventBatch` columns.

A record is the payload of one Kafka message or one chunk of a file. It holds one JSON object per line
(NDJSON); a single JSON event is simply a one-line record. Blank lines (only spaces, tabs and `\\r`) and
a trailing newline are ignored, `\\r\\n` is tolerated. A JSON document spread over several lines (pretty
printed) is *not* supported: each of its lines is rejected as `malformed_json`.

Every non-blank line becomes exactly one valid event or exactly one rejection, counted by reason in a
`Rejections`. Nothing the bytes contain can make the decoder raise.

Speed
-----
Buffers of 160 KiB and more first go through a byte-level fast path (see "the byte-level fast path"
below): the lines in the common shape (`{"ts": "...", "service": ...}` with the configured keys in order)
are read straight from the bytes with numpy, and only the 256 KiB pieces holding any other line take
the msgspec path described next, with exactly the same results.

The msgspec path does one `msgspec` call for the whole buffer (`Decoder.decode_lines`) into a `gc=False`
Struct, pulls each field into a column, and validates the columns with numpy. Timestamps are parsed in
bulk: RFC 3339 strings are turned into a `uint8` matrix and the calendar arithmetic is done on columns
(`parse_timestamps`). Only when the whole-buffer decode fails (a malformed line, a wrong type, a label
out of bounds) does the decoder fall back to decoding line by line, so that the good lines of a mixed
record are still kept and each bad line gets its own reason.

Buffers over 256 KiB are decoded in pieces cut at newlines (cache-sized, and a bad line only sends its
own piece down the per-line path). `decode_many` joins its records into one buffer. Below 16 objects
numpy's fixed cost per call (tens of microseconds) dominates, so small batches are checked row by row
in plain Python (`timestamp_ms`), with the same rules; prefer `decode_many` over many `decode` calls.

Timestamps
----------
The `ts` field accepts

* RFC 3339 strings: `YYYY-MM-DD(T|t| )HH:MM:SS[.F]` then `Z`/`z` or `±HH:MM`; `F` is 1 to 9 digits.
  Second 60 (leap second), missing offsets and other ISO 8601 forms are rejected.
* JSON integers: epoch milliseconds.
* JSON floats: epoch seconds. They are first rounded to the microsecond exactly as
  `datetime.fromtimestamp` does (round half to even), then floored to the millisecond.

Sub-millisecond precision is floored (toward minus infinity) to an int64 epoch millisecond. The instant
must fall in [2000-01-01, 2100-01-01) UTC, otherwise the line is `bad_timestamp`; this also catches
epoch seconds sent as an integer, which would land in 1970.

Rejection precedence
--------------------
A line with several problems is counted once, under the first matching reason of `REASONS`.
Duplicate keys: the last occurrence wins, but every occurrence must have the right type.
"""

from __future__ import annotations

import bisect
import functools
import json as _json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from operator import attrgetter
from typing import Annotated, Any, Final, Literal

import msgspec
import numpy as np
import numpy.typing as npt

from sloguard.core.model import EventBatch, LabelColumn, Rejections, Vocab, Vocabs

__all__ = [
    "BAD_ENCODING",
    "BAD_LATENCY",
    "BAD_STATUS",
    "BAD_TIMESTAMP",
    "BAD_TYPE",
    "DEFAULT_OPTIONS",
    "EMPTY_LABEL",
    "LABEL_TOO_LONG",
    "MALFORMED_JSON",
    "MISSING_FIELD",
    "NEGATIVE_LATENCY",
    "NOT_AN_OBJECT",
    "REASONS",
    "TOO_LARGE",
    "DecodeOptions",
    "Decoder",
    "LatencyUnit",
    "parse_timestamps",
    "timestamp_ms",
]

# Rejection reasons. These strings are part of the self-metrics and dead-letter contract: do not rename.
TOO_LARGE: Final = "too_large"
BAD_ENCODING: Final = "bad_encoding"
MALFORMED_JSON: Final = "malformed_json"
NOT_AN_OBJECT: Final = "not_an_object"
MISSING_FIELD: Final = "missing_field"
BAD_TYPE: Final = "bad_type"
BAD_TIMESTAMP: Final = "bad_timestamp"
BAD_STATUS: Final = "bad_status"
NEGATIVE_LATENCY: Final = "negative_latency"
BAD_LATENCY: Final = "bad_latency"
EMPTY_LABEL: Final = "empty_label"
LABEL_TOO_LONG: Final = "label_too_long"

#: Every reason, in precedence order: a line with several problems is counted under the first one.
#: Not in REASONS: it depends on the decoder's caller (`decode_many(max_ts_ms=...)`), not on the line.
FUTURE_TIMESTAMP: Final = "future_timestamp"

REASONS: Final[tuple[str, ...]] = (
    TOO_LARGE,
    BAD_ENCODING,
    MALFORMED_JSON,
    NOT_AN_OBJECT,
    MISSING_FIELD,
    BAD_TYPE,
    BAD_TIMESTAMP,
    BAD_STATUS,
    NEGATIVE_LATENCY,
    BAD_LATENCY,
    EMPTY_LABEL,
    LABEL_TOO_LONG,
)

LatencyUnit = Literal["ms", "s", "us"]

_I64 = npt.NDArray[np.int64]
_Bools = npt.NDArray[np.bool_]
_LineReasons = list[tuple[int, str]]  # (line or row number, reason) of rejected lines

_MIN_TS_MS: Final = 946_684_800_000  # 2000-01-01T00:00:00Z
_MAX_TS_MS: Final = 4_102_444_800_000  # 2100-01-01T00:00:00Z, excluded
_DAY_MS: Final = 86_400_000
_MAX_LATENCY_MS: Final = float(_DAY_MS)  # "absurd": a request that took more than a day

# What msgspec (and the UTF-8 check) raise on bad input. ValueError covers msgspec.DecodeError,
# ValidationError and UnicodeDecodeError; RecursionError is how msgspec reports too-deep nesting.
_DECODE_ERRORS: Final = (msgspec.MsgspecError, ValueError, RecursionError)

_FLOAT_MAX: Final = float(np.finfo(np.float64).max)


#: Deepest nesting of arrays/objects accepted in a line. msgspec's own limit is the interpreter's
#: recursion limit less the caller's stack depth, so the same line could pass in one caller and fail in
#: another; this fixed limit (far below it) makes the verdict depend on the line alone.
MAX_DEPTH: Final = 64


def _maybe_too_deep(buf: bytes) -> bool:
    """Cheap test (C-speed counts): False means no line of ``buf`` nests deeper than MAX_DEPTH."""
    # A line nested d deep has d opening brackets; one "{" per line is the normal object.
    extra = buf.count(b"[") + buf.count(b"{") - buf.count(b"\n") - 1
    return extra >= MAX_DEPTH


def _depth(line: bytes) -> int:
    """Deepest nesting of ``[``/``{`` outside strings (only for the rare lines `_maybe_too_deep` flags)."""
    depth = deepest = 0
    in_string = escaped = False
    for c in line:
        if in_string:
            if escaped:
                escaped = False
            elif c == 0x5C:  # backslash
                escaped = True
            elif c == 0x22:  # quote
                in_string = False
        elif c == 0x22:
            in_string = True
        elif c in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif c in (0x5D, 0x7D):
            depth -= 1
    return deepest


class _IntLit(str):
    """A JSON integer literal, as text (`Decoder._explain`: no size limit)."""

    __slots__ = ()


class _FloatLit(str):
    """A JSON number literal with a fraction or exponent, as text."""

    __slots__ = ()


def _type_ok(attr: str, value: Any) -> bool:
    """Whether a JSON value has a type the typed decode accepts for ``attr``."""
    if attr == "ts":
        return isinstance(value, str)  # a string, or a number literal (also a str subclass)
    if attr in ("service", "endpoint"):
        return type(value) is str
    if attr == "customer":
        return value is None or type(value) is str
    if attr == "status":
        return type(value) is _IntLit
    return type(value) in (_IntLit, _FloatLit)  # latency


def _representable(attr: str, value: Any) -> bool:
    """Whether a right-typed value fits what the typed decode holds it in (a double for latency)."""
    if not isinstance(value, _IntLit | _FloatLit):
        return True  # strings, null
    number = _number(value)
    return number is not None and not (attr == "latency" and abs(number) > _FLOAT_MAX)


def _number(value: Any) -> int | float | None:
    """A number literal's value: an int, a finite float; None when it is beyond a float or too long."""
    try:
        if type(value) is _IntLit:
            return int(value)
        if type(value) is _FloatLit:
            f = float(value)
            return f if abs(f) <= _FLOAT_MAX else None
    except ValueError:  # an integer longer than Python's int-from-text limit (4300 digits)
        return None
    return None


_JSON_WS: Final = b" \t\r"  # JSON whitespace besides "\n", which separates lines
_PIECE_BYTES: Final = 256 * 1024  # decode big buffers in pieces of about this size (cache-sized)
# Below these many objects numpy's fixed cost per call (about 40 us for a whole decode) outweighs its
# per-row savings, so the rows are validated / the lines checked in plain Python (measured break-evens).
_SMALL_BATCH: Final = 16
_SMALL_LINE_CHECK: Final = 64


@dataclass(frozen=True, slots=True)
class DecodeOptions:
    """How to read a request-log event: JSON field names, latency unit, defaults and limits.

    The six `*_field` attributes name the JSON keys holding the event's fields. `latency_unit` is the
    unit of the latency field in the input; the decoded column is always float milliseconds.
    `default_customer` replaces a missing, `null` or empty customer; with `None` a missing or `null`
    customer is `missing_field` and an empty one `empty_label`. A line longer than `max_record_bytes`
    is rejected unread (`too_large`); service, endpoint and customer longer than `max_label_length`
    characters are `label_too_long`.
    """

    ts_field: str = "ts"
    service_field: str = "service"
    endpoint_field: str = "endpoint"
    customer_field: str = "customer"
    status_field: str = "status"
    latency_field: str = "latency_ms"
    latency_unit: LatencyUnit = "ms"
    default_customer: str | None = "unknown"
    max_record_bytes: int = 1 << 20
    max_label_length: int = 256

    def __post_init__(self) -> None:
        names = self.field_names()
        if any(not n for n in names) or len(set(names)) != len(names):
            raise ValueError(f"field names must be non-empty and distinct, got {names}")
        if self.latency_unit not in ("ms", "s", "us"):
            raise ValueError(f"latency_unit must be 'ms', 's' or 'us', got {self.latency_unit!r}")
        if self.max_record_bytes < 1 or self.max_label_length < 1:
            raise ValueError("max_record_bytes and max_label_length must be positive")
        dc = self.default_customer
        if dc is not None and not 0 < len(dc) <= self.max_label_length:
            raise ValueError("default_customer must be non-empty and at most max_label_length long")

    def field_names(self) -> tuple[str, str, str, str, str, str]:
        """JSON keys of ts, service, endpoint, customer, status and latency, in that order."""
        return (
            self.ts_field,
            self.service_field,
            self.endpoint_field,
            self.customer_field,
            self.status_field,
            self.latency_field,
        )


#: The default options (`ts`, `service`, `endpoint`, `customer`, `status`, `latency_ms` in ms).
DEFAULT_OPTIONS: Final = DecodeOptions()

# Attribute names of the decoding Struct, in the order of DecodeOptions.field_names().
_ATTRS: Final = ("ts", "service", "endpoint", "customer", "status", "latency")


class Decoder:
    """Turns records of NDJSON request-log lines into an `EventBatch` and counted `Rejections`.

    Build one per `DecodeOptions` and reuse it: it compiles the msgspec decoders once. Between calls it
    keeps only caches that never change a result (the fast path's label ids and scratch buffer); the
    caller's `rejections` and `rejected` are mutated, and new labels are interned into `vocabs`. Not
    thread-safe.
    """

    __slots__ = (
        "_any",
        "_customer_required",
        "_default_customer",
        "_fields",
        "_latency_div",
        "_latency_mul",
        "_max_label",
        "_max_line",
        "_names",
        "_raw",
        "_relaxed",
        "_scanner",
        "_strict",
        "options",
        "vocabs",
    )

    def __init__(
        self,
        options: DecodeOptions = DEFAULT_OPTIONS,
        vocabs: Vocabs | None = None,
        *,
        fast_path: bool = True,
    ) -> None:
        self.options = options
        # Label columns come out as ids in these vocabularies; pass the aggregator's to skip re-coding.
        self.vocabs = vocabs if vocabs is not None else Vocabs()
        self._names = options.field_names()
        self._default_customer = options.default_customer
        self._customer_required = options.default_customer is None
        self._max_line = options.max_record_bytes
        self._max_label = options.max_label_length
        self._latency_mul = 1000.0 if options.latency_unit == "s" else 1.0
        # Division by 1000 is correctly rounded; multiplying by 0.001 (inexact) is not.
        self._latency_div = 1000.0 if options.latency_unit == "us" else 1.0
        # The strict Struct checks label bounds inside msgspec, at C speed, on the hot path. A label out of
        # bounds fails the whole-buffer decode and sends it to the per-line path, which uses the relaxed
        # Struct and reports the label problem with the same precedence as every other value check.
        label = Annotated[str, msgspec.Meta(min_length=1, max_length=options.max_label_length)]
        customer = Annotated[str, msgspec.Meta(max_length=options.max_label_length)]
        self._strict: msgspec.json.Decoder[Any] = msgspec.json.Decoder(self._struct(label, customer))
        self._relaxed: msgspec.json.Decoder[Any] = msgspec.json.Decoder(self._struct(str, str))
        # Used only to explain why a line failed.
        self._raw = msgspec.json.Decoder(msgspec.Raw)
        self._fields = msgspec.json.Decoder(dict[str, msgspec.Raw])
        self._any = msgspec.json.Decoder()
        # Big buffers of lines in the common shape skip msgspec (see "the byte-level fast path" below);
        # `fast_path=False` keeps everything on the msgspec path (tests compare the two).
        self._scanner = _ByteScanner.create(options, self.vocabs) if fast_path else None

    def _struct(self, label: Any, customer: Any) -> type[msgspec.Struct]:
        # kw_only lets the optional customer sit among required fields; gc=False because millions of
        # these are created and they never form cycles.
        return msgspec.defstruct(
            "RequestLogEvent",
            [
                ("ts", str | int | float),
                ("service", label),
                ("endpoint", label),
                ("customer", customer | None, None),
                ("status", int),
                ("latency", float),
            ],
            kw_only=True,
            gc=False,
            rename=dict(zip(_ATTRS, self._names, strict=True)),
        )

    def decode(
        self,
        record: bytes,
        rejections: Rejections,
        rejected: list[tuple[str, bytes]] | None = None,
    ) -> EventBatch:
        """Decode one record (one JSON event or NDJSON lines) into a batch of valid events.

        Each rejected line is counted in `rejections`. If `rejected` is given, it also receives
        `(reason, payload)` per rejection, in line order, for a dead-letter topic: the payload is the whole
        record, byte for byte, when the record has a single non-blank line, else the offending line
        without its `\\n` / `\\r\\n` terminator.
        """
        return self.decode_many((record,), rejections, rejected)

    def decode_many(
        self,
        records: Sequence[bytes],
        rejections: Rejections,
        rejected: list[tuple[str, bytes]] | None = None,
        max_ts_ms: int | None = None,
    ) -> EventBatch:
        """Decode many records (e.g. one Kafka `getmany`) into one batch, in record then line order.

        Same contract as `decode`, record by record. With ``max_ts_ms``, otherwise valid events stamped
        later than it are rejected as `FUTURE_TIMESTAMP` (the daemon's clock-skew allowance), with their
        lines' bytes like any other rejection. The records are joined with `\\n` so that one
        msgspec call decodes them all; a record boundary is always a line boundary.
        """
        if not records:
            return EventBatch.empty(self.vocabs)
        buf = records[0] if len(records) == 1 else b"\n".join(records)
        batch, bad = self._decode_buffer(buf)
        if max_ts_ms is not None and len(batch) and int(batch.ts_ms.max()) > max_ts_ms:
            batch, bad = _refuse_future(buf, batch, bad, max_ts_ms)
        if bad:
            for reason, n in Counter(reason for _, reason in bad).items():
                rejections.add(reason, n)
            if rejected is not None:
                rejected.extend(_payloads(records, bad))
        return batch

    # -- internals -------------------------------------------------------------------------------------

    def _decode_buffer(self, buf: bytes) -> tuple[EventBatch, _LineReasons]:
        """Valid events of `buf`, and `(line number, reason)` per rejected line (lines split on LF)."""
        if self._scanner is not None and len(buf) >= _FAST_MIN_BYTES:
            if self._scanner.vocabs is not self.vocabs:  # reassigned: the cached ids are another's
                self._scanner = _ByteScanner.create(self.options, self.vocabs)
                return self._decode_buffer(buf)
            scan = self._scanner.scan(buf)
            if scan is not None:
                return self._decode_scanned(buf, scan)
        if len(buf) <= _PIECE_BYTES:
            return self._decode_piece(buf, 0)
        # Big buffers go piece by piece, cut at newlines: the Structs of a piece are freed before the
        # next one is decoded, so they stay in cache (about 2x faster than one huge decode_lines), and a
        # bad line only sends its own piece down the per-line path.
        batches: list[EventBatch] = []
        bad: list[tuple[int, str]] = []
        for start, end in _pieces(buf):
            batch, piece_bad = self._decode_piece(buf[start:end], 0)
            batches.append(batch)
            if piece_bad:
                # Line numbers only matter when something was rejected: count them then.
                first_line = buf.count(b"\n", 0, start)
                bad += [(first_line + line, reason) for line, reason in piece_bad]
        return EventBatch.concat(batches), bad

    def _decode_scanned(self, buf: bytes, scan: _Scan) -> tuple[EventBatch, _LineReasons]:
        """Rows the fast path read, and the msgspec path for every piece holding a row it did not.

        Pieces are processed in order and new labels interned row by row within each, so the vocabularies
        grow exactly as they would on the msgspec path alone.
        """
        ok = scan.ok
        if bool(ok.all()):
            for labels in scan.labels:
                labels.resolve(buf, 0, len(ok))
            return scan.batch(0, len(ok)), []
        batches: list[EventBatch] = []
        bad: list[tuple[int, str]] = []
        run: list[int] = []  # first and last row of the pending run of fast pieces
        for start, end in _pieces(buf):
            r0, r1 = np.searchsorted(scan.starts, (start, end)).tolist()
            if bool(ok[r0:r1].all()):
                for labels in scan.labels:
                    labels.resolve(buf, r0, r1)
                run = [run[0] if run else r0, r1]
                continue
            if run:
                batches.append(scan.batch(run[0], run[1]))
                run = []
            batch, piece_bad = self._decode_piece(buf[start:end], 0)
            batches.append(batch)
            if piece_bad:
                first_line = int(np.searchsorted(scan.newlines, start))
                bad += [(first_line + line, reason) for line, reason in piece_bad]
        if run:
            batches.append(scan.batch(run[0], run[1]))
        return EventBatch.concat(batches), bad

    def _decode_piece(self, buf: bytes, first_line: int) -> tuple[EventBatch, _LineReasons]:
        objs = self._decode_whole(buf)
        if objs is None:
            return self._decode_per_line(buf, first_line)
        batch, bad_rows = self._assemble(objs, ())
        if not bad_rows:
            return batch, []
        # Row i is the i-th non-blank line; only worth mapping when something was rejected.
        row_lines = [i for i, line in enumerate(buf.split(b"\n")) if line.strip(_JSON_WS)]
        return batch, [(first_line + row_lines[row], reason) for row, reason in bad_rows]

    def _decode_whole(self, buf: bytes) -> list[Any] | None:
        """The hot path: the objects of `buf` if it is clean NDJSON with one object per line, else None."""
        if _maybe_too_deep(buf):
            return None
        if not buf.isascii():
            try:
                buf.decode("utf-8")
            except UnicodeDecodeError:
                return None
        if len(buf) > self._max_line and _longest_line(buf) > self._max_line:
            return None
        try:
            objs: list[Any] = self._strict.decode_lines(buf)
        except _DECODE_ERRORS:
            return None
        if not objs:
            return objs  # only JSON whitespace: no non-blank line
        one_per_line = _one_per_line_small if len(objs) <= _SMALL_LINE_CHECK else _one_per_line
        return objs if one_per_line(buf, len(objs)) else None

    def _decode_per_line(self, buf: bytes, first_line: int) -> tuple[EventBatch, _LineReasons]:
        """The fallback: decode line by line so each bad line gets its reason and good lines survive."""
        check_size = len(buf) > self._max_line
        check_utf8 = not buf.isascii()
        strict, relaxed = self._strict.decode, self._relaxed.decode
        objs: list[Any] = []
        obj_lines: list[int] = []
        unchecked: list[int] = []  # rows decoded by the relaxed Struct: labels still to check
        bad: list[tuple[int, str]] = []
        for i, line in enumerate(buf.split(b"\n"), first_line):
            if check_size and len(line) > self._max_line:
                if line.strip(_JSON_WS):
                    bad.append((i, TOO_LARGE))
                continue
            if check_utf8 and not line.isascii():
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError:
                    bad.append((i, BAD_ENCODING))
                    continue
            if _maybe_too_deep(line) and _depth(line) > MAX_DEPTH:
                bad.append((i, MALFORMED_JSON))
                continue
            try:
                obj = strict(line)
            except _DECODE_ERRORS:
                if not line.strip(_JSON_WS):
                    continue
                try:
                    obj = relaxed(line)
                except _DECODE_ERRORS:
                    bad.append((i, self._explain(line)))
                    continue
                unchecked.append(len(objs))
            objs.append(obj)
            obj_lines.append(i)
        batch, bad_rows = self._assemble(objs, unchecked)
        if bad_rows:
            bad.extend((obj_lines[row], reason) for row, reason in bad_rows)
            bad.sort()
        return batch, bad

    def _explain(self, line: bytes) -> str:
        """Why `line` (valid UTF-8, not blank) failed the typed decode. Slow; only for bad lines."""
        try:
            self._raw.decode(line)  # syntax only: does not range-check numbers
        except _DECODE_ERRORS:
            return MALFORMED_JSON
        try:
            self._fields.decode(line)
        except msgspec.ValidationError:
            return NOT_AN_OBJECT
        except _DECODE_ERRORS:
            return MALFORMED_JSON
        # Every problem of the line, the first in REASONS order wins (as in `_assemble`). Numbers are
        # kept as their literal text (1e400 or a 5000-digit integer are values, not errors, here), and
        # every occurrence of a repeated key is judged (msgspec's typed decode fails on the first).
        pairs = _json.loads(line, object_pairs_hook=list, parse_int=_IntLit, parse_float=_FloatLit)
        occurrences: dict[str, list[Any]] = {}
        for key, value in pairs:
            occurrences.setdefault(key, []).append(value)
        values: dict[str, Any] = {}
        for attr, name in zip(_ATTRS, self._names, strict=True):
            occ = occurrences.get(name)
            if not occ:
                if attr == "customer" and not self._customer_required:
                    continue
                return MISSING_FIELD
            values[attr] = occ[-1]
        if self._customer_required and values["customer"] is None:
            return MISSING_FIELD
        for attr, name in zip(_ATTRS, self._names, strict=True):
            occ = occurrences.get(name, [])
            if any(not _type_ok(attr, v) for v in occ):
                return BAD_TYPE
            # An earlier occurrence of a repeated key that the typed decode cannot hold (1e400 before the
            # last value wins) fails that decode as a type error.
            if any(not _representable(attr, v) for v in occ[:-1]):
                return BAD_TYPE
        reasons: set[str] = set()
        ts = values["ts"]
        if isinstance(ts, _FloatLit | _IntLit):
            number = _number(ts)
            ts_ok = number is not None and bool(parse_timestamps([number])[1][0])
        else:
            ts_ok = bool(parse_timestamps([ts])[1][0])
        if not ts_ok:
            reasons.add(BAD_TIMESTAMP)
        status = _number(values["status"])
        if status is None or not 100 <= status <= 599:
            reasons.add(BAD_STATUS)
        latency_text = str(values["latency"])
        latency = float(latency_text) * self._latency_mul / self._latency_div
        if latency_text.startswith("-") and latency != 0.0:
            reasons.add(NEGATIVE_LATENCY)
        elif not latency <= _MAX_LATENCY_MS:
            reasons.add(BAD_LATENCY)
        labels = [
            values["service"],
            values["endpoint"],
            values.get("customer") or self._default_customer or "",
        ]
        if not all(labels[:2]) or ("customer" in values and values["customer"] == ""):
            reasons.add(EMPTY_LABEL)
        if max(map(len, labels)) > self._max_label:
            reasons.add(LABEL_TOO_LONG)
        return min(reasons, key=REASONS.index) if reasons else BAD_TYPE

    def _assemble(self, objs: list[Any], unchecked: Sequence[int]) -> tuple[EventBatch, _LineReasons]:
        """Columns of the valid objects, and `(row, reason)` for the others.

        Rows decoded with the strict Struct already have service/endpoint non-empty and every label within
        `max_label_length`; `unchecked` lists the rows decoded with the relaxed one.
        """
        n = len(objs)
        if n == 0:
            return EventBatch.empty(self.vocabs), []
        if n <= _SMALL_BATCH:
            return self._assemble_small(objs, unchecked)
        ts_ms, ts_ok = parse_timestamps([o.ts for o in objs])
        vocabs = self.vocabs
        service = _encode_attr(objs, "service", vocabs.service)
        endpoint = _encode_attr(objs, "endpoint", vocabs.endpoint)
        customer_raw: list[str | None] = [o.customer for o in objs]
        status = _int64_column([o.status for o in objs])
        latency = np.array([o.latency for o in objs], dtype=np.float64)
        with np.errstate(over="ignore"):  # 1e308 s -> inf ms, rejected below as bad_latency
            if self._latency_mul != 1.0:
                latency *= self._latency_mul
            if self._latency_div != 1.0:
                latency /= self._latency_div

        missing: _Bools | None = None
        empty: _Bools | None = None
        if all(customer_raw):
            customer = vocabs.customer.encode(customer_raw)  # type: ignore[arg-type]  # all(): no None
        elif self._default_customer is not None:
            dflt = self._default_customer
            customer = vocabs.customer.encode([c or dflt for c in customer_raw])
        else:
            missing = np.fromiter((c is None for c in customer_raw), np.bool_, n)
            empty = np.fromiter((c == "" for c in customer_raw), np.bool_, n)
            customer = vocabs.customer.encode([c or "" for c in customer_raw])
        too_long: _Bools | None = None
        if unchecked:
            empty = np.zeros(n, np.bool_) if empty is None else empty
            too_long = np.zeros(n, np.bool_)
            limit = self._max_label
            names = (vocabs.service.names, vocabs.endpoint.names, vocabs.customer.names)
            cols = (service, endpoint, customer)
            for row in unchecked:
                labels = tuple(nm[int(col[row])] for nm, col in zip(names, cols, strict=True))
                empty[row] |= not all(labels)
                too_long[row] = max(map(len, labels)) > limit

        status_bad = (status < 100) | (status > 599)
        negative = latency < 0.0
        latency_bad = ~(latency <= _MAX_LATENCY_MS) & ~negative  # written so that NaN is bad
        # In precedence order (see REASONS).
        checks: list[tuple[str, _Bools | None]] = [
            (MISSING_FIELD, missing),
            (BAD_TIMESTAMP, ~ts_ok),
            (BAD_STATUS, status_bad),
            (NEGATIVE_LATENCY, negative),
            (BAD_LATENCY, latency_bad),
            (EMPTY_LABEL, empty),
            (LABEL_TOO_LONG, too_long),
        ]
        bad_any = np.zeros(n, np.bool_)
        for _, mask in checks:
            if mask is not None:
                bad_any |= mask
        if not bad_any.any():
            batch = EventBatch(
                ts_ms=ts_ms,
                status=status.astype(np.int32),
                latency_ms=latency,
                service=LabelColumn(service, vocabs.service),
                endpoint=LabelColumn(endpoint, vocabs.endpoint),
                customer=LabelColumn(customer, vocabs.customer),
            )
            return batch, []

        # Rare: label every bad row with its first reason, lowest precedence written first.
        codes = np.zeros(n, np.int8)
        for code in range(len(checks), 0, -1):
            mask = checks[code - 1][1]
            if mask is not None:
                codes[mask] = code
        bad_rows = np.flatnonzero(codes)
        reasons = [checks[c - 1][0] for c in codes[bad_rows].tolist()]
        bad = list(zip(bad_rows.tolist(), reasons, strict=True))
        keep = np.flatnonzero(codes == 0)
        batch = EventBatch(
            ts_ms=ts_ms[keep],
            status=status[keep].astype(np.int32),
            latency_ms=latency[keep],
            service=LabelColumn(service[keep], vocabs.service),
            endpoint=LabelColumn(endpoint[keep], vocabs.endpoint),
            customer=LabelColumn(customer[keep], vocabs.customer),
        )
        return batch, bad

    def _assemble_small(self, objs: list[Any], unchecked: Sequence[int]) -> tuple[EventBatch, _LineReasons]:
        """`_assemble` row by row (same checks, same precedence): cheaper than numpy for a few rows."""
        dflt = self._default_customer
        limit = self._max_label
        ts_col: list[int] = []
        status_col: list[int] = []
        latency_col: list[float] = []
        service_col: list[str] = []
        endpoint_col: list[str] = []
        customer_col: list[str] = []
        bad: _LineReasons = []
        for row, o in enumerate(objs):
            service, endpoint, customer = o.service, o.endpoint, o.customer
            status = o.status
            latency = o.latency * self._latency_mul / self._latency_div
            if not customer and dflt is not None:
                customer = dflt
            ms = timestamp_ms(o.ts)
            reason: str | None = None
            if customer is None:
                reason = MISSING_FIELD
            elif ms is None:
                reason = BAD_TIMESTAMP
            elif not 100 <= status <= 599:
                reason = BAD_STATUS
            elif latency < 0.0:
                reason = NEGATIVE_LATENCY
            elif not latency <= _MAX_LATENCY_MS:
                reason = BAD_LATENCY
            elif not (service and endpoint and customer):
                reason = EMPTY_LABEL
            elif row in unchecked and max(len(service), len(endpoint), len(customer)) > limit:
                reason = LABEL_TOO_LONG
            if reason is not None or ms is None:  # (ms is None implies a reason: spelled out for mypy)
                bad.append((row, reason or BAD_TIMESTAMP))
                continue
            ts_col.append(ms)
            status_col.append(status)
            latency_col.append(latency)
            service_col.append(service)
            endpoint_col.append(endpoint)
            customer_col.append(customer)
        batch = EventBatch(
            ts_ms=np.array(ts_col, dtype=np.int64),
            status=np.array(status_col, dtype=np.int32),
            latency_ms=np.array(latency_col, dtype=np.float64),
            service=LabelColumn(self.vocabs.service.encode(service_col), self.vocabs.service),
            endpoint=LabelColumn(self.vocabs.endpoint.encode(endpoint_col), self.vocabs.endpoint),
            customer=LabelColumn(self.vocabs.customer.encode(customer_col), self.vocabs.customer),
        )
        return batch, bad


def _encode_attr(objs: list[Any], attr: str, vocab: Vocab) -> npt.NDArray[np.intp]:
    """Ids of ``o.<attr>`` for every object, in one C-level pass (no intermediate list)."""
    get = attrgetter(attr)
    try:
        return np.fromiter(map(vocab.ids.__getitem__, map(get, objs)), np.intp, len(objs))
    except KeyError:
        for value in dict.fromkeys(map(get, objs)):
            vocab.intern(value)
        return np.fromiter(map(vocab.ids.__getitem__, map(get, objs)), np.intp, len(objs))


def _int64_column(values: list[int]) -> npt.NDArray[np.int64]:
    """`values` as int64; integers beyond int64 (JSON allows them) become -1, which every caller rejects."""
    try:
        return np.array(values, dtype=np.int64)
    except OverflowError:
        lim = 1 << 62
        return np.array([v if -lim < v < lim else -1 for v in values], dtype=np.int64)


def _pieces(buf: bytes) -> list[tuple[int, int]]:
    """`buf` cut into pieces of about `_PIECE_BYTES` at newlines: (start, end) byte ranges, the cutting
    newline in neither."""
    if len(buf) <= _PIECE_BYTES:
        return [(0, len(buf))]
    out = []
    start = 0
    while start < len(buf):
        cut = buf.find(b"\n", start + _PIECE_BYTES)
        end = len(buf) if cut < 0 else cut
        out.append((start, end))
        start = end + 1
    return out


def _longest_line(buf: bytes) -> int:
    """Length of the longest line of `buf`, terminator excluded."""
    nl = np.flatnonzero(np.frombuffer(buf, np.uint8) == 10)
    return int(np.diff(nl, prepend=-1, append=len(buf)).max()) - 1


# msgspec's decode_lines ignores line structure: two objects on one line, or one object over two lines,
# both decode. So the hot path also requires every non-empty line to start with "{" and end with "}" (or
# "}\r"). Then every line boundary is "}", newlines, "{", which JSON only allows *between* top-level
# values, so each such line holds at least one object, and equal counts mean exactly one each.


def _one_per_line(buf: bytes, n_objects: int) -> bool:
    """Whether the `n_objects` top-level values msgspec found in `buf` sit one per non-empty line.

    Cheap form of the rule, with bytes.count (memchr speed): the buffer starts with "{", ends with "}"
    (before an optional line end), has exactly `n_objects - 1` inner line breaks, and every one of them is
    "}\n{" or "}\r\n{". A newline inside a JSON value can only be whitespace between tokens, and "}"
    whitespace "{" is never valid inside a value, so every break separates two top-level values; with
    n values and n - 1 breaks there is one value per line. Anything else (blank lines, two values on one
    line) takes the exact numpy check.
    """
    body = buf[:-1] if buf.endswith(b"\n") else buf
    if body.endswith(b"\r"):
        body = body[:-1]
    if body[:1] == b"{" and body[-1:] == b"}":
        breaks = body.count(b"\n")
        crlf = body.count(b"}\r\n{") if b"\r" in body else 0
        if breaks == n_objects - 1 and body.count(b"}\n{") + crlf == breaks:
            return True
    return _one_per_line_exact(buf, n_objects)


def _one_per_line_exact(buf: bytes, n_objects: int) -> bool:
    """Whether the `n_objects` top-level values msgspec found in `buf` sit one per non-empty line."""
    a = np.frombuffer(buf, np.uint8)
    nl = np.flatnonzero(a == 10)
    starts = np.empty(len(nl) + 1, np.intp)  # lines are [starts[i], ends[i])
    starts[0] = 0
    starts[1:] = nl + 1
    ends = np.empty_like(starts)
    ends[:-1] = nl
    ends[-1] = len(buf)
    filled = ends > starts
    s = starts[filled]
    e = ends[filled] - 1
    if len(s) != n_objects:
        return False
    last = a[e]
    ok = (a[s] == 123) & ((last == 125) | ((last == 13) & (e > s) & (a[np.maximum(e - 1, 0)] == 125)))
    return bool(ok.all())


def _one_per_line_small(buf: bytes, n_objects: int) -> bool:
    """`_one_per_line` without numpy's per-call overhead, for a few lines."""
    lines = [line for line in buf.split(b"\n") if line]
    return len(lines) == n_objects and all(line[0] == 123 and line.endswith((b"}", b"}\r")) for line in lines)


def _refuse_future(
    buf: bytes, batch: EventBatch, bad: _LineReasons, max_ts_ms: int
) -> tuple[EventBatch, _LineReasons]:
    """`batch` without its events stamped after ``max_ts_ms``, and their lines added to ``bad``.

    Row k of a batch is the k-th non-blank line that was not rejected (both decode paths keep line
    order), which gives each refused event its line.
    """
    future = batch.ts_ms > max_ts_ms
    rejected_lines = {line for line, _ in bad}
    accepted = [
        i for i, line in enumerate(buf.split(b"\n")) if line.strip(_JSON_WS) and i not in rejected_lines
    ]
    if len(accepted) != len(batch):  # cannot happen; never mis-attribute bytes if it did
        raise AssertionError("decoded rows do not match the accepted lines")
    refused = [(accepted[row], FUTURE_TIMESTAMP) for row in np.flatnonzero(future).tolist()]
    return batch.take(np.flatnonzero(~future)), sorted(bad + refused)


def _payloads(records: Sequence[bytes], bad: list[tuple[int, str]]) -> list[tuple[str, bytes]]:
    """Dead-letter payloads for rejected lines, given as line numbers of `b"\\n".join(records)`."""
    # Record r spans count("\n") + 1 lines of the joined buffer.
    first_line: list[int] = []
    total = 0
    for record in records:
        first_line.append(total)
        total += record.count(b"\n") + 1
    out: list[tuple[str, bytes]] = []
    split: dict[int, list[bytes] | None] = {}  # record -> its lines, None if it has one non-blank line
    for line_no, reason in bad:
        r = bisect.bisect_right(first_line, line_no) - 1
        if r not in split:
            lines = records[r].split(b"\n")
            split[r] = lines if sum(1 for x in lines if x.strip(_JSON_WS)) > 1 else None
        lines_or_none = split[r]
        if lines_or_none is None:
            out.append((reason, records[r]))
        else:
            line = lines_or_none[line_no - first_line[r]]
            out.append((reason, line[:-1] if line.endswith(b"\r") else line))
    return out


# -- timestamps --------------------------------------------------------------------------------------------

# Two ASCII digits combine into a uint8 "pair" of at most 255 even when the row is garbage, so tables
# indexed by pairs are sized for 0-255 and never need clamping: garbage rows are flagged, not trapped.
_YEARS: Final = 256 * 100 + 256  # year = pair * 100 + pair


def _calendar_tables() -> tuple[_I64, npt.NDArray[np.intp], _I64, _I64]:
    """Lookup tables for the proleptic Gregorian calendar (RFC 3339's), by year and by month.

    Returns days from 1970-01-01 to January 1st of each year (Hinnant's days_from_civil), a leap flag
    per year, and, indexed by `leap * 256 + month`, the days before the month and the days in the month
    (0 for a month outside 1-12, which makes every day of it invalid).
    """
    y = np.arange(_YEARS, dtype=np.int64) - 1  # January counts in the previous March-based year
    era = y // 400  # floor division, right for y = -1 too
    yoe = y - era * 400
    doe = yoe * 365 + yoe // 4 - yoe // 100 + 306  # 306 = days from March 1st to January 1st
    year_days = era * 146_097 + doe - 719_468
    years = np.arange(_YEARS)
    leap = ((years % 4 == 0) & ((years % 100 != 0) | (years % 400 == 0))).astype(np.intp)
    before = np.zeros(512, np.int64)
    dim = np.zeros(512, np.int64)
    for is_leap in (0, 1):
        lengths = [31, 28 + is_leap, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        dim[is_leap * 256 + 1 : is_leap * 256 + 13] = lengths
        before[is_leap * 256 + 1 : is_leap * 256 + 13] = np.cumsum([0, *lengths[:-1]])
    return year_days, leap, before, dim


_YEAR_DAYS, _LEAP, _DAYS_BEFORE_MONTH, _DAYS_IN_MONTH = _calendar_tables()


def _byte_set(chars: bytes) -> _Bools:
    table = np.zeros(256, np.bool_)
    table[list(chars)] = True
    return table


_IS_DATE_TIME_SEP: Final = _byte_set(b"Tt ")
_IS_ZULU: Final = _byte_set(b"Zz")
_IS_SIGN: Final = _byte_set(b"+-")
_SIGN_OF: Final = np.zeros(256, np.int64)
_SIGN_OF[ord("+")], _SIGN_OF[ord("-")] = 1, -1

_TS_WIDTH: Final = 35  # the longest RFC 3339 form: 19 + "." + 9 digits + "+HH:MM"
_ONES: Final = np.ones(_TS_WIDTH, np.float32)


@dataclass(frozen=True, slots=True)
class _Layout:
    """Where everything sits in RFC 3339 strings of one length and one zone kind (Z or offset)."""

    length: int
    zulu: bool  # ends in "Z" rather than in an offset
    tz: int  # column of "Z" or of the offset sign
    lo: npt.NDArray[np.uint8]  # per column: row - lo must be <= span (uint8 arithmetic wraps)
    span: npt.NDArray[np.uint8]
    first: npt.NDArray[np.intp]  # per pair of digits: column of the tens digit
    second: npt.NDArray[np.intp]  # per pair of digits: column of the units digit
    hours: tuple[int, ...]  # pairs that are hours (<= 23): the time's, and the offset's if any
    weights: npt.NDArray[np.float64]  # pairs @ weights = (time of day ms, offset ms)


def _make_layout(length: int, zulu: bool) -> _Layout | None:
    """The layout of `length`-char strings ending in Z (`zulu`) or in an offset; None if impossible."""
    tz = length - (1 if zulu else 6)
    rest = tz - 19  # "" or "." and 1-9 fraction digits
    if rest < 0 or rest == 1 or rest > 10:
        return None
    n_frac = max(rest - 1, 0)
    # Column kinds: D a digit, 5 a digit up to 5 (tens of minutes and seconds), ? anything (checked
    # separately with a byte set), else that literal char.
    spec = list("DDDD-DD-DD?DD:5D:5D")
    if n_frac:
        spec += ["."] + ["D"] * n_frac
    spec += ["?"] if zulu else ["?", "D", "D", ":", "5", "D"]
    lo = np.zeros(length, np.uint8)
    span = np.zeros(length, np.uint8)
    for col, kind in enumerate(spec):
        if kind in "D5":
            lo[col], span[col] = ord("0"), 9 if kind == "D" else 5
        elif kind == "?":
            lo[col], span[col] = 0, 255
        else:
            lo[col], span[col] = ord(kind), 0
    # (tens column, units column, time-of-day ms weight, offset ms weight). Column 4 is "-", whose
    # value relative to lo is 0 in every valid row: pairing it with a lone digit yields that digit.
    # Month and day are range-checked with the calendar tables, minutes and seconds by their tens digit
    # (so a leap second, :60, is rejected), hours explicitly.
    pairs: list[tuple[int, int, int, int]] = [
        (0, 1, 0, 0),  # century
        (2, 3, 0, 0),  # year of century
        (5, 6, 0, 0),  # month
        (8, 9, 0, 0),  # day
        (11, 12, 3_600_000, 0),  # hour
        (14, 15, 60_000, 0),  # minute
        (17, 18, 1000, 0),  # second
    ]
    hours = [4]
    if n_frac == 1:
        pairs.append((4, 20, 100, 0))
    elif n_frac >= 2:
        pairs.append((20, 21, 10, 0))
    if n_frac >= 3:
        pairs.append((4, 22, 1, 0))  # digits after the third are floored away (but validated)
    if not zulu:
        hours.append(len(pairs))
        pairs += [(tz + 1, tz + 2, 0, 3_600_000), (tz + 4, tz + 5, 0, 60_000)]
    cols = np.array(pairs, dtype=np.int64)
    return _Layout(
        length=length,
        zulu=zulu,
        tz=tz,
        lo=lo,
        span=span,
        first=cols[:, 0].astype(np.intp),
        second=cols[:, 1].astype(np.intp),
        hours=tuple(hours),
        weights=cols[:, 2:4].astype(np.float64),
    )


_LAYOUTS: Final = {(n, z): _make_layout(n, z) for n in range(_TS_WIDTH + 1) for z in (False, True)}


def parse_timestamps(values: Sequence[object]) -> tuple[_I64, _Bools]:
    """Event timestamps to int64 epoch milliseconds, vectorised; see the module docstring for formats.

    Returns `(ms, ok)`: `ok[i]` is False when `values[i]` is not an accepted timestamp (wrong format or
    type, invalid date, outside [2000-01-01, 2100-01-01) UTC); `ms[i]` is 0 there. Sub-millisecond
    precision is floored. Values may mix strings, ints and floats; bools and other types are not ok.
    """
    n = len(values)
    kinds = set(map(type, values))
    if kinds == {str}:
        ms, ok = _parse_rfc3339(values)  # type: ignore[arg-type]  # kinds proves they are all str
    elif kinds == {int}:
        ms, ok = _from_epoch_ms(values)  # type: ignore[arg-type]
    else:
        ms = np.zeros(n, np.int64)
        ok = np.zeros(n, np.bool_)
        # Mixed types (rare): convert each kind on its own rows; other types stay not ok.
        for kind in (str, int, float):
            if kind not in kinds:
                continue
            idx = [i for i, v in enumerate(values) if type(v) is kind]
            part: list[Any] = [values[i] for i in idx]
            if kind is str:
                ms[idx], ok[idx] = _parse_rfc3339(part)
            elif kind is int:
                ms[idx], ok[idx] = _from_epoch_ms(part)
            else:
                ms[idx], ok[idx] = _from_epoch_s(part)
    ok &= (ms >= _MIN_TS_MS) & (ms < _MAX_TS_MS)
    ms[~ok] = 0
    return ms, ok


_RFC3339: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:[Zz]|([+-])(\d{2}):(\d{2}))",
    re.ASCII,
)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL: Final = _EPOCH.toordinal()
_ONE_MS: Final = timedelta(milliseconds=1)


def timestamp_ms(value: object) -> int | None:
    """One timestamp to epoch milliseconds, or None if not accepted: the row-by-row `parse_timestamps`.

    Written independently of the vectorised parser (regex and `datetime`) and used for small batches;
    the tests check that both agree.
    """
    if type(value) is str:
        match = _RFC3339.fullmatch(value)
        if match is None:
            return None
        year, month, day, hour, minute, second, frac, sign, off_hour, off_minute = match.groups()
        if int(hour) > 23 or int(minute) > 59 or int(second) > 59:
            return None
        try:
            days = date(int(year), int(month), int(day)).toordinal() - _EPOCH_ORDINAL
        except ValueError:  # no such day (or year 0, out of the window anyway)
            return None
        seconds = ((days * 24 + int(hour)) * 60 + int(minute)) * 60 + int(second)
        ms = seconds * 1000 + (int(frac[:3].ljust(3, "0")) if frac else 0)
        if sign:
            if int(off_hour) > 23 or int(off_minute) > 59:
                return None
            offset = (int(off_hour) * 60 + int(off_minute)) * 60_000
            ms -= offset if sign == "+" else -offset
    elif type(value) is int:
        ms = value
    elif type(value) is float:
        if not 9e8 < value < 5e9:
            return None
        ms = (datetime.fromtimestamp(value, UTC) - _EPOCH) // _ONE_MS
    else:
        return None
    return ms if _MIN_TS_MS <= ms < _MAX_TS_MS else None


def _from_epoch_ms(values: list[int]) -> tuple[_I64, _Bools]:
    ms = _int64_column(values)
    return ms, np.ones(len(ms), np.bool_)


def _from_epoch_s(values: list[float]) -> tuple[_I64, _Bools]:
    """Epoch seconds -> ms, rounding to the microsecond like CPython's datetime.fromtimestamp, then flooring.

    CPython splits with modf, rounds the fraction * 1e6 half to even and carries; np.rint is half to
    even too, so the two agree bit for bit.
    """
    s = np.array(values, dtype=np.float64)
    ok = (s > 9e8) & (s < 5e9)  # loose window (NaN and inf fail it); the exact one is applied later
    s = np.where(ok, s, 0.0)
    whole = np.trunc(s)
    us = np.rint((s - whole) * 1e6)
    carry = us >= 1e6
    whole += carry
    us -= carry * 1e6
    return whole.astype(np.int64) * 1000 + us.astype(np.int64) // 1000, ok


def _parse_rfc3339(values: list[str]) -> tuple[_I64, _Bools]:
    """Parse RFC 3339 strings in bulk (see module docstring). `ms` is unchecked against the window."""
    n = len(values)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.bool_)
    # True lengths matter: numpy would silently truncate longer strings and drop trailing NULs.
    lengths = np.fromiter(map(len, values), np.intp, n)
    lo, hi = int(lengths.min()), int(lengths.max())
    if lo == hi <= _TS_WIDTH:
        # The usual case, one length: the joined ASCII bytes already are the row-major char matrix.
        try:
            joined = "".join(values).encode("ascii")
        except UnicodeEncodeError:
            pass
        else:
            m = np.frombuffer(joined, np.uint8).reshape(n, lo)
            last = m[:, lo - 1] if lo else np.zeros(n, np.uint8)
            zulu = _IS_ZULU[last]
            if bool(zulu.all()) or not zulu.any():
                return _parse_layout(m, _LAYOUTS[lo, bool(zulu[0])])
    if hi > _TS_WIDTH:
        values = [v if len(v) <= _TS_WIDTH else "" for v in values]
        lengths[lengths > _TS_WIDTH] = 0
    try:
        chars = np.array(values, dtype=f"S{_TS_WIDTH}")
    except UnicodeEncodeError:  # a non-ASCII string cannot be RFC 3339
        is_ascii = np.fromiter((v.isascii() for v in values), np.bool_, n)
        values = [v if v.isascii() else "" for v in values]
        lengths[~is_ascii] = 0
        chars = np.array(values, dtype=f"S{_TS_WIDTH}")
    m = chars.view(np.uint8).reshape(n, _TS_WIDTH)
    # Group rows by (length, ends in Z): within a group every field sits at a fixed column.
    zulu = _IS_ZULU[m[np.arange(n), np.maximum(lengths - 1, 0)]]
    key = lengths * 2 + zulu
    ms = np.zeros(n, np.int64)
    ok = np.zeros(n, np.bool_)
    for k in np.flatnonzero(np.bincount(key)).tolist():
        rows = np.flatnonzero(key == k)
        ms[rows], ok[rows] = _parse_layout(m[rows], _LAYOUTS[k // 2, bool(k % 2)])
    return ms, ok


def _parse_layout(m: npt.NDArray[np.uint8], layout: _Layout | None) -> tuple[_I64, _Bools]:
    """Parse the rows of char matrix `m` (at least `layout.length` wide), all laid out as `layout`."""
    n = m.shape[0]
    if layout is None:
        return np.zeros(n, np.int64), np.zeros(n, np.bool_)
    rel = m[:, : layout.length] - layout.lo  # digit columns: the digit's value
    # Count out-of-bounds chars per row with a matmul: numpy's row reductions (.all(axis=1)) cost about
    # 10 ns a row whatever the width, a float32 matmul a third of that.
    ok = (rel > layout.span).astype(np.float32) @ _ONES[: layout.length] == 0
    ok &= _IS_DATE_TIME_SEP[m[:, 10]]
    zone = m[:, layout.tz]
    ok &= (_IS_ZULU if layout.zulu else _IS_SIGN)[zone]
    pairs = rel[:, layout.first] * np.uint8(10) + rel[:, layout.second]  # wraps harmlessly on garbage
    for hour in layout.hours:
        ok &= pairs[:, hour] <= 23
    year = pairs[:, 0].astype(np.intp) * 100 + pairs[:, 1]
    month = pairs[:, 2]
    day = pairs[:, 3].astype(np.int64)
    leap_month = _LEAP[year] * 256 + month
    ok &= (day >= 1) & (day <= _DAYS_IN_MONTH[leap_month])
    days = _YEAR_DAYS[year] + _DAYS_BEFORE_MONTH[leap_month] + day - 1
    # One small float matmul gives time of day and offset, exact: every value is far below 2**53.
    tod_off = (pairs.astype(np.float64) @ layout.weights).astype(np.int64)
    ms: _I64 = days * _DAY_MS + tod_off[:, 0]
    # Local time minus the offset is UTC ("+02:00" is two hours ahead); Z rows have a zero offset.
    ms -= _SIGN_OF[zone] * tod_off[:, 1]
    return ms, ok


_WordCheck = tuple[np.uint64, np.uint64, np.uint64, np.uint64]  # literal value, literal mask, <= 9, <= 5


@functools.cache
def _word_checks(length: int, zulu: bool) -> tuple[_WordCheck, ...]:
    """Per 8-byte word of an RFC 3339 string laid out as `_LAYOUTS[length, zulu]`: the literal chars
    (value and mask), and a 0x80 in each byte that must be a digit, or a digit up to 5."""
    layout = _LAYOUTS[length, zulu]
    assert layout is not None
    checks = []
    for k in range(-(-length // 8)):
        value = mask = digit = digit5 = 0
        for col in range(8 * k, min(8 * k + 8, length)):
            shift = 8 * (col % 8)
            lo, span = int(layout.lo[col]), int(layout.span[col])
            if span == 0:
                value |= lo << shift
                mask |= 0xFF << shift
            elif span == 9:
                digit |= 0x80 << shift
            elif span == 5:
                digit5 |= 0x80 << shift
        checks.append((np.uint64(value), np.uint64(mask), np.uint64(digit), np.uint64(digit5)))
    return tuple(checks)


def _parse_words(words: Sequence[_U64], layout: _Layout) -> tuple[_I64, _Bools]:
    """`_parse_layout` for strings given as little-endian 8-byte words (the fast path reads them so).

    The character classes are checked a word at a time (SWAR): XOR with "0" maps the digits, and only
    them, to 0-9; a byte's 0x80 bit in ``((x & 0x7F) + 0x76) | x`` is set exactly when it is >= 10.
    Pairs of digits are read the same way: in ``x * 10 + (x >> 8)`` byte j is 10 x[j] + x[j + 1].
    Rows that fail a check get garbage values (as in `_parse_layout`), always in the tables' bounds.
    """
    n = len(words[0])
    ok = np.ones(n, np.bool_)
    checks = _word_checks(layout.length, layout.zulu)
    lows = _word_lows(layout.length, layout.zulu)
    values: list[_U64] = []  # per word: each byte minus its class's low end (digit values)
    tens: list[_U64] = []  # per word: byte j is 10 * values[j] + values[j + 1]
    for w, (value, mask, digit, digit5), (lo, keep) in zip(words, checks, lows, strict=False):
        if mask:
            ok &= (w & mask) == value
        x = w ^ _C30
        low = x & _C7F
        if digit:
            ok &= (((low + _C76) | x) & digit) == 0
        if digit5:
            ok &= (((low + _C7A) | x) & digit5) == 0
        x = w ^ lo
        x &= keep  # the free-form columns ("T", zone) are 0: no carries into their neighbours' bytes
        values.append(x)
        t = x * np.uint64(10)
        t += x >> _U8
        tens.append(t)

    def byte(arrays: list[_U64], col: int) -> _U64:
        return (arrays[col // 8] >> np.uint64(8 * (col % 8))) & _BYTE_FF

    ok &= _IS_DATE_TIME_SEP.take(byte(list(words), 10).view(np.intp))
    zone = byte(list(words), layout.tz).view(np.intp)
    ok &= (_IS_ZULU if layout.zulu else _IS_SIGN).take(zone)
    pairs = [
        byte(tens, f)
        if s == f + 1 and f % 8 < 7
        else (byte(values, f) * np.uint64(10) + byte(values, s)) & _BYTE_FF
        for f, s in zip(layout.first.tolist(), layout.second.tolist(), strict=True)
    ]
    for hour in layout.hours:
        ok &= pairs[hour] <= 23
    year = (pairs[0] * np.uint64(100) + pairs[1]).view(np.intp)
    month = pairs[2].view(np.intp)
    day = pairs[3].view(np.int64)
    leap_month = _LEAP.take(year) * 256 + month
    ok &= (day >= 1) & (day <= _DAYS_IN_MONTH.take(leap_month))
    ms: _I64 = _YEAR_DAYS.take(year) + _DAYS_BEFORE_MONTH.take(leap_month) + day - 1
    ms *= _DAY_MS
    offset = np.zeros(n, np.int64)
    for pair, (to_day, to_offset) in zip(pairs, layout.weights.astype(np.int64).tolist(), strict=True):
        if to_day:
            ms += pair.view(np.int64) * np.int64(to_day)
        if to_offset:
            offset += pair.view(np.int64) * np.int64(to_offset)
    if not layout.zulu:
        ms -= _SIGN_OF.take(zone) * offset
    return ms, ok


@functools.cache
def _word_lows(length: int, zulu: bool) -> tuple[tuple[np.uint64, np.uint64], ...]:
    """Per 8-byte word of an RFC 3339 string laid out as `_LAYOUTS[length, zulu]`: each column's low
    end ("0" for digits, the char itself for literals), so that XOR gives digit values (and 0), and a
    mask of the columns that are digits or literals."""
    layout = _LAYOUTS[length, zulu]
    assert layout is not None
    out = []
    for k in range(-(-length // 8)):
        lo = keep = 0
        for col in range(8 * k, min(8 * k + 8, length)):
            lo |= int(layout.lo[col]) << (8 * (col % 8))
            if int(layout.span[col]) != 255:
                keep |= 0xFF << (8 * (col % 8))
        out.append((np.uint64(lo), np.uint64(keep)))
    return tuple(out)


# -- the byte-level fast path -------------------------------------------------------------------------------
#
# Most request logs are written by one encoder, so every line has the same shape:
#
#     {"ts": "…", "service": "…", "endpoint": "…", "customer": "…", "status": 200, "latency_ms": 12.5}
#
# (the keys of `DecodeOptions` in that order, with `json.dumps`'s or compact separators). For a big
# buffer `_ByteScanner` checks every line against that shape with numpy, on the raw bytes and without a
# Python object per line: 8-byte words are read from every line at once (rows in parallel), constant
# text is compared word by word, and each string value is scanned for its closing quote. A line passes
# only if it is exactly that shape, holds a valid event, and has nothing that needs a JSON decoder's
# judgement: no backslash, no byte above 127, no control character (but a CRLF terminator), labels of
# 1 to 128 bytes, a status of 100-599, a latency of at most 15 digits with at most one point. Such a
# line is valid JSON and means exactly what its bytes say, so its values are read from the bytes:
#
# * ts: `_parse_words`, the RFC 3339 parser of this module (`_parse_layout`) working on 8-byte words;
# * status: its three digits;
# * latency: its digits as an exact integer M (SWAR: 8 digits per 64-bit word), then M / 10**f with f
#   the digits after the point. M < 10**15 < 2**53 and 10**f are exact doubles, so the one IEEE division
#   is the correctly rounded value of the decimal, which is what msgspec (and `float`) return;
# * labels: vocabulary ids from `_LabelCache`, verified byte for byte.
#
# Any other line sends the 256 KiB piece holding it (the pieces `_decode_buffer` cuts) down the msgspec
# path. So a record's batch, its rejections, its dead letters and even the order in which labels enter
# the vocabularies are exactly what the msgspec path alone gives (tests/unit/ingest/test_fastpath.py).

# The scan costs ~0.35 ms per buffer whatever its size (a few hundred numpy calls), then ~0.23 us a
# line against msgspec's ~0.65: measured break-even about 140 KiB.
_FAST_MIN_BYTES: Final = 160 * 1024
_LABEL_WORDS: Final = 16  # labels of up to 16 * 8 bytes take the fast path
_MAX_LATENCY_CHARS: Final = 15  # digits and point: M < 10**15 < 2**53, exact as a double


def _low_bytes(k: int) -> int:
    """A mask of the first `k` (0-8) bytes of a little-endian 64-bit word."""
    return (1 << (8 * k)) - 1


def _each_byte(value: int) -> np.uint64:
    return np.uint64(value * 0x0101_0101_0101_0101)


_C01: Final = _each_byte(0x01)
_C22: Final = _each_byte(0x22)  # '"'
_C30: Final = _each_byte(0x30)  # XOR with "0" maps the digits to 0-9 and "." to 0x1E
_C1E: Final = _each_byte(0x1E)
_C76: Final = _each_byte(0x76)
_C7A: Final = _each_byte(0x7A)
_C7F: Final = _each_byte(0x7F)
_C80: Final = _each_byte(0x80)
_U1: Final = np.uint64(1)
_U7: Final = np.uint64(7)
_U8: Final = np.uint64(8)
_U16: Final = np.uint64(16)
_U32: Final = np.uint64(32)
_U56: Final = np.uint64(56)
_U63: Final = np.uint64(63)
_BYTE_FF: Final = np.uint64(0xFF)
_BYTE_INDEX: Final = np.uint64(0x0001_0203_0405_0607)  # ((1 << 8b) * this) >> 56 == b
_LANES8: Final = np.uint64(0x00FF_00FF_00FF_00FF)
_LANES16: Final = np.uint64(0x0000_FFFF_0000_FFFF)
_LANES32: Final = np.uint64(0x0000_0000_FFFF_FFFF)
_POW10_I64: Final = 10 ** np.arange(19, dtype=np.int64)
_POW10_F64: Final = _POW10_I64.astype(np.float64)

# [k, n]: mask of word k (bytes 8k .. 8k + 7) of an n-byte string.
_STRING_MASKS: Final = np.array([_low_bytes(k) for k in range(9)], np.uint64)[
    np.clip(np.arange(8 * _LABEL_WORDS + 9)[None, :] - 8 * np.arange(_LABEL_WORDS + 1)[:, None], 0, 8)
]
# [k, n]: mask of word k of the 16 bytes that end with a line's closing brace (column 15) for a latency
# of n chars (columns 15 - n .. 14).
_LATENCY_MASKS: Final = np.array(
    [
        [_low_bytes(8) & ~_low_bytes(min(15 - n, 8)) for n in range(_MAX_LATENCY_CHARS + 1)],
        [_low_bytes(7) & ~_low_bytes(max(7 - n, 0)) for n in range(_MAX_LATENCY_CHARS + 1)],
    ],
    dtype=np.uint64,
)
# Odd 64-bit multipliers of the label hash (any will do: the cache verifies every hit).
_HASH_MULS: Final = [
    np.uint64((0x9E37_79B9_7F4A_7C15 * (2 * k + 1)) & _low_bytes(8) | 1) for k in range(_LABEL_WORDS + 2)
]
_HASH_MIX: Final = np.uint64(0xBF58_476D_1CE4_E5B9)

_U64 = npt.NDArray[np.uint64]
_Ints = npt.NDArray[np.intp]


def _zero_bytes(x: _U64) -> _U64:
    """0x80 in each zero byte of `x`, 0 in the others (exact, no false positives)."""
    t = x & _C7F
    t += _C7F
    t |= x
    t |= _C7F
    np.invert(t, out=t)
    return t


def _first_zero_flags(x: _U64) -> _U64:
    """0x80 in the lowest zero byte of `x` (and maybe in bytes above it: borrows), 0 below it.

    The classic `(x - 0x01..) & ~x & 0x80..`: one op cheaper than `_zero_bytes`, and enough where only
    the first zero byte matters."""
    t = x - _C01
    t &= ~x
    t &= _C80
    return t


def _first_byte(z: _U64) -> _Ints:
    """Index (0-7) of the lowest byte with its 0x80 bit set in each word (0 when there is none)."""
    low = z & (~z + _U1)
    low >>= _U7
    low *= _BYTE_INDEX
    low >>= _U56
    return low.view(np.intp)


class _Run:
    """Consecutive 8-byte words read from a position per row: the k-th `next()` gives bytes pos + 8k ..
    pos + 8k + 7 of every row, combining two aligned words as ``(a >> 8r) | (b << (64 - 8r))`` for
    r = pos % 8 (the left shift in two steps, so that r = 0 shifts by 63 then 1: numpy's shifts by 64
    are undefined). Gathering from an unaligned view of the buffer is several times slower."""

    __slots__ = ("_follow", "_hi", "_index", "_lo", "_words")

    def __init__(self, words: _U64, pos: _Ints) -> None:
        self._words = words
        self._index = pos >> 3
        self._lo = ((pos & 7) << 3).view(np.uint64)
        self._hi = _U63 - self._lo
        self._follow = words.take(self._index)

    def next(self) -> _U64:
        self._index += 1
        follow = self._words.take(self._index)
        out = self._follow >> self._lo
        t = follow << self._hi
        t <<= _U1
        out |= t
        self._follow = follow
        return out


class _Literal:
    """Constant text: per 8-byte word, the expected value and a mask (None: every byte counts).

    (The small classes of the fast path are plain classes: a dataclass costs ~0.5 ms of start-up.)"""

    __slots__ = ("length", "words")

    def __init__(self, length: int, words: tuple[tuple[np.uint64, np.uint64 | None], ...]) -> None:
        self.length = length
        self.words = words

    @classmethod
    def of(cls, text: bytes, skip: range = range(0)) -> _Literal:
        """`text`, ignoring the bytes at the offsets in `skip` (they hold a value, checked elsewhere)."""
        words = []
        for off in range(0, len(text), 8):
            chunk = text[off : off + 8]
            care = bytes(0 if off + i in skip else 0xFF for i in range(len(chunk)))
            mask = int.from_bytes(care.ljust(8, b"\0"), "little")
            value = int.from_bytes(chunk.ljust(8, b"\0"), "little") & mask
            words.append((np.uint64(value), None if mask == _low_bytes(8) else np.uint64(mask)))
        return cls(len(text), tuple(words))

    def read(self, words: _U64, pos: _Ints) -> list[_U64]:
        run = _Run(words, pos)
        return [run.next() for _ in self.words]

    def check(self, read: list[_U64], ok: _Bools) -> None:
        """Clear `ok` where the words `read` at a row's position are not the text."""
        for w, (value, mask) in zip(read, self.words, strict=True):
            if mask is None:
                ok &= w == value
            else:
                ok &= (w & mask) == value


class _Template:
    """The constant text of a line of the expected shape, around and between its six values."""

    __slots__ = ("head", "seps", "status_at", "tail")

    def __init__(
        self, head: _Literal, seps: tuple[_Literal, _Literal, _Literal], tail: _Literal, status_at: int
    ) -> None:
        self.head = head  # line start to the ts value: {"ts": "
        self.seps = seps  # ts to service, service to endpoint, endpoint to customer
        self.tail = tail  # customer's closing quote to the latency, the three status digits skipped
        self.status_at = status_at  # offset of the status digits in `tail`

    @classmethod
    def of(cls, names: Sequence[str], colon: bytes, comma: bytes) -> _Template:
        keys = [b'"' + n.encode("ascii") + b'"' for n in names]
        status_at = len(b'"' + comma + keys[4] + colon)
        tail = b'"' + comma + keys[4] + colon + b"000" + comma + keys[5] + colon
        return cls(
            head=_Literal.of(b"{" + keys[0] + colon + b'"'),
            seps=(
                _Literal.of(b'"' + comma + keys[1] + colon + b'"'),
                _Literal.of(b'"' + comma + keys[2] + colon + b'"'),
                _Literal.of(b'"' + comma + keys[3] + colon + b'"'),
            ),
            tail=_Literal.of(tail, range(status_at, status_at + 3)),
            status_at=status_at,
        )


class _LabelCache:
    """Label bytes -> `Vocab` id for the fast path: an open-addressing hash table in numpy arrays.

    Only a cache: a hit is verified byte for byte (length and every word), a miss is resolved through the
    `Vocab` in Python, then cached. Hash collisions can cost time, never correctness.
    """

    __slots__ = (
        "_gen",
        "_hashes",
        "_ids",
        "_lengths",
        "_n",
        "_shift",
        "_slot_entry",
        "_slot_hash",
        "_words",
        "vocab",
    )

    def __init__(self, vocab: Vocab) -> None:
        self.vocab = vocab
        self._clear()

    def _clear(self) -> None:
        self._gen = self.vocab.generation
        self._n = 0
        self._words = np.zeros((_LABEL_WORDS + 1, 64), np.uint64)  # [k, entry]
        self._lengths = np.zeros(64, np.intp)
        self._ids = np.zeros(64, np.intp)
        self._hashes = np.zeros(64, np.uint64)
        self._resize(256)

    def _resize(self, slots: int) -> None:
        self._shift = 64 - (slots.bit_length() - 1)
        self._slot_entry = np.full(slots, -1, np.intp)
        self._slot_hash = np.zeros(slots, np.uint64)
        self._place(np.arange(self._n, dtype=np.intp))

    def _place(self, entries: _Ints) -> None:
        """Put entries in their slots (linear probing, all at once). An entry meeting a cached one with
        the same hash is left out: its label stays a miss, resolved by its bytes each time."""
        mask = len(self._slot_entry) - 1
        h = self._hashes[entries]
        slot = (h >> np.uint64(self._shift)).astype(np.intp)
        while len(entries):
            free = self._slot_entry[slot] < 0
            settled = ~free & (self._slot_hash[slot] == h)
            candidates = np.flatnonzero(free)
            if len(candidates):
                # Of the entries reaching the same free slot, the first takes it; the others probe on.
                _, first = np.unique(slot[candidates], return_index=True)
                won = candidates[first]
                self._slot_entry[slot[won]] = entries[won]
                self._slot_hash[slot[won]] = h[won]
                settled[won] = True
            slot = np.where(free, slot, (slot + 1) & mask)
            keep = ~settled
            entries, h, slot = entries[keep], h[keep], slot[keep]

    @staticmethod
    def hashes(words: list[_U64], lengths: _Ints) -> _U64:
        """The hash of each row's label, from its length and its words (zero past its end)."""
        h = lengths.astype(np.uint64)
        h *= _HASH_MULS[0]
        for k, w in enumerate(words):
            h += w * _HASH_MULS[k + 1]
        h ^= h >> _U32
        h *= _HASH_MIX
        return h

    def lookup(self, words: list[_U64], lengths: _Ints, h: _U64) -> _Ints:
        """Ids of the rows' labels, -1 where the label is not cached."""
        if self.vocab.generation != self._gen:
            self._clear()  # the vocabulary was reset: its ids changed meaning
        if self._n == 0:
            return np.full(len(h), -1, np.intp)
        slot = (h >> np.uint64(self._shift)).astype(np.intp)
        entry = self._slot_entry.take(slot)
        hit = self._slot_hash.take(slot) == h
        probing = np.flatnonzero((entry >= 0) & ~hit)
        mask = len(self._slot_entry) - 1
        while len(probing):  # linear probing, for the few rows whose slot holds another hash
            slot_p = (slot[probing] + 1) & mask
            slot[probing] = slot_p
            e_p = self._slot_entry[slot_p]
            h_p = self._slot_hash[slot_p] == h[probing]
            entry[probing] = e_p
            hit[probing] = h_p
            probing = probing[(e_p >= 0) & ~h_p]
        # An empty slot's entry is -1: take() reads the last entry there, and `hit & entry >= 0` drops it.
        hit &= entry >= 0
        hit &= self._lengths.take(entry) == lengths
        for k, w in enumerate(words):
            hit &= self._words[k].take(entry) == w
        ids: _Ints = np.where(hit, self._ids.take(entry), -1)
        return ids

    def add(self, h: _U64, words: list[_U64], lengths: _Ints, ids: _Ints) -> None:
        """Cache labels (their hashes, words and lengths as `hashes` saw them) as vocabulary `ids`."""
        n0, n1 = self._n, self._n + len(h)
        if n1 > len(self._ids):
            grow = max(n1, 2 * len(self._ids)) - len(self._ids)
            self._words = np.concatenate([self._words, np.zeros((len(self._words), grow), np.uint64)], axis=1)
            self._lengths = np.concatenate([self._lengths, np.zeros(grow, np.intp)])
            self._ids = np.concatenate([self._ids, np.zeros(grow, np.intp)])
            self._hashes = np.concatenate([self._hashes, np.zeros(grow, np.uint64)])
        for k, w in enumerate(words):
            self._words[k, n0:n1] = w
        self._lengths[n0:n1] = lengths
        self._ids[n0:n1] = ids
        self._hashes[n0:n1] = h
        self._n = n1
        slots = len(self._slot_entry)
        if n1 * 4 > slots:
            while n1 * 4 > slots:
                slots *= 2
            self._resize(slots)
        else:
            self._place(np.arange(n0, n1, dtype=np.intp))


class _LabelScan:
    """One label column of a scanned buffer: where each row's label sits, its words, hash and id."""

    __slots__ = ("cache", "hashes", "ids", "length", "start", "words")

    def __init__(
        self, cache: _LabelCache, start: _Ints, length: _Ints, words: list[_U64], hashes: _U64, ids: _Ints
    ) -> None:
        self.cache = cache
        self.start = start
        self.length = length
        self.words = words  # word k of every row's label, zero past its end
        self.hashes = hashes
        self.ids = ids  # -1 until resolved

    def resolve(self, buf: bytes, r0: int, r1: int) -> None:
        """Give ids to the labels of rows `r0:r1` the cache did not know, interning new ones in row order
        (first appearance, the order in which the msgspec path interns them)."""
        miss = np.flatnonzero(self.ids[r0:r1] < 0)
        if len(miss) == 0:
            return
        miss += r0
        cache, vocab = self.cache, self.cache.vocab
        # Group the misses by hash. If every row of a group has its group's bytes (checked exactly), a
        # group is one label. Otherwise (a hash collision) group them by their bytes, in Python.
        _, first, inverse = np.unique(self.hashes[miss], return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
        reps = miss[first]
        same = self.length[miss] == self.length[reps][inverse]
        for w in self.words:
            same &= w[miss] == w[reps][inverse]
        if not bool(same.all()):
            # Rows sharing a hash but not their bytes: keep each label's first row, by bytes.
            first_rows: dict[bytes, int] = {}
            for r, s, n in zip(
                miss.tolist(), self.start[miss].tolist(), self.length[miss].tolist(), strict=True
            ):
                first_rows.setdefault(buf[s : s + n], r)
            reps = np.array(list(first_rows.values()), np.intp)
            first = np.arange(len(reps))
        # Intern the new labels in order of first appearance, then cache them all at once.
        order = np.argsort(first)
        ids = np.empty(len(reps), np.intp)
        intern = vocab.intern
        ids[order] = [
            intern(buf[s : s + n].decode("ascii"))
            for s, n in zip(self.start[reps[order]].tolist(), self.length[reps[order]].tolist(), strict=True)
        ]
        cache.add(self.hashes[reps], [w[reps] for w in self.words], self.length[reps], ids)
        if bool(same.all()):
            self.ids[miss] = ids[inverse]
        else:
            by_label = {
                buf[s : s + n]: vid
                for s, n, vid in zip(
                    self.start[reps].tolist(), self.length[reps].tolist(), ids.tolist(), strict=True
                )
            }
            self.ids[miss] = [
                by_label[buf[s : s + n]]
                for s, n in zip(self.start[miss].tolist(), self.length[miss].tolist(), strict=True)
            ]


class _Scan:
    """What the fast path read from a buffer: per non-empty line (a "row"), its values and whether it
    passed."""

    __slots__ = ("labels", "latency_ms", "newlines", "ok", "starts", "status", "ts_ms")

    def __init__(
        self,
        newlines: _Ints,
        starts: _Ints,
        ok: _Bools,
        ts_ms: _I64,
        status: npt.NDArray[np.int32],
        latency_ms: npt.NDArray[np.float64],
        labels: tuple[_LabelScan, _LabelScan, _LabelScan],
    ) -> None:
        self.newlines = newlines  # positions of the buffer's "\n"
        self.starts = starts  # first byte of each row
        self.ok = ok  # the row has the expected shape and holds a valid event
        self.ts_ms = ts_ms
        self.status = status
        self.latency_ms = latency_ms
        self.labels = labels  # service, endpoint, customer

    def batch(self, r0: int, r1: int) -> EventBatch:
        """The events of rows `r0:r1` (all ok, labels resolved)."""
        service, endpoint, customer = self.labels
        return EventBatch(
            ts_ms=self.ts_ms[r0:r1],
            status=self.status[r0:r1],
            latency_ms=self.latency_ms[r0:r1],
            service=LabelColumn(service.ids[r0:r1], service.cache.vocab),
            endpoint=LabelColumn(endpoint.ids[r0:r1], endpoint.cache.vocab),
            customer=LabelColumn(customer.ids[r0:r1], customer.cache.vocab),
        )


class _ByteScanner:
    """The fast path: reads the lines of the expected shape straight from the bytes (see above)."""

    __slots__ = (
        "_caches",
        "_hits",
        "_latency_div",
        "_latency_mul",
        "_max_label",
        "_max_line",
        "_pad",
        "_scratch",
        "_templates",
        "_word_hits",
        "vocabs",
    )

    def __init__(self, options: DecodeOptions, vocabs: Vocabs, templates: tuple[_Template, ...]) -> None:
        self.vocabs = vocabs
        self._templates = templates
        self._caches = (
            _LabelCache(vocabs.service),
            _LabelCache(vocabs.endpoint),
            _LabelCache(vocabs.customer),
        )
        self._max_line = options.max_record_bytes
        self._max_label = min(options.max_label_length, 8 * _LABEL_WORDS)
        self._latency_mul = 1000.0 if options.latency_unit == "s" else 1.0
        self._latency_div = 1000.0 if options.latency_unit == "us" else 1.0
        # Zero bytes after a buffer's copy. Whatever a row holds, every read stays within them: a read
        # starts at most a template's constant text plus four values' maximum lengths past a row start.
        longest = max(t.head.length + sum(s.length for s in t.seps) + t.tail.length for t in templates)
        self._pad = 8 * (-(-(2 * (longest + _TS_WIDTH + 3 * 8 * (_LABEL_WORDS + 1) + 64)) // 8))
        self._scratch = np.zeros(0, np.uint8)
        self._hits = np.zeros(0, np.bool_)
        self._word_hits = np.zeros(0, np.bool_)

    @classmethod
    def create(cls, options: DecodeOptions, vocabs: Vocabs) -> _ByteScanner | None:
        """A scanner for `options`, or None when a field name would need JSON escapes."""
        names = options.field_names()
        plain = all(n.isascii() and n.isprintable() and '"' not in n and "\\" not in n for n in names)
        if not plain or not np.little_endian:
            return None
        return cls(options, vocabs, (_Template.of(names, b": ", b", "), _Template.of(names, b":", b",")))

    def _copy(self, buf: bytes) -> npt.NDArray[np.uint8]:
        """`buf` then zero bytes, 8-byte aligned, in scratch arrays reused from call to call."""
        need = -(-len(buf) // 8) * 8 + self._pad
        if len(self._scratch) < need:
            self._scratch = np.empty((need + need // 4) // 8 * 8, np.uint8)
            self._hits = np.empty(len(self._scratch), np.bool_)
            self._word_hits = np.empty(len(self._scratch) // 8, np.bool_)
        arr = self._scratch[:need]
        arr[: len(buf)] = np.frombuffer(buf, np.uint8)
        arr[len(buf) :] = 0
        return arr

    def _control_chars(self, arr: npt.NDArray[np.uint8], size: int) -> _Ints:
        """Positions of the bytes below 32 (mostly "\\n"), found word by word: numpy's nonzero over every
        byte of a large buffer costs more than the rest of the scan."""
        hits = self._hits[: len(arr)]
        np.less(arr, 32, out=hits)
        hits[size:] = False
        per_word = hits.view(np.uint64)
        word_hits = self._word_hits[: len(per_word)]
        np.not_equal(per_word, 0, out=word_hits)
        at = np.flatnonzero(word_hits)
        w = per_word.take(at)  # bytes are 0 or 1
        base = at << 3
        parts = []
        while True:
            low = w & (~w + _U1)
            parts.append(base + ((low * _BYTE_INDEX) >> _U56).view(np.intp))
            w ^= low
            more = np.flatnonzero(w != 0)
            if len(more) == 0:
                break
            w, base = w[more], base[more]
        return parts[0] if len(parts) == 1 else np.sort(np.concatenate(parts))

    def scan(self, buf: bytes) -> _Scan | None:
        """Read every row of `buf`; None if none has the expected shape (then it is all msgspec's)."""
        size = len(buf)
        arr = self._copy(buf)
        a = arr[:size]
        words: _U64 = arr.view(np.uint64)

        # Rows: the non-empty lines. A "\r" ending a line is its CRLF terminator; any other control char
        # fails its row (JSON forbids them in strings, and between tokens they are not the shape).
        ctrl = self._control_chars(arr, size)
        is_nl = a.take(ctrl) == 10
        all_nl = bool(is_nl.all())
        newlines = ctrl if all_nl else ctrl[is_nl]
        starts = np.empty(len(newlines) + 1, np.intp)
        starts[0] = 0
        starts[1:] = newlines + 1
        ends = np.empty_like(starts)
        ends[:-1] = newlines
        ends[-1] = size
        filled = ends > starts
        if not filled.all():
            starts, ends = starts[filled], ends[filled]
        if len(starts) == 0:
            return None
        ok = ends - starts <= self._max_line
        if not all_nl:
            odd = ctrl[~is_nl]
            rows = np.searchsorted(starts, odd, side="right") - 1
            crlf = (a[odd] == 13) & (odd == ends[rows] - 1)
            ok[rows[~crlf]] = False
            ends = ends - (a[ends - 1] == 13)
        # Escapes and non-ASCII text are msgspec's to judge.
        if b"\\" in buf:
            ok[np.searchsorted(starts, np.flatnonzero(a == 92), side="right") - 1] = False
        if not buf.isascii():
            ok[np.searchsorted(starts, np.flatnonzero(a >= 128), side="right") - 1] = False

        template = self._template(words, starts)
        if template is None:
            return None
        template.head.check(template.head.read(words, starts), ok)
        ts_at = starts + template.head.length
        ts_len, ts_ms = self._timestamps(buf, words, ts_at, ok)
        at = ts_at + ts_len
        labels = []
        for cache, sep in zip(self._caches, template.seps, strict=True):
            sep.check(sep.read(words, at), ok)
            at = at + sep.length
            label = self._label(cache, words, at, ok)
            labels.append(label)
            at = at + label.length
        tail = template.tail.read(words, at)
        template.tail.check(tail, ok)
        status = self._status(tail, template.status_at, ok)
        latency = self._latency(words, at + template.tail.length, ends - 1, ok)
        if not ok.any():
            return None
        service, endpoint, customer = labels
        return _Scan(newlines, starts, ok, ts_ms, status, latency, (service, endpoint, customer))

    def _template(self, words: _U64, starts: _Ints) -> _Template | None:
        """The first template whose head begins one of the first rows."""
        probe = starts[:8]
        for template in self._templates:
            ok = np.ones(len(probe), np.bool_)
            template.head.check(template.head.read(words, probe), ok)
            if ok.any():
                return template
        return None

    @staticmethod
    def _string(words: _U64, at: _Ints, ok: _Bools, limit: int) -> tuple[_Ints, list[_U64]]:
        """Length of the string value starting at `at` (up to the first quote: ok rows have no backslash),
        and its words, zero past its end. Rows with no quote in `limit` bytes fail."""
        run = _Run(words, at)
        length = np.zeros(len(at), np.intp)
        pending = ok.copy()
        out: list[_U64] = []
        for k in range(-(-(limit + 1) // 8)):
            x = run.next()
            out.append(x)
            quote = _first_zero_flags(x ^ _C22)
            hit = quote != 0
            hit &= pending
            if hit.any():
                found = _first_byte(quote)
                found += 8 * k
                np.copyto(length, found, where=hit)
                pending ^= hit
                if not pending.any():
                    break
        ok &= ~pending
        ok &= (length >= 1) & (length <= limit)
        np.multiply(length, ok, out=length)
        for k, x in enumerate(out):
            x &= _STRING_MASKS[k].take(length)
        return length, out

    def _label(self, cache: _LabelCache, words: _U64, at: _Ints, ok: _Bools) -> _LabelScan:
        length, label_words = self._string(words, at, ok, self._max_label)
        h = cache.hashes(label_words, length)
        return _LabelScan(cache, at, length, label_words, h, cache.lookup(label_words, length, h))

    def _timestamps(self, buf: bytes, words: _U64, at: _Ints, ok: _Bools) -> tuple[_Ints, _I64]:
        """Length and value of each row's ts string, parsed by `_parse_words` per string length."""
        n = len(at)
        ms = np.zeros(n, np.int64)
        parsed = np.zeros(n, np.bool_)
        # Guess the length from the first row that could be of the shape and parse every row's first
        # `guess` chars. A row whose string is longer fails the next literal (its opening quote is not
        # there); only rows whose first `guess` chars do not parse are scanned for their quote.
        first = int(at[int(np.argmax(ok))])
        guess = buf.find(b'"', first, first + _TS_WIDTH + 1) - first
        guess = guess if 0 < guess <= _TS_WIDTH else _TS_WIDTH
        run = _Run(words, at)
        self._parse_ts([run.next() for _ in range(-(-guess // 8))], guess, slice(None), ms, parsed)
        length = np.full(n, guess, np.intp)
        others = np.flatnonzero(ok & ~parsed)
        if len(others):
            other_len, other_words = self._string(words, at[others], ok[others], _TS_WIDTH)
            length[others] = other_len
            for width in np.unique(other_len[other_len > 0]).tolist():
                sel = np.flatnonzero(other_len == width)
                sub_words = [w[sel] for w in other_words[: -(-width // 8)]]
                self._parse_ts(sub_words, width, others[sel], ms, parsed)
        ok &= parsed
        ok &= (ms >= _MIN_TS_MS) & (ms < _MAX_TS_MS)
        return length, ms

    @staticmethod
    def _parse_ts(words: list[_U64], width: int, rows: _Ints | slice, ms: _I64, parsed: _Bools) -> None:
        """Parse `width`-char ts strings from their words into `ms[rows]` and `parsed[rows]`."""
        last = (words[(width - 1) // 8] >> np.uint64(8 * ((width - 1) % 8))) & _BYTE_FF
        zulu = _IS_ZULU.take(last.view(np.intp))
        for z in (True, False):
            layout = _LAYOUTS[width, z]
            sel = zulu if z else ~zulu
            if layout is None or not sel.any():
                continue
            if bool(sel.all()):
                part, part_ok = _parse_words(words, layout)
                ms[rows] = part
                parsed[rows] = part_ok
            else:
                idx = np.flatnonzero(sel)
                part, part_ok = _parse_words([w[idx] for w in words], layout)
                target = idx if isinstance(rows, slice) else rows[idx]
                ms[target] = part
                parsed[target] = part_ok

    @staticmethod
    def _status(tail: list[_U64], at: int, ok: _Bools) -> npt.NDArray[np.int32]:
        """The three status digits at offset `at` of the tail: 100-599, the only valid statuses (JSON
        integers have no leading zeros or signs)."""
        digits = []
        for i in range(at, at + 3):
            d = (tail[i // 8] >> np.uint64(8 * (i % 8))) & _BYTE_FF
            digits.append(d.astype(np.int32) - 48)
        hundreds, tens, ones = digits
        ok &= (hundreds >= 1) & (hundreds <= 5) & (tens >= 0) & (tens <= 9) & (ones >= 0) & (ones <= 9)
        status = hundreds * 100
        status += tens * 10
        status += ones
        return status

    def _latency(self, words: _U64, start: _Ints, brace: _Ints, ok: _Bools) -> npt.NDArray[np.float64]:
        """The latency number from `start` to the closing brace, in ms (see the notes above)."""
        n_chars = brace - start
        ok &= (n_chars >= 1) & (n_chars <= _MAX_LATENCY_CHARS)
        n_chars[~ok] = 1
        # Columns 0-15: the 16 bytes that end with the brace. The number fills columns 15 - n .. 14.
        run = _Run(words, np.maximum(brace - 15, 0))
        x0, x1 = run.next(), run.next()
        ok &= (x1 >> _U56) == 0x7D  # "}"
        x0 ^= _C30
        x0 &= _LATENCY_MASKS[0].take(n_chars)  # bytes before the number read as leading zeros
        x1 ^= _C30
        x1 &= _LATENCY_MASKS[1].take(n_chars)
        point0 = _zero_bytes(x0 ^ _C1E)  # 0x80 in each byte that was "."
        point1 = _zero_bytes(x1 ^ _C1E)
        ok &= ((((x0 & _C7F) + _C76) | x0) & _C80) == point0  # every byte >= 10 is a point ...
        ok &= ((((x1 & _C7F) + _C76) | x1) & _C80) == point1
        ok &= (((point0 >> _U7) + (point1 >> _U7)) * _C01 >> _U56) <= 1  # ... and there is one at most
        ok &= (point1 & np.uint64(0x80 << 48)) == 0  # not last
        col = 15 - n_chars
        lead = self._byte_at(x0, x1, col)
        ok &= lead != 0x1E  # not first
        second = self._byte_at(x0, x1, col + 1)
        ok &= (lead != 0) | (n_chars == 1) | (second == 0x1E)  # no leading zero but in "0" and "0.5"
        has_point = (point0 | point1) != 0
        frac = np.where(point0 != 0, 14 - _first_byte(point0), 6 - _first_byte(point1))
        frac[~has_point] = 0
        # The 16 columns as one integer (the point as a 0 digit): 8 digits per word, SWAR.
        x0 &= ~((point0 >> _U7) * _BYTE_FF)
        x1 &= ~((point1 >> _U7) * _BYTE_FF)
        halves = []
        for v in (x0, x1):
            v = (v * np.uint64(10) + (v >> _U8)) & _LANES8
            v = (v * np.uint64(100) + (v >> _U16)) & _LANES16
            v = (v * np.uint64(10_000) + (v >> _U32)) & _LANES32
            halves.append(v.view(np.int64))
        whole = halves[0] * 100_000_000
        whole += halves[1]
        whole //= 10  # column 15 (the brace) was a trailing 0
        # Take the point's 0 out. With f digits after it, whole = I * 10**(f + 1) + F for the digits I
        # before it and F after, and the mantissa I * 10**f + F is whole - 9 * 10**f * I. I is the
        # floor of a float division: whole < 2**53 and 10**k are exact, the quotient is correctly
        # rounded and its fraction (F / 10**(f + 1) < 0.1) stays far from the next integer. No point:
        # k = 16 makes I = 0.
        k = np.where(has_point, frac + 1, 16)
        before = np.floor(whole.astype(np.float64) / _POW10_F64.take(k)).astype(np.int64)
        mantissa = whole - before * _POW10_I64.take(k - 1) * 9
        latency = mantissa.astype(np.float64)
        latency /= _POW10_F64.take(frac)
        with np.errstate(over="ignore"):
            if self._latency_mul != 1.0:
                latency *= self._latency_mul
            if self._latency_div != 1.0:
                latency /= self._latency_div
        ok &= latency <= _MAX_LATENCY_MS
        return latency

    @staticmethod
    def _byte_at(x0: _U64, x1: _U64, col: _Ints) -> _U64:
        """Byte `col` (0-15) of the 16 bytes held by words x0 (0-7) and x1 (8-15)."""
        w = np.where(col < 8, x0, x1)
        w >>= ((col & 7) << 3).view(np.uint64)
        w &= _BYTE_FF
        return w
