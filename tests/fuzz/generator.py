"""A seeded generator of malformed and adversarial request-log records, each tagged with its outcome.

Every `Record` says what a correct decoder must do with it: the events it holds (exact values, in
order) and, per rejected line, the reason (from `REASONS`) and the dead-letter payload. Tags come from
construction: each line starts as a valid event and gets at most a couple of defects whose reason is
known (see `Fuzzer.line`). Free-form mutations (random bytes, bit flips of a valid line) cannot be
tagged by construction; those are tagged by the reference decoder in `tests.fuzz.oracle`, and the
fuzz tests check that the two taggers agree on everything they both tag.

Categories: invalid UTF-8, truncated JSON, wrong types, NaN/Infinity, huge numbers, negative and
absurd latencies, timestamps far in the past and future (and valid ones at the very edges of the
accepted range), deep nesting, very long strings and label values, control characters (raw: rejected;
escaped: valid labels that /metrics must escape), lines over the 1 MiB limit, repeated keys, escaped
key names, odd-but-valid JSON (any whitespace, escapes, exponents, -0), pretty-printed JSON, NDJSON
records mixing good, bad and blank lines with LF or CRLF, and a 10 MB message (`Fuzzer.big_record`).

Same seed, same records: a failure is reproduced with the seed and the record index the test prints.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from sloguard.core.model import Event
from sloguard.ingest.decode import (
    BAD_ENCODING,
    BAD_LATENCY,
    BAD_STATUS,
    BAD_TIMESTAMP,
    BAD_TYPE,
    EMPTY_LABEL,
    LABEL_TOO_LONG,
    MALFORMED_JSON,
    MISSING_FIELD,
    NEGATIVE_LATENCY,
    NOT_AN_OBJECT,
    REASONS,
    TOO_LARGE,
)
from tests.fuzz.oracle import MAX_DEPTH, MAX_TS_MS, MIN_TS_MS, Oracle, expect

__all__ = ["NASTY_LABELS", "NASTY_SERVICE", "NOW_MS", "SERVICES", "Fuzzer", "Line", "Record"]

DAY_MS: Final = 86_400_000
#: The wall clock the fuzz tests evaluate at: 2026-01-04T00:02:03.456Z.
NOW_MS: Final = 1_767_225_600_000 + 3 * DAY_MS + 123_456
MAX_LINE: Final = 1 << 20  # DecodeOptions().max_record_bytes
MAX_LABEL: Final = 256  # DecodeOptions().max_label_length
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

#: Label values that need escaping in JSON and in the exposition format, or are otherwise odd.
NASTY_LABELS: Final = (
    'dq"uote',
    "back\\slash",
    "trailing backslash\\",
    "new\nline",
    "cr\rlf\r\n",
    "tab\there",
    "nul\x00byte",
    "ctl\x01\x02\x1b\x1f\x7f",
    'all\\"\n\\n"',
    "\\n",
    "\\",
    '"',
    '{a="b",c="d"}',
    "# HELP x y",
    "ünïcødé ✓",
    "日本語のエンドポイント",
    "emoji 😀🎉👩‍👩‍👧",
    "e\u0301 combining",
    "zero\u200bwidth",
    "rtl \u202eevil",
    "line\u2028sep\u2029",
    "bom\ufeff",
    "nonchar \uffff \U0010ffff",
    "  spaces  ",
    " ",
    "=",
    "a,b",
    "__overflow__",
    "x" * 128,
    "y" * 129,
    "z" * MAX_LABEL,
    "é" * MAX_LABEL,
    "😀" * MAX_LABEL,
    "\\" * MAX_LABEL,
    '"' * MAX_LABEL,
)
#: A service name the exposition must escape (an SLO of the fuzz tests watches it).
NASTY_SERVICE: Final = 'nasty "svc"\\\n✓'
#: The service the fuzz SLOs watch, the nasty one, and others.
SERVICES: Final = ("checkout", "checkout", "checkout", NASTY_SERVICE, "search", "billing", *NASTY_LABELS)
PLAIN_ENDPOINTS: Final = ("GET /v1/cart", "POST /v1/orders", "POST /v1/checkout", "GET /healthz")
CUSTOMERS: Final = tuple(f"cust-{i:04d}" for i in range(200))
#: ASCII labels without escapes (the fast path reads them), at and around its limits.
PLAIN_LABELS: Final = (
    " ",
    "=",
    "a,b",
    "{a}",
    "# HELP x y",
    "__overflow__",
    "x" * 127,
    "x" * 128,
    "y" * 129,
    "z" * 256,
    "~",
)

# -- hand-picked tokens (JSON text) with their meaning ---------------------------------------------------

#: Valid latency literals and their value in ms (odd spellings of numbers, both ends of the range).
LATENCY_OK: Final = (
    "0",
    "-0",
    "0.0",
    "-0.0",
    "-1e-400",
    "5e-324",
    "1e-300",
    "0.5",
    "1E3",
    "1e+3",
    "0.1e1",
    "12.500000000000000000001",
    "0.30000000000000004",
    "86400000",
    "86400000.0",
    "8.64e7",
    "86399999.99999999",
    "123456789012.345e-6",
    "1" + "0" * 7,
)
LATENCY_NEGATIVE: Final = ("-0.001", "-1", "-5e-324", "-86400001", "-1e400", "-" + "9" * 400, "-1e308")
LATENCY_ABSURD: Final = (
    "86400000.001",
    "86400001",
    "1e9",
    "1e308",
    "1.7976931348623157e308",
    "1e400",
    "9" * 400,
    "9" * 5000,  # too long for an int: still a number, still over a day
    "123456789012345678901234567890",
)
STATUS_BAD: Final = (
    "0",
    "-0",
    "99",
    "600",
    "999",
    "1000",
    "-200",
    "2147483648",
    str(2**63),
    str(2**64),
    "1" * 30,
)
#: Valid in JSON, wrong type for the field.
WRONG_TYPES: Final = {
    "ts": (
        "true",
        "false",
        "null",
        "{}",
        "[]",
        '["2026-01-01T00:00:00Z"]',
        '{"$date": "2026-01-01T00:00:00Z"}',
    ),
    "service": ("5", "5.5", "null", "true", "[]", "{}", '["checkout"]', '{"name": "checkout"}'),
    "endpoint": ("0", "-1e400", "null", "false", '["/"]', "{}"),
    "customer": ("1", "1.5", "true", "[]", '{"id": 1}', "1e400"),
    "status": ('"200"', "200.0", "2e2", "1e400", "-1e400", "true", "null", "[200]", "199.5", "5E2"),
    "latency": ('"12"', '"12ms"', "true", "false", "null", "[]", "[1]", '{"ms": 1}'),
}
#: Right-typed ts values outside the accepted formats or range.
TS_BAD: Final = (
    '"1970-01-01T00:00:00Z"',
    '"1999-12-31T23:59:59.999Z"',
    '"1999-12-31T23:59:59.999999999+00:00"',
    '"2000-01-01T00:59:59.999+01:00"',
    '"0001-01-01T00:00:00Z"',
    '"0000-01-01T00:00:00Z"',
    '"2100-01-01T00:00:00Z"',
    '"2099-12-31T23:59:59-00:01"',
    '"9999-12-31T23:59:59.999999999Z"',
    '"2026-02-29T00:00:00Z"',
    '"2026-02-30T12:00:00Z"',
    '"2026-04-31T00:00:00Z"',
    '"2026-00-10T00:00:00Z"',
    '"2026-13-10T00:00:00Z"',
    '"2026-01-00T00:00:00Z"',
    '"2026-01-32T00:00:00Z"',
    '"2026-01-01T24:00:00Z"',
    '"2026-01-01T23:60:00Z"',
    '"2026-12-31T23:59:60Z"',
    '"2026-01-01T00:00:00+24:00"',
    '"2026-01-01T00:00:00+23:60"',
    '"2026-01-01T00:00:00"',
    '"2026-01-01T00:00:00+0100"',
    '"2026-01-01T00:00:00+01"',
    '"2026-01-01T00:00:00Z "',
    '" 2026-01-01T00:00:00Z"',
    '"2026-01-01T00:00:00.Z"',
    '"2026-01-01T00:00:00,5Z"',
    '"2026-01-01T00:00:00.1234567890Z"',
    '"2026-01-01T00:00Z"',
    '"2026-01-01"',
    '"00:00:00Z"',
    '"20260101T000000Z"',
    '"2026-W01-1T00:00:00Z"',
    '"2026-01-01X00:00:00Z"',
    '"\\uff12\\uff10\\uff12\\uff16-01-01T00:00:00Z"',
    '"\u0662\u0660\u0662\u0666-01-01T00:00:00Z"',
    '"2026-01-01T00:00:00Z\\u0000"',
    '"2026-01-01T00:00:00\\u005a"',  # "Z" escaped: the same string, but let the next tuple say it
    '""',
    '" "',
    '"yesterday"',
    '"1767225600123"',
    "0",
    "-1",
    "946684799999",
    "4102444800000",
    str(2**62),
    str(2**63),
    str(2**64),
    str(-(2**63)),
    "1" + "0" * 40,
    "9" * 5000,
    "1767225600",  # epoch seconds sent as an integer: 1970
    "1767225600123.0",  # epoch milliseconds sent as a float
    "5e8",
    "4102444800.0",
    "1e18",
    "1.7976931348623157e308",
    "5e-324",
    "-5e-324",
    "1e400",
    "-1e400",
)
# '"2026-01-01T00:00:00\\u005a"' above is in fact valid ("\u005a" is "Z"): keep it out of TS_BAD's use.
TS_BAD_CHECKED: Final = tuple(t for t in TS_BAD if "u005a" not in t)
#: Right-typed ts values at the very edges of the accepted range, with their epoch ms.
TS_EDGES: Final = (
    ('"2000-01-01T00:00:00Z"', MIN_TS_MS),
    ('"2000-01-01T00:00:00.000000000z"', MIN_TS_MS),
    ('"1999-12-31T23:00:00-01:00"', MIN_TS_MS),
    ('"2099-12-31T23:59:59.999Z"', MAX_TS_MS - 1),
    ('"2099-12-31T23:59:59.999999999Z"', MAX_TS_MS - 1),
    ('"2100-01-01T00:59:59.999+01:00"', MAX_TS_MS - 1),
    ('"2024-02-29T12:00:00Z"', 1_709_208_000_000),
    ('"2000-02-29T00:00:00Z"', 951_782_400_000),
    ('"2026-01-01T00:00:00\\u005a"', 1_767_225_600_000),
    ('"2026-01-01t00:00:00z"', 1_767_225_600_000),
    ('"2026-01-01 00:00:00-00:00"', 1_767_225_600_000),
    ('"2026-01-01T23:59:59+23:59"', 1_767_225_600_000 + 59_000),
    (str(MIN_TS_MS), MIN_TS_MS),
    (str(MAX_TS_MS - 1), MAX_TS_MS - 1),
    ("946684800.0", MIN_TS_MS),
    ("4102444799.999", MAX_TS_MS - 1),
    ("1.7672256001234e9", 1_767_225_600_123),
    ("17672256001234e-4", 1_767_225_600_123),
)
#: Whole lines that are valid JSON but not an object.
NOT_OBJECTS: Final = (
    "[]",
    "[{}]",
    "42",
    "-1.5e3",
    "1e400",
    "0",
    '"text"',
    '"{\\"ts\\": 1}"',
    "null",
    "true",
    "false",
    '[1, "a", null, {"b": []}]',
)
#: Number-like tokens that are not JSON numbers.
BAD_NUMBERS: Final = (
    "01",
    "00",
    "0200",
    "-01",
    ".5",
    "5.",
    "-.5",
    "1.5.5",
    "1..5",
    "0x1F",
    "1e",
    "1e+",
    "--1",
    "+1",
    "1_000",
    "2OO",
    "20 0",
    "1,5",
    "\u0661",
    "0.5e",
    "١٢",
    "\uff11\uff12",  # fullwidth digits
)
#: Lines that are not JSON (no invalid UTF-8, no raw newline).
NOT_JSON: Final = (
    "{",
    "}",
    "{}}",
    "{{}}",
    "{not json}",
    "{'ts': 1}",
    '{"a": 1,}',
    '{"a" 1}',
    '{"a": 1 "b": 2}',
    "{a: 1}",
    '{"a": 01}',
    '{"a": +1}',
    '{"a": .5}',
    '{"a": 5.}',
    '{"a": 1e}',
    '{"a": -}',
    '{"a": 0x1F}',
    '{"a": 1_000}',
    '{"a": NaN}',
    '{"a": Infinity}',
    '{"a": -Infinity}',
    '{"a": nan}',
    '{"a": True}',
    '{"a": None}',
    '{"a": undefined}',
    '{"a": "unterminated}',
    '{"a": "bad \\x escape"}',
    '{"a": "short \\u12 escape"}',
    '{"a": "\\ud800"}',
    '{"a": "\\udfff"}',
    '{"a": "\\ud800\\u0041"}',
    '{"a": "\\ude00\\ud83d"}',
    '{"\\ud800": 1}',
    '{"a": 1} /* comment */',
    "// comment",
    "[1, 2",
    '"unterminated',
    "\ufeff{}",
    "nul",
    "tru",
    "\x00",
    "\x0b{}",
    "{}\x0c",
    '{"a":\x00 1}',
)
#: Byte sequences that are not UTF-8.
BAD_UTF8: Final = (
    b"\xff",
    b"\xfe\xff",
    b"\xc3",
    b"\x80",
    b"\xc0\xaf",  # overlong "/"
    b"\xe0\x80\xaf",  # overlong
    b"\xed\xa0\x80",  # a UTF-16 surrogate encoded as UTF-8
    b"\xf4\x90\x80\x80",  # beyond U+10FFFF
    b"\xf0\x9f\x98",  # truncated emoji
    b"\xe9t\xe9",  # latin-1
)


@dataclass(frozen=True, slots=True)
class Line:
    """One line (no terminator) and what a correct decoder makes of it: an event, or a rejection
    under one of `reasons` (one reason unless the contract leaves a choice); neither when blank."""

    data: bytes
    event: Event | None = None
    reasons: frozenset[str] = frozenset()
    kind: str = ""
    #: Every problem the line was built with (a superset of `reasons`): the decoder must at least name
    #: one of them, whatever the precedence.
    problems: frozenset[str] = frozenset()

    @property
    def blank(self) -> bool:
        return self.event is None and not self.reasons


@dataclass(frozen=True, slots=True)
class Record:
    """One message and its tags: the events it holds, and per rejected line (in line order) the
    acceptable reasons and the dead-letter payload (the whole record when it has one non-blank line)."""

    data: bytes
    events: tuple[Event, ...]
    reasons: tuple[frozenset[str], ...]
    payloads: tuple[bytes, ...]
    kind: str
    problems: tuple[frozenset[str], ...] = ()  # per rejected line, all its problems (default: reasons)

    def __post_init__(self) -> None:
        if not self.problems:
            object.__setattr__(self, "problems", self.reasons)

    @property
    def valid(self) -> int:
        return len(self.events)

    @property
    def invalid(self) -> int:
        return len(self.reasons)

    @classmethod
    def of(cls, lines: list[Line], seps: list[bytes], tail: bytes, kind: str) -> Record:
        """`lines` joined by `seps` (one per gap: "\\n" or "\\r\\n"), then `tail` (empty, or starting
        with "\\n" and holding only blank lines)."""
        parts: list[bytes] = []
        for i, line in enumerate(lines):
            assert b"\n" not in line.data
            if i:
                parts.append(seps[i - 1])
            parts.append(line.data)
        parts.append(tail)
        data = b"".join(parts)
        # The dead-letter payload of a rejected line is the line as split from the record, less the "\r"
        # of a CRLF terminator; the whole record when it has a single non-blank line.
        pieces = [x for x in data.split(b"\n") if x.strip(b" \t\r")]
        nonblank = [x for x in lines if not x.blank]
        assert len(pieces) == len(nonblank)
        single = len(nonblank) == 1
        events = tuple(x.event for x in nonblank if x.event is not None)
        reasons = tuple(x.reasons for x in nonblank if x.event is None)
        problems = tuple(x.problems or x.reasons for x in nonblank if x.event is None)
        payloads = tuple(
            data if single else piece[:-1] if piece.endswith(b"\r") else piece
            for x, piece in zip(nonblank, pieces, strict=True)
            if x.event is None
        )
        return cls(data, events, reasons, payloads, kind, problems)


def _ms_to_local(ms: int, offset_min: int) -> tuple[str, str]:
    """Date and time of day (``YYYY-MM-DD``, ``HH:MM:SS``) of instant `ms` at UTC offset `offset_min`."""
    dt = EPOCH + timedelta(milliseconds=ms + offset_min * 60_000)
    return dt.strftime("%Y-%m-%d"), dt.strftime("%H:%M:%S")


def _year4(date_text: str) -> str:
    """strftime's year is not zero-padded everywhere: make it 4 digits."""
    year, rest = date_text.split("-", 1)
    return f"{int(year):04d}-{rest}"


