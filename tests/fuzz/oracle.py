"""A reference decoder: slow, obvious, written from the README and the decoder's documented contract.

It shares no code with `sloguard.ingest.decode` (it parses with the stdlib `json` module and checks
timestamps with `datetime`), so the fuzz tests can hold the real decoder to it on input nobody tagged
by hand (random bytes, hypothesis' JSON-ish text). `expect(records)` gives, for a list of records, the
events a correct decoder produces, the reason of every rejected line and the dead-letter payloads, in
order.

The contract, line by line (a record is split on "\\n"; a line that is only spaces, tabs and "\\r" is
blank and ignored):

* longer than ``max_record_bytes`` (terminator "\\r" included): ``too_large``;
* not UTF-8: ``bad_encoding``;
* not exactly one JSON value (NaN/Infinity, lone surrogate escapes and control characters in strings
  are not JSON): ``malformed_json``; not an object: ``not_an_object``;
* a required field absent: ``missing_field``; a field of the wrong JSON type, in any of its occurrences
  when a key is repeated: ``bad_type``; then, on the last occurrence of each field: ``bad_timestamp``,
  ``bad_status`` (not 100-599), ``negative_latency``, ``bad_latency`` (over a day), ``empty_label``,
  ``label_too_long`` (in characters), the first that applies.

Where the contract leaves a choice (see `Verdict.reasons`), every allowed reason is listed.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from sloguard.core.model import Event
from sloguard.ingest.decode import (
    BAD_ENCODING,
    BAD_LATENCY,
    BAD_STATUS,
    BAD_TIMESTAMP,
    BAD_TYPE,
    DEFAULT_OPTIONS,
    EMPTY_LABEL,
    LABEL_TOO_LONG,
    MALFORMED_JSON,
    MISSING_FIELD,
    NEGATIVE_LATENCY,
    NOT_AN_OBJECT,
    REASONS,
    TOO_LARGE,
    DecodeOptions,
)

MIN_TS_MS: Final = 946_684_800_000  # 2000-01-01T00:00:00Z, included
MAX_TS_MS: Final = 4_102_444_800_000  # 2100-01-01T00:00:00Z, excluded
MAX_LATENCY_MS: Final = 86_400_000.0  # one day
JSON_WS: Final = b" \t\r"
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MS: Final = timedelta(milliseconds=1)
DIGITS: Final = frozenset("0123456789")
#: Deeper nesting is not JSON the decoder takes: its documented fixed limit (`decode.MAX_DEPTH`, 64 levels
#: counting the event object), so the verdict does not depend on the caller's stack.
MAX_DEPTH: Final = 64
#: Python (like msgspec) refuses to turn integer literals longer than this into an int.
INT_DIGITS_LIMIT: Final = 4300


class Pairs(list[tuple[str, Any]]):
    """A JSON object as the list of its (key, value) pairs, repeated keys included."""


@dataclass(frozen=True, slots=True)
class OutOfRange:
    """A number literal no double (or, past 4300 digits, no int) can hold, e.g. 1e400."""

    negative: bool
    integer: bool


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a correct decoder does with one non-blank line: one event, or a rejection.

    ``reasons`` is the set of acceptable reasons (one, unless the contract is ambiguous for that line);
    ``problems`` every reason that applies to the line, of which the contract picks the first in
    `REASONS` order.
    """

    event: Event | None = None
    reasons: frozenset[str] = frozenset()
    problems: frozenset[str] = frozenset()


def rejected(*reasons: str) -> Verdict:
    return Verdict(None, frozenset(reasons), frozenset(reasons))


def _parse_float(text: str) -> float | OutOfRange:
    value = float(text)
    if math.isinf(value):
        return OutOfRange(text.startswith("-"), integer=False)
    return value


def _parse_int(text: str) -> int | OutOfRange:
    digits = len(text.lstrip("-"))
    if digits > INT_DIGITS_LIMIT:
        return OutOfRange(text.startswith("-"), integer=True)
    return int(text)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def nesting_depth(text: str) -> int:
    """How deep arrays and objects nest in `text` (brackets inside strings do not count)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return 0  # cannot be deeper than the limit: skip the scan
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def parse_json(text: str) -> Any:
    """`text` as JSON, strictly: objects as `Pairs`; raises ValueError if not JSON.

    Nesting deeper than `MAX_DEPTH` is refused up front, as the decoder does.
    """
    if nesting_depth(text) > MAX_DEPTH:
        raise ValueError("nested too deep")
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 4 * MAX_DEPTH + 1000))
    try:
        value = json.loads(
            text,
            object_pairs_hook=Pairs,
            parse_float=_parse_float,
            parse_int=_parse_int,
            parse_constant=_no_constants,
        )
    finally:
        sys.setrecursionlimit(limit)
    _check_strings(value)
    return value


def _has_surrogate(s: str) -> bool:
    return not s.isascii() and any(0xD800 <= ord(ch) <= 0xDFFF for ch in s)


def _check_strings(value: Any) -> None:
    """JSON text must be Unicode: a lone surrogate escape ("\\ud800") is not a character."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if _has_surrogate(v):
                raise ValueError("lone surrogate")
        elif isinstance(v, Pairs):
            for k, item in v:
                if _has_surrogate(k):
                    raise ValueError("lone surrogate in a key")
                stack.append(item)
        elif isinstance(v, list):
            stack.extend(v)