@dataclass
class _Fields:
    """A line under construction: JSON text of each field's value (None: left out), extra pairs
    (unknown fields, repeated keys) and how to lay it out."""

    values: dict[str, str | None]
    before: list[tuple[str, str]] = field(default_factory=list)  # pairs written before the fields
    repeats: list[tuple[str, str]] = field(default_factory=list)  # (attr, value): earlier occurrences
    dropped: set[str] = field(default_factory=set)  # attrs left out, whatever their value
    after: list[tuple[str, str]] = field(default_factory=list)  # ... and after them
    keys: dict[str, str] = field(default_factory=dict)  # attr -> JSON text of its key, if not plain
    shuffle: bool = False
    compact: bool = False
    spaced: bool = False


ATTRS: Final = ("ts", "service", "endpoint", "customer", "status", "latency")
NAMES: Final = {"latency": "latency_ms"}
_EXTRA_KEYS: Final = (
    "x",
    "",
    "trace_id",
    "TS",
    "Service",
    "latency",
    "ts ",
    "\u0000",
    "k\\u0000",
    "😀",
    "a\\/b",
)


class Fuzzer:
    """Seeded source of tagged adversarial records (see the module docstring)."""

    def __init__(self, seed: int, now_ms: int = NOW_MS) -> None:
        self.seed = seed
        self.rnd = random.Random(seed)
        self.now_ms = now_ms
        self.oracle = Oracle()
        rnd = self.rnd
        self._defects: list[tuple[Callable[[_Fields], tuple[str, str]], int]] = [
            (self._missing, 3),
            (self._wrong_type, 5),
            (self._wrong_type_repeated, 2),
            (self._bad_timestamp, 6),
            (self._bad_status, 3),
            (self._negative_latency, 3),
            (self._absurd_latency, 3),
            (self._empty_label, 2),
            (self._long_label, 3),
        ]
        self._defect_fns = [f for f, _ in self._defects]
        self._defect_weights = [w for _, w in self._defects]
        # A stable pool of label values per dimension (unicode, escapes, odd text), plus fresh ones.
        self.endpoints = [*PLAIN_ENDPOINTS * 4, *NASTY_LABELS, *(f"GET /v1/items/{i}" for i in range(40))]
        self.customers = [*CUSTOMERS, *NASTY_LABELS]
        # Labels of random code points (no surrogates), 1 to 256 long: fresh series for the aggregator.
        self.random_labels = [
            "".join(
                chr(
                    rnd.choice(
                        (rnd.randint(1, 0x7F), rnd.randint(0xA0, 0xD7FF), rnd.randint(0xE000, 0x10FFFF))
                    )
                )
                for _ in range(rnd.choice((1, 2, 10, 100, 255, 256)))
            )
            for _ in range(2000)
        ]

    # -- records -------------------------------------------------------------------------------------

    def records(self, n: int) -> Iterator[Record]:
        for _ in range(n):
            yield self.record()

    def record(self) -> Record:
        r = self.rnd.random()
        if r < 0.55:
            return self._single()
        if r < 0.87:
            return self._ndjson(
                self.rnd.randint(2, 12) if self.rnd.random() < 0.9 else self.rnd.randint(13, 200)
            )
        if r < 0.89:
            return self._pretty()
        if r < 0.91:
            return self._blank()
        return self._mutant()

    def _terminator(self) -> bytes:
        return self.rnd.choice((b"", b"", b"", b"\n", b"\r\n", b"\n\n", b"\n \t\r\n", b"\n\r\n"))

    def _single(self) -> Record:
        line = self.line()
        lead = b"" if self.rnd.random() < 0.9 else self.rnd.choice((b"\n", b"\r\n", b" \n\n"))
        lines = [Line(lead.rstrip(b"\n"))] if lead else []
        seps = [b"\n"] if lead else []
        # A record of one non-blank line is dead-lettered whole, blank lines and all.
        return Record.of([*lines, line], seps, self._terminator(), "single")

    def _ndjson(self, n: int) -> Record:
        rnd = self.rnd
        lines: list[Line] = []
        seps: list[bytes] = []
        crlf = rnd.random() < 0.3
        for i in range(n):
            if i:
                seps.append(b"\r\n" if (crlf if rnd.random() < 0.9 else not crlf) else b"\n")
            if rnd.random() < 0.05:
                lines.append(Line(rnd.choice((b"", b" ", b"\t", b"  \t ", b"\r"))))
            else:
                lines.append(self.line())
        tail = rnd.choice((b"", b"\n", b"\r\n"))
        return Record.of(lines, seps, tail, "ndjson")

    def _pretty(self) -> Record:
        """A pretty-printed event: not NDJSON, so every line of it is rejected on its own."""
        event = {"ts": "2026-01-01T00:00:00Z", "service": "checkout", "endpoint": "GET /", "status": 200}
        event["latency_ms"] = 1.5
        indent = self.rnd.choice((0, 1, 2, 4, "\t"))
        text = json.dumps(event, indent=indent).encode()
        malformed = frozenset({MALFORMED_JSON})
        lines = [Line(x, None, malformed, "pretty", malformed) for x in text.split(b"\n")]
        return Record.of(lines, [b"\n"] * (len(lines) - 1), b"", "pretty")

    def _blank(self) -> Record:
        data = self.rnd.choice((b"", b"\n", b"\r\n", b" ", b"\t\r\n \n", b"\n" * 50))
        return Record(data, (), (), (), "blank")

    def _mutant(self) -> Record:
        """Free-form input, tagged by the reference decoder: random bytes, or a valid line damaged."""
        rnd = self.rnd
        r = rnd.random()
        if r < 0.3:
            data = rnd.randbytes(rnd.randint(0, 200))
        elif r < 0.5:
            data = "".join(
                chr(rnd.choice((rnd.randint(0, 0x7F), rnd.randint(0, 0x2FFF)))) for _ in range(60)
            ).encode("utf-8", "surrogatepass")
        else:
            base = bytearray(self.valid_line().data)
            for _ in range(rnd.randint(1, 4)):
                op = rnd.random()
                i = rnd.randrange(len(base) + 1)
                if op < 0.4 and i < len(base):
                    base[i] ^= 1 << rnd.randrange(8)
                elif op < 0.7 and i < len(base):
                    del base[i]
                else:
                    base[i:i] = bytes([rnd.choice(b'{}[]":,\\0123456789.eE-+ \t\r\x00\x7f\xc3\xa9\xff')])
            data = bytes(base)
        return self.tag(data, "mutant")

    def tag(self, data: bytes, kind: str) -> Record:
        """A record tagged by the reference decoder (for input built without knowing its outcome)."""
        exp = expect([data], self.oracle)
        return Record(
            data, tuple(exp.events), tuple(exp.reasons), tuple(exp.payloads), kind, tuple(exp.problems)
        )

    def big_record(self, size: int = 10_000_000, too_large: bool = True) -> Record:
        """An NDJSON message of about `size` bytes: mostly good lines, some bad ones, and (`too_large`) a
        few lines over 1 MiB."""
        lines: list[Line] = []
        total = 0
        while total < size:
            r = self.rnd.random()
            if r < 0.0004 and too_large:
                line = self.too_large_line()
            elif r < 0.7:
                line = self.valid_line(plain=self.rnd.random() < 0.8)
            else:
                line = self.line()
                while not too_large and len(line.data) > MAX_LINE:
                    line = self.line()
            lines.append(line)
            total += len(line.data) + 1
        return Record.of(lines, [b"\n"] * (len(lines) - 1), b"\n", "big")

    def huge_line_record(self, size: int = 10_000_000) -> Record:
        """One line of `size` bytes: a valid event but for a giant unknown field (too_large)."""
        head = self.valid_line(plain=True).data[:-1]
        pad = size - len(head) - 10
        data = head + b', "pad": "' + b"p" * pad + b'"}'
        return Record(data, (), (frozenset({TOO_LARGE}),), (data,), "huge-line")

    # -- lines ---------------------------------------------------------------------------------------

    def line(self) -> Line:
        """A line: about half valid, half with one or two defects of known reason."""
        r = self.rnd.random()
        if r < 0.5:
            return self.valid_line()
        if r < 0.62:
            return self.byte_defect_line()
        if r < 0.66:
            return self.whole_line_defect()
        if r < 0.99995:
            return self.field_defect_line()
        return self.too_large_line()

    def _base(self, plain: bool = False) -> tuple[_Fields, Event]:
        """A valid event: its fields as JSON text, and the event the decoder must produce."""
        rnd = self.rnd
        ts_text, ts_ms = self._ts()
        service = rnd.choice(SERVICES) if not plain else rnd.choice(("checkout", "checkout", "search"))
        endpoint = self._label(self.endpoints, plain)
        cust_mode = rnd.random() if not plain else 1.0
        customer_value: str | None
        if plain and rnd.random() < 0.02:
            customer_text, customer_value = '""', "unknown"  # the fast path's shape, but an empty string
        elif cust_mode < 0.03:
            customer_text, customer_value = None, "unknown"
        elif cust_mode < 0.06:
            customer_text, customer_value = "null", "unknown"
        elif cust_mode < 0.08:
            customer_text, customer_value = '""', "unknown"
        else:
            customer_value = self._label(self.customers, plain)
            customer_text = self._json_string(customer_value, plain)
        status = rnd.choice((200, 200, 200, 201, 204, 301, 404, 429, 500, 502, 503, rnd.randint(100, 599)))
        latency_text, latency = self._latency(plain)
        values: dict[str, str | None] = {
            "ts": ts_text,
            "service": self._json_string(service, plain),
            "endpoint": self._json_string(endpoint, plain),
            "customer": customer_text,
            "status": str(status),
            "latency": latency_text,
        }
        f = _Fields(values)
        assert customer_value is not None
        if not plain:
            self._decorate(f)
        return f, Event(ts_ms, service, endpoint, customer_value, status, latency)

    def _decorate(self, f: _Fields) -> None:
        """Odd-but-valid layout: shuffled keys, whitespace, escaped key names, unknown fields (deep,
        huge numbers, escapes), repeated keys whose earlier values are right-typed but otherwise bad."""
        rnd = self.rnd
        f.shuffle = rnd.random() < 0.3
        f.compact = rnd.random() < 0.3
        f.spaced = rnd.random() < 0.15
        if rnd.random() < 0.05:
            attr = rnd.choice(ATTRS)
            name = NAMES.get(attr, attr)
            f.keys[attr] = '"' + "".join(f"\\u{ord(c):04x}" if rnd.random() < 0.5 else c for c in name) + '"'
        if rnd.random() < 0.2:
            for _ in range(rnd.randint(1, 3)):
                pair = (json.dumps(rnd.choice(_EXTRA_KEYS)), self._junk_value())
                (f.before if rnd.random() < 0.5 else f.after).append(pair)
        if rnd.random() < 0.05:
            # A repeated key: the earlier value has the right type (its value does not matter).
            attr = rnd.choice([a for a, v in f.values.items() if v is not None])
            earlier = {
                "ts": ('"garbage"', "0", "1e18", str(2**70)),
                "service": ('""', json.dumps("s" * 300), '"x"'),
                "endpoint": ('""', json.dumps("é" * 1000)),
                "customer": ("null", '""', json.dumps("c" * 257)),
                "status": ("99", "-1", str(2**64)),
                "latency": ("-5", "1e300", "86400001", "0"),
            }[attr]
            f.repeats.append((attr, rnd.choice(earlier)))

    def _junk_value(self) -> str:
        """An unknown field's value: anything valid, however odd (huge numbers are fine there)."""
        rnd = self.rnd
        r = rnd.random()
        if r < 0.15:
            # Valid: the event object is level 1 and mutants may wrap it in a few more levels.
            depth = rnd.randint(1, MAX_DEPTH - 4)
            return "[" * depth + "]" * depth if rnd.random() < 0.5 else '{"a":' * depth + "1" + "}" * depth
        return rnd.choice(
            (
                "null",
                "true",
                "1e400",
                "-1e400",
                "9" * 5000,
                "-0",
                "123456789012345678901234567890",
                '"\\u0000\\n\\t\\"\\\\\\/\\b\\f\\r\\ud83d\\ude00"',
                json.dumps("long " * 200),
                '{"nested": {"ts": true, "service": 5, "status": "x"}}',
                '[{"latency_ms": -1}, [], {}]',
                json.dumps("日本語", ensure_ascii=False),
                json.dumps(NASTY_LABELS[rnd.randrange(len(NASTY_LABELS))]),
            )
        )

    def _key(self, f: _Fields, attr: str) -> str:
        return f.keys.get(attr) or '"' + NAMES.get(attr, attr) + '"'

    def _label(self, pool: list[str], plain: bool) -> str:
        rnd = self.rnd
        if plain:
            return rnd.choice(PLAIN_LABELS) if rnd.random() < 0.2 else rnd.choice(pool[:16])
        r = rnd.random()
        if r < 0.03:
            return rnd.choice(self.random_labels)
        return rnd.choice(pool)

    def _json_string(self, value: str, plain: bool) -> str:
        """`value` as a JSON string, in one of several valid spellings."""
        rnd = self.rnd
        r = rnd.random()
        if plain or r < 0.6:
            return json.dumps(value)
        if r < 0.9:
            return json.dumps(value, ensure_ascii=False)
        # Escape characters at random, "/" as "\/", astral characters as surrogate pairs.
        out = ['"']
        for ch in value:
            o = ord(ch)
            if ch in '"\\' or o < 0x20 or rnd.random() < 0.3:
                if o > 0xFFFF:
                    o -= 0x10000
                    out.append(f"\\u{0xD800 + (o >> 10):04X}\\u{0xDC00 + (o & 0x3FF):04x}")
                elif ch == "/":
                    out.append("\\/")
                else:
                    out.append(f"\\u{o:04x}" if rnd.random() < 0.5 else json.dumps(ch)[1:-1])
            else:
                out.append(ch)
        out.append('"')
        return "".join(out)

    def _ts(self) -> tuple[str, int]:
        """A valid ts (JSON text) and its epoch ms: mostly the last two days, some far back, a few in
        the future (up to 2099) and at the edges of the accepted range."""
        rnd = self.rnd
        r = rnd.random()
        if r < 0.01:
            return rnd.choice(TS_EDGES)
        if r < 0.9:
            ms = self.now_ms - rnd.randrange(2 * DAY_MS)
        elif r < 0.97:
            ms = rnd.randrange(MIN_TS_MS, self.now_ms)
        else:
            ms = rnd.randrange(self.now_ms, MAX_TS_MS)
        kind = rnd.random()
        if kind < 0.15:
            return str(ms), ms
        if kind < 0.2:
            seconds = ms / 1000 + rnd.random() / 1000
            return repr(seconds), (datetime.fromtimestamp(seconds, UTC) - EPOCH) // timedelta(milliseconds=1)
        digits = rnd.choice((0, 0, 3, 3, 3, 1, 2, 4, 5, 6, 7, 8, 9))
        if digits < 3:
            ms -= ms % 10 ** (3 - digits)
        frac = f"{ms % 1000:03d}"[:digits] + "".join(rnd.choice("0123456789") for _ in range(digits - 3))
        zone = rnd.random()
        if zone < 0.5:
            offset, suffix = 0, rnd.choice("ZZZz")
        else:
            offset = rnd.randint(-(23 * 60 + 59), 23 * 60 + 59) if zone < 0.9 else 0
            sign = "-" if offset < 0 or (offset == 0 and rnd.random() < 0.5) else "+"
            suffix = f"{sign}{abs(offset) // 60:02d}:{abs(offset) % 60:02d}"
        day, tod = _ms_to_local(ms, offset)
        text = _year4(day) + rnd.choice("TTTt ") + tod + ("." + frac if digits else "") + suffix
        return json.dumps(text), ms

    def _latency(self, plain: bool) -> tuple[str, float]:
        rnd = self.rnd
        r = rnd.random()
        if r < 0.6:
            value = round(rnd.lognormvariate(4.0, 1.5), rnd.choice((0, 1, 3, 6)))
            text = repr(value) if rnd.random() < 0.8 else str(int(value))
        elif r < 0.9:
            text = str(rnd.randint(0, 5000))
        else:
            text = rnd.choice(LATENCY_OK)
        return text, float(text)

    def _render(self, f: _Fields) -> bytes:
        rnd = self.rnd
        pairs = [(self._key(f, a), v) for a, v in f.values.items() if v is not None and a not in f.dropped]
        if f.shuffle:
            rnd.shuffle(pairs)
        repeats = [(self._key(f, a), v) for a, v in f.repeats if a not in f.dropped]
        pairs = [*f.before, *repeats, *pairs, *f.after]
        if f.spaced:
            ws = (" ", "\t", "\r", "  ", "")

            def w() -> str:
                return rnd.choice(ws)

            body = ",".join(f"{w()}{k}{w()}:{w()}{v}{w()}" for k, v in pairs)
            text = f"{w()}{{{body}}}{w()}"
        elif f.compact:
            text = "{" + ",".join(f"{k}:{v}" for k, v in pairs) + "}"
        else:
            text = "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}"
        return text.encode("utf-8")

    def valid_line(self, plain: bool | None = None) -> Line:
        """A valid event; `plain`: in the writer's usual shape (the decoder's byte-level fast path);
        None: 40 % of the time."""
        f, event = self._base(self.rnd.random() < 0.4 if plain is None else plain)
        return Line(self._render(f), event, kind="valid")

    # Field defects: each edits one field and returns (what it edited, the reason). A later defect on the
    # same field replaces an earlier one; a missing field also drops that field's repeated keys.

    def _missing(self, f: _Fields) -> tuple[str, str]:
        attr = self.rnd.choice(("ts", "service", "endpoint", "status", "latency"))
        if self.rnd.random() < 0.3:
            f.keys[attr] = json.dumps(
                self.rnd.choice((attr.upper(), attr + " ", attr.title() + "_", "_" + attr))
            )
        else:
            f.dropped.add(attr)
        return attr, MISSING_FIELD

    def _wrong_type(self, f: _Fields) -> tuple[str, str]:
        attr = self.rnd.choice(ATTRS)
        f.values[attr] = self.rnd.choice(WRONG_TYPES[attr])
        return attr, BAD_TYPE

    def _wrong_type_repeated(self, f: _Fields) -> tuple[str, str]:
        """The key repeated, the earlier value of the wrong type: the last value alone is fine."""
        attr = self.rnd.choice(ATTRS)
        bad = self.rnd.choice([t for t in WRONG_TYPES[attr] if "e400" not in t])
        f.repeats.append((attr, bad))
        return "repeat:" + attr, BAD_TYPE

    def _bad_timestamp(self, f: _Fields) -> tuple[str, str]:
        f.values["ts"] = self.rnd.choice(TS_BAD_CHECKED)
        return "ts", BAD_TIMESTAMP

    def _bad_status(self, f: _Fields) -> tuple[str, str]:
        f.values["status"] = self.rnd.choice(STATUS_BAD)
        return "status", BAD_STATUS

    def _negative_latency(self, f: _Fields) -> tuple[str, str]:
        f.values["latency"] = self.rnd.choice(LATENCY_NEGATIVE)
        return "latency", NEGATIVE_LATENCY

    def _absurd_latency(self, f: _Fields) -> tuple[str, str]:
        f.values["latency"] = self.rnd.choice(LATENCY_ABSURD)
        return "latency", BAD_LATENCY

    def _empty_label(self, f: _Fields) -> tuple[str, str]:
        attr = self.rnd.choice(("service", "endpoint"))
        f.values[attr] = '""'
        return attr, EMPTY_LABEL

    def _long_label(self, f: _Fields) -> tuple[str, str]:
        rnd = self.rnd
        n = rnd.choice((MAX_LABEL + 1, MAX_LABEL + 1, 300, 1000)) if rnd.random() < 0.995 else 100_000
        value = rnd.choice(("x", "é", "😀", "\\", '"', "\n", "日")) * n
        attr = rnd.choice(("service", "endpoint", "customer"))
        f.values[attr] = self._json_string(value, plain=n > 1000)
        return attr, LABEL_TOO_LONG

    def field_defect_line(self) -> Line:
        """A valid event with one or two field defects: counted under the first in `REASONS` order."""
        f, _ = self._base(plain=self.rnd.random() < 0.5)  # plain: the fast path's shape, but for the defect
        edits: dict[str, str] = {}
        for _ in range(1 if self.rnd.random() < 0.8 else 2):
            edited, reason = self.rnd.choices(self._defect_fns, self._defect_weights)[0](f)
            attr = edited.removeprefix("repeat:")
            if edits.get(attr) == MISSING_FIELD:
                continue  # once missing, a field stays missing (its key is dropped or renamed)
            if reason == MISSING_FIELD:
                edits.pop("repeat:" + attr, None)
            edits[edited] = reason
        problems = frozenset(edits.values())
        return self._sized(self._render(f), min(problems, key=REASONS.index), "field", problems)

    def _sized(self, data: bytes, reason: str, kind: str, problems: frozenset[str] = frozenset()) -> Line:
        """A rejected line; over 1 MiB it is too_large whatever else is wrong with it."""
        if len(data) > MAX_LINE:
            reason, problems = TOO_LARGE, frozenset()
        return Line(data, None, frozenset({reason}), f"{kind}:{reason}", problems | {reason})

    def byte_defect_line(self) -> Line:
        """A line broken at the byte level: not UTF-8, not JSON, truncated, NaN, raw control chars, bad
        number literals."""
        rnd = self.rnd
        f, _ = self._base(plain=rnd.random() < 0.5)
        if rnd.random() < 0.3:
            # Field defects underneath do not matter: the line is not even JSON / UTF-8. (Fields stay
            # in, so that the edits below land in the line.)
            rnd.choices(self._defect_fns, self._defect_weights)[0](f)
            f.dropped.clear()
        data = self._render(f)
        r = rnd.random()
        if r < 0.3:
            bad = rnd.choice(BAD_UTF8)
            at = rnd.randrange(len(data) + 1)
            out = data[:at] + bad + data[at:]
            try:
                out.decode("utf-8")
            except UnicodeDecodeError:
                return self._sized(out, BAD_ENCODING, "bad-utf8")
            return self.byte_defect_line()  # (cannot happen with these bytes; kept for safety)
        if r < 0.5:
            # Truncated: cut before the closing brace (what follows it may be whitespace).
            end = data.rindex(b"}")
            out = data[: rnd.randrange(1, end + 1)]
            if not out.strip(b" \t\r"):
                return self.byte_defect_line()
            try:
                out.decode("utf-8")
            except UnicodeDecodeError:
                return self._sized(out, BAD_ENCODING, "truncated")
            return self._sized(out, MALFORMED_JSON, "truncated")
        if r < 0.6:
            attr = rnd.choice(("ts", "status", "latency", "latency"))
            f.values[attr] = rnd.choice(("NaN", "Infinity", "-Infinity", "nan", "inf", "-inf", "NULL"))
            return self._sized(self._render(f), MALFORMED_JSON, "nan")
        if r < 0.75:
            # A raw control character inside a string, or anywhere (tab and CR only inside a string:
            # elsewhere they are JSON whitespace).
            ch = chr(rnd.choice([c for c in range(32) if c not in (9, 10, 13)] + [9, 13]))
            strings = [a for a, v in f.values.items() if v is not None and v.startswith('"')]
            if strings and (ch in "\t\r" or rnd.random() < 0.5):
                attr = rnd.choice(strings)
                value = f.values[attr] or '""'
                at = rnd.randint(1, len(value) - 1)  # between the quotes (after a backslash too)
                f.values[attr] = value[:at] + ch + value[at:]
                return self._sized(self._render(f), MALFORMED_JSON, "control-char")
            if ch in "\t\r":
                return self.byte_defect_line()
            text = data.decode()
            at = rnd.randrange(len(text) + 1)
            return self._sized((text[:at] + ch + text[at:]).encode(), MALFORMED_JSON, "control-char")
        if r < 0.8:
            # Trailing garbage, or two objects on one line.
            tail = rnd.choice((b" x", b",", b"}", b" {}", b"{}", b" " + data, b"\x00", b" null"))
            return self._sized(data + tail, MALFORMED_JSON, "trailing")
        if r < 0.85:
            # A number JSON does not allow, where the fast path reads digits.
            attr = rnd.choice(("status", "latency", "latency"))
            f.values[attr] = rnd.choice(BAD_NUMBERS)
            return self._sized(self._render(f), MALFORMED_JSON, "bad-number")
        if r < 0.92:
            # Too deep: msgspec stops at the interpreter's recursion limit (1000, less the caller's stack;
            # hypothesis raises it by 2000 while it runs a test), so well past that.
            depth = rnd.choice((5_000, 8_000)) if rnd.random() < 0.99 else 100_000
            deep = "[" * depth + "]" * depth if rnd.random() < 0.8 else '{"a":' * depth + "1" + "}" * depth
            f.after.append(('"deep"', deep))
            return self._sized(self._render(f), MALFORMED_JSON, "deep")
        # A bad escape in some string value.
        attr = rnd.choice(("service", "endpoint", "ts"))
        escape = rnd.choice(
            (
                "\\x41",
                "\\u12",
                "\\U0041",
                "\\'",
                "\\ud800",
                "\\udfff",
                "\\ud83d\\u0041",
                "\\ude00\\ud83d",
                "\\",
            )
        )
        value = f.values[attr] or '""'
        f.values[attr] = value[:-1] + escape + '"'
        return self._sized(self._render(f), MALFORMED_JSON, "bad-escape")

    def whole_line_defect(self) -> Line:
        """Lines that are not an event at all: not JSON, or JSON but not an object."""
        rnd = self.rnd
        if rnd.random() < 0.5:
            return self._sized(rnd.choice(NOT_JSON).encode(), MALFORMED_JSON, "not-json")
        text = rnd.choice(NOT_OBJECTS)
        if rnd.random() < 0.2:
            text = "[" + self._render(self._base()[0]).decode() + "]"
        return self._sized(text.encode(), NOT_AN_OBJECT, "not-object")

    def too_large_line(self) -> Line:
        """A line over 1 MiB: a valid event padded with a big unknown field, or one giant label."""
        f, _ = self._base(plain=True)
        pad = MAX_LINE + self.rnd.randint(1, 50_000)
        if self.rnd.random() < 0.5:
            f.after.append(('"pad"', '"' + "p" * pad + '"'))
        else:
            f.values["customer"] = '"' + "c" * pad + '"'  # would be label_too_long, but is never read
        return Line(self._render(f), None, frozenset({TOO_LARGE}), "too-large", frozenset({TOO_LARGE}))