def rfc3339_ms(text: str) -> int | None:
    """`YYYY-MM-DD(T|t| )HH:MM:SS[.F{1,9}](Z|z|±HH:MM)` to epoch ms (floored), None if not that."""
    if not text.isascii() or len(text) < 20:
        return None

    def number(a: int, b: int) -> int | None:
        part = text[a:b]
        return int(part) if part and set(part) <= DIGITS else None

    fields = [number(0, 4), number(5, 7), number(8, 10), number(11, 13), number(14, 16), number(17, 19)]
    if any(f is None for f in fields) or (text[4], text[7], text[13], text[16]) != ("-", "-", ":", ":"):
        return None
    if text[10] not in "Tt ":
        return None
    year, month, day, hour, minute, second = (f for f in fields if f is not None)
    rest = text[19:]
    frac = ""
    if rest.startswith("."):
        end = 1
        while end < len(rest) and rest[end] in DIGITS:
            end += 1
        frac, rest = rest[1:end], rest[end:]
        if not 1 <= len(frac) <= 9:
            return None
    if rest in ("Z", "z"):
        offset_min = 0
    elif len(rest) == 6 and rest[0] in "+-" and rest[3] == ":":
        oh = int(rest[1:3]) if set(rest[1:3]) <= DIGITS else None
        om = int(rest[4:6]) if set(rest[4:6]) <= DIGITS else None
        if oh is None or om is None or oh > 23 or om > 59:
            return None
        offset_min = (oh * 60 + om) * (1 if rest[0] == "+" else -1)
    else:
        return None
    if hour > 23 or minute > 59 or second > 59:
        return None
    try:
        days = (date(year, month, day) - date(1970, 1, 1)).days
    except ValueError:
        return None
    seconds = ((days * 24 + hour) * 60 + minute) * 60 + second - offset_min * 60
    return seconds * 1000 + (int(frac[:3].ljust(3, "0")) if frac else 0)


def timestamp_ms(value: Any) -> int | None:
    """The event time a `ts` value denotes, None if it is not an accepted timestamp."""
    if type(value) is str:
        ms = rfc3339_ms(value)
    elif type(value) is int:
        ms = value
    elif type(value) is float:
        if not math.isfinite(value):
            return None
        try:
            ms = (datetime.fromtimestamp(value, UTC) - EPOCH) // ONE_MS
        except (OverflowError, OSError, ValueError):
            return None
    else:
        return None
    return ms if ms is not None and MIN_TS_MS <= ms < MAX_TS_MS else None


# JSON types each field accepts (bool is not int: `type(v) is int` is used throughout).
_TYPES: Final = {
    "ts": (str, int, float),
    "service": (str,),
    "endpoint": (str,),
    "customer": (str, type(None)),
    "status": (int,),
    "latency": (int, float),
}
_ATTRS: Final = ("ts", "service", "endpoint", "customer", "status", "latency")


def _right_type(attr: str, v: Any) -> bool:
    if isinstance(v, OutOfRange):
        # A number literal: the right JSON type wherever a number is allowed, except a float literal
        # where an integer is wanted.
        return attr in ("ts", "latency") or (attr == "status" and v.integer)
    return type(v) in _TYPES[attr]


def _representable(attr: str, v: Any) -> bool:
    """Whether a right-typed value also fits what the decoder holds it in (a double for latency)."""
    if isinstance(v, OutOfRange):
        return False
    return not (attr == "latency" and type(v) is int and abs(v) > 1.7976931348623157e308)


class Oracle:
    """The reference decoder for one set of `DecodeOptions`."""

    def __init__(self, options: DecodeOptions = DEFAULT_OPTIONS) -> None:
        self.options = options
        self.names = dict(zip(_ATTRS, options.field_names(), strict=True))
        self.mul = {"ms": 1.0, "s": 1000.0, "us": 1.0}[options.latency_unit]
        self.div = {"ms": 1.0, "s": 1.0, "us": 1000.0}[options.latency_unit]

    def classify(self, line: bytes) -> Verdict | None:
        """The verdict on one line (no "\\n" in it); None if it is blank."""
        if not line.strip(JSON_WS):
            return None
        if len(line) > self.options.max_record_bytes:
            return rejected(TOO_LARGE)
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            return rejected(BAD_ENCODING)
        try:
            value = parse_json(text)
        except ValueError:
            return rejected(MALFORMED_JSON)
        if not isinstance(value, Pairs):
            return rejected(NOT_AN_OBJECT)
        return self._object(value)

    def _object(self, pairs: Pairs) -> Verdict:
        occurrences: dict[str, list[Any]] = {attr: [] for attr in _ATTRS}
        by_name = {name: attr for attr, name in self.names.items()}
        for key, v in pairs:
            attr = by_name.get(key)
            if attr is not None:
                occurrences[attr].append(v)
        opts = self.options
        problems: list[str] = []
        required = [a for a in _ATTRS if a != "customer" or opts.default_customer is None]
        if any(not occurrences[a] for a in required) or (
            opts.default_customer is None and occurrences["customer"][-1] is None
        ):
            problems.append(MISSING_FIELD)
        ambiguous = False
        usable: dict[str, Any] = {}  # the last value of each present, right-typed field
        for attr, values in occurrences.items():
            if not values:
                continue
            if not all(_right_type(attr, v) for v in values):
                problems.append(BAD_TYPE)
                continue
            # A repeated key whose earlier value the decoder cannot hold (e.g. "latency_ms": 1e400 before
            # "latency_ms": 5): "the last occurrence wins" and "every occurrence must have the right
            # type" pull apart; bad_type is fair.
            ambiguous |= not all(_representable(attr, v) for v in values[:-1])
            usable[attr] = values[-1]
        problems += self._values(usable)
        if not problems:
            if ambiguous:
                return rejected(BAD_TYPE)
            return Verdict(self._event(usable))
        first = min(problems, key=REASONS.index)
        reasons = {first, BAD_TYPE} if ambiguous else {first}
        return Verdict(None, frozenset(reasons), frozenset(problems) | reasons)

    def _values(self, last: dict[str, Any]) -> list[str]:
        """Every problem of the (right-typed) last values."""
        opts = self.options
        problems = []
        if "ts" in last:
            ts = last["ts"]
            if isinstance(ts, OutOfRange) or timestamp_ms(ts) is None:
                problems.append(BAD_TIMESTAMP)
        if "status" in last:
            status = last["status"]
            if isinstance(status, OutOfRange) or not 100 <= status <= 599:
                problems.append(BAD_STATUS)
        if "latency" in last:
            raw = last["latency"]
            if not _representable("latency", raw):
                negative = raw.negative if isinstance(raw, OutOfRange) else raw < 0
                problems.append(NEGATIVE_LATENCY if negative else BAD_LATENCY)
            else:
                latency = float(raw) * self.mul / self.div
                if latency < 0.0:
                    problems.append(NEGATIVE_LATENCY)
                elif not latency <= MAX_LATENCY_MS:
                    problems.append(BAD_LATENCY)
        labels = [last.get("service"), last.get("endpoint"), self._customer(last)]
        if any(v == "" for v in labels):
            problems.append(EMPTY_LABEL)
        if any(v is not None and len(v) > opts.max_label_length for v in labels):
            problems.append(LABEL_TOO_LONG)
        return problems

    def _customer(self, last: dict[str, Any]) -> str | None:
        customer = last.get("customer")
        if not customer and self.options.default_customer is not None:
            return self.options.default_customer
        return customer

    def _event(self, last: dict[str, Any]) -> Event:
        ts = timestamp_ms(last["ts"])
        customer = self._customer(last)
        assert ts is not None and customer is not None
        latency = float(last["latency"]) * self.mul / self.div
        return Event(ts, last["service"], last["endpoint"], customer, last["status"], latency)


@dataclass(frozen=True, slots=True)
class Expected:
    """What decoding `records` must give: events in order, one reason set per rejected line in order,
    and the dead-letter payload of each rejected line."""

    events: list[Event]
    reasons: list[frozenset[str]]
    problems: list[frozenset[str]]
    payloads: list[bytes]


def dead_letter_payloads(record: bytes) -> tuple[list[bytes], bool]:
    """The record's lines, and whether it has a single non-blank line (then its dead letter is the whole
    record); otherwise a line's dead letter is the line without its "\\r\\n" terminator's "\\r"."""
    lines = record.split(b"\n")
    single = sum(1 for x in lines if x.strip(JSON_WS)) == 1
    return lines, single


def expect(records: Sequence[bytes], oracle: Oracle | None = None) -> Expected:
    """The reference outcome of decoding `records` (as `Decoder.decode_many` does)."""
    oracle = oracle or Oracle()
    events: list[Event] = []
    reasons: list[frozenset[str]] = []
    problems: list[frozenset[str]] = []
    payloads: list[bytes] = []
    for record in records:
        lines, single = dead_letter_payloads(record)
        for line in lines:
            verdict = oracle.classify(line)
            if verdict is None:
                continue
            if verdict.event is not None:
                events.append(verdict.event)
                continue
            reasons.append(verdict.reasons)
            problems.append(verdict.problems)
            payloads.append(record if single else line[:-1] if line.endswith(b"\r") else line)
    return Expected(events, reasons, problems, payloads)
