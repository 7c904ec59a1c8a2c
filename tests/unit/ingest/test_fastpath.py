"""The decoder's byte-level fast path: whatever the bytes, exactly what the msgspec path alone gives.

Every comparison runs a fast-path `Decoder` and a `Decoder(fast_path=False)` side by side, each with its
own fresh vocabularies, and requires the same events bit for bit (ids included: labels must enter the
vocabularies in the same order), the same rejections and the same dead letters. The replay test then
requires byte-identical `sloguard replay` JSON on a file mixing valid lines with every kind of bad,
unusual or merely unexpected one.
"""

from __future__ import annotations

import datetime as dt
import functools
import gzip
import io
import json
import random
from collections.abc import Iterator
from pathlib import Path

import msgspec
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sloguard import replay as replay_module
from sloguard import report
from sloguard.core.model import EventBatch, Rejections, Vocabs
from sloguard.ingest import decode as dec
from sloguard.ingest import fastpath, framing, labelcache
from sloguard.ingest.decode import REASONS, DecodeOptions, Decoder
from sloguard.ingest.source import FileSource
from sloguard.specfile import load_config

# -- a generator of lines: mostly the common shape, valid or nearly so, and everything else ----------------

SERVICES = ["checkout", "search", "a", "x" * 8, "s" * 16, "payments-eu-west-1"]
ENDPOINTS = ["GET /v1/orders", "POST /v1/pay", "GET /v1/products/{id}/reviews", "/", "PUT /" + "e" * 60]
ODD_LABELS = [
    "",  # empty
    "y" * 128,  # the longest label the fast path takes
    "y" * 129,
    "z" * 256,  # the default max_label_length
    "z" * 257,
    "caf\u00e9",  # non-ASCII
    "\u65e5\u672c",
    "tab\there",  # control char: JSON must escape it
    'quote"inside',
    "back\\slash",
    "slash/ok",
    " spaced ",
]


def ts_text(rnd: random.Random) -> str:
    """A timestamp string: mostly valid RFC 3339 in many spellings, sometimes not quite."""
    year = rnd.choice([2026, 2026, 2026, 2024, 2000, 1999, 2099, 2100])
    month, day = rnd.choice([(3, 1), (1, 31), (2, 28), (2, 29), (2, 30), (4, 31), (12, 31), (13, 1), (0, 5)])
    hour, minute, second = rnd.choice(
        [(0, 0, 1), (23, 59, 59), (12, 30, 5), (24, 0, 0), (1, 60, 0), (1, 2, 60)]
    )
    text = f"{year:04d}-{month:02d}-{day:02d}{rnd.choice('TTTt ')}{hour:02d}:{minute:02d}:{second:02d}"
    digits = rnd.choice([3, 3, 3, 0, 1, 2, 6, 9, 10])
    if digits:
        text += "." + "".join(rnd.choice("0123456789") for _ in range(digits))
    zone = rnd.choice(["Z", "Z", "Z", "z", "+02:00", "-05:30", "+00:00", "+24:00", "+0100", ""])
    return text + zone


def latency_text(rnd: random.Random) -> str:
    """A JSON number (or not): plain decimals of every length, and the forms the fast path leaves alone."""
    kind = rnd.random()
    if kind < 0.6:
        whole = str(rnd.choice([0, rnd.randrange(1, 10), rnd.randrange(10, 100_000), rnd.randrange(10**12)]))
        frac = "".join(rnd.choice("0123456789") for _ in range(rnd.choice([0, 1, 2, 3, 3, 3, 6, 10, 14])))
        return whole + ("." + frac if frac else "")
    return rnd.choice(
        [
            "0",
            "0.0",
            "12.0",
            "86400000",
            "86400000.0",
            "86400000.000001",
            "86400001",
            "123456789012345",
            "1234567890123456",
            "12345678901234.5",
            "0.00000000000001",
            "99999999999999.9",
            "1e2",
            "1E-3",
            "2.5e+1",
            "-0",
            "-0.0",
            "-1.5",
            "00.5",
            ".5",
            "5.",
            "1.2.3",
            "NaN",
            "1e400",
            '"12"',
            "true",
            "null",
            "12 ",
        ]
    )


def status_text(rnd: random.Random) -> str:
    if rnd.random() < 0.85:
        return str(rnd.choice([200, 200, 201, 404, 429, 500, 503, 100, 599]))
    return rnd.choice(["99", "600", "1000", "0", "-200", "0200", "200.0", "2e2", '"200"', "true", "null"])


def json_string(rnd: random.Random, value: str) -> str:
    return json.dumps(value, ensure_ascii=rnd.random() < 0.5)


def event_line(rnd: random.Random, odd: float = 0.2, spaced: bool | None = None) -> bytes:
    """One line, usually in the common shape with valid values; with probability `odd` per field
    something unusual (a bad value, another spelling, another type). `spaced`: `json.dumps`'s separators
    (else compact ones), random per line if None."""
    spaced = rnd.random() < 0.7 if spaced is None else spaced
    colon, comma = (": ", ", ") if spaced else (":", ",")

    def label(pool: list[str]) -> str:
        if rnd.random() < odd / 2:
            return json_string(rnd, rnd.choice(ODD_LABELS))
        if rnd.random() < odd / 4:
            return rnd.choice(["null", "5", "[]", '"\\u00e9t\\u00e9"', '"a\\"b"', '"\\/"'])
        return json_string(rnd, rnd.choice(pool))

    if rnd.random() < odd:
        ts = json_string(rnd, ts_text(rnd))
    else:  # valid, within a few hours, in one of the usual spellings
        when = dt.datetime(2026, 3, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=rnd.uniform(0, 4 * 3600))
        spelling = rnd.choice(["milliseconds", "milliseconds", "milliseconds", "seconds", "microseconds"])
        ts = json.dumps(when.isoformat(timespec=spelling).replace("+00:00", "Z"))
    if rnd.random() < odd / 3:
        ts = rnd.choice(["1767225600123", "1767225600.123", "1767225600", "null", "true", '""'])
    customer = json_string(rnd, f"cust-{rnd.randrange(300)}")
    if rnd.random() < odd / 2:
        customer = rnd.choice(['""', "null", json_string(rnd, rnd.choice(ODD_LABELS))])
    fields = [
        ("ts", ts),
        ("service", label(SERVICES)),
        ("endpoint", label(ENDPOINTS)),
        ("customer", customer),
        ("status", status_text(rnd) if rnd.random() < odd else str(rnd.choice([200, 200, 500, 404]))),
        ("latency_ms", latency_text(rnd) if rnd.random() < 2 * odd else f"{rnd.uniform(0, 3000):.3f}"),
    ]
    if rnd.random() < odd / 3:
        del fields[rnd.randrange(len(fields))]
    if rnd.random() < odd / 3:
        rnd.shuffle(fields)
    if rnd.random() < odd / 3:
        fields.insert(rnd.randrange(len(fields) + 1), ("extra", rnd.choice(['{"a": [1, 2]}', "1e2", '"x"'])))
    if rnd.random() < odd / 4:
        fields.append(("status", "500"))  # duplicate key: the last one wins
    body = comma.join(f'"{k}"{colon}{v}' for k, v in fields)
    line = "{" + body + "}"
    if rnd.random() < odd / 4:
        line = rnd.choice([" " + line, line + " ", line + "\t", line.replace(comma, comma + " ", 1)])
    return line.encode("utf-8")


def junk_line(rnd: random.Random) -> bytes:
    return rnd.choice(
        [
            b"{not json",
            b"",
            b"   ",
            b"\t",
            b"\r",
            b"[1, 2]",
            b"42",
            b"null",
            b"{}",
            b'{"ts": "2026-03-01T00:00:00Z"}',
            b"\xff\xfe garbage",
            b'{"service": "caf\xe9"}',
            b"\xef\xbb\xbf" + event_line(rnd, 0),  # BOM
            event_line(rnd, 0) + b" " + event_line(rnd, 0),  # two objects on one line
            event_line(rnd, 0)[:-7],  # truncated
            event_line(rnd, 0) + b"x",
            event_line(rnd, 0).replace(b'"service"', b'"ser\\u0076ice"'),  # an escaped key
            event_line(rnd, 0).replace(b"checkout", b"check\x01out"),  # raw control char
        ]
    )


def lines(
    rnd: random.Random, n: int, odd: float = 0.2, junk: float = 0.05, spaced: bool | None = None
) -> list[bytes]:
    return [junk_line(rnd) if rnd.random() < junk else event_line(rnd, odd, spaced) for _ in range(n)]


def join(rnd: random.Random, parts: list[bytes]) -> bytes:
    """Lines joined mostly with LF, sometimes CRLF or blank lines; maybe a final newline."""
    out = []
    for part in parts:
        out.append(part)
        out.append(rnd.choice([b"\n"] * 8 + [b"\r\n", b"\n\n"]))
    if rnd.random() < 0.5:
        out.pop()
    return b"".join(out)


# -- the comparison ----------------------------------------------------------------------------------------


def same_batches(a: EventBatch, b: EventBatch) -> None:
    assert a.ts_ms.dtype == b.ts_ms.dtype == np.int64
    assert a.status.dtype == b.status.dtype == np.int32
    assert a.latency_ms.dtype == b.latency_ms.dtype == np.float64
    assert np.array_equal(a.ts_ms, b.ts_ms)
    assert np.array_equal(a.status, b.status)
    assert np.array_equal(a.latency_ms.view(np.int64), b.latency_ms.view(np.int64))  # bit for bit: -0.0
    for dim in ("service", "endpoint", "customer"):
        col_a, col_b = getattr(a, dim), getattr(b, dim)
        assert np.array_equal(col_a.codes, col_b.codes), dim
        assert col_a.vocab.names == col_b.vocab.names, dim


def decode_both(records: list[bytes], options: DecodeOptions = dec.DEFAULT_OPTIONS) -> EventBatch:
    """Decode with and without the fast path (twice each, so cached labels are exercised too)."""
    fast, slow = Decoder(options), Decoder(options, fast_path=False)
    batch = EventBatch.empty()
    for _ in range(2):
        rej_fast, rej_slow = Rejections(), Rejections()
        dead_fast: list[tuple[str, bytes]] = []
        dead_slow: list[tuple[str, bytes]] = []
        batch = fast.decode_many(records, rej_fast, dead_fast)
        same_batches(batch, slow.decode_many(records, rej_slow, dead_slow))
        assert rej_fast.counts == rej_slow.counts
        assert dead_fast == dead_slow
    return batch


@pytest.fixture
def small_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fast path on any buffer, and pieces of a few lines: every piece-level path on small inputs."""
    monkeypatch.setattr(dec, "_FAST_MIN_BYTES", 0)
    monkeypatch.setattr(framing, "PIECE_BYTES", 400)


class Spy:
    """Counts the rows the fast path took, and the rows it left to msgspec."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = self.taken = self.left = 0
        scan = fastpath.ByteScanner.scan

        def spy(scanner: fastpath.ByteScanner, buf: bytes) -> fastpath.Scan | None:
            self.calls += 1
            result = scan(scanner, buf)
            if result is not None:
                self.taken += int(result.ok.sum())
                self.left += int((~result.ok).sum())
            return result

        monkeypatch.setattr(fastpath.ByteScanner, "scan", spy)


# -- decoder-level equivalence -----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(12))
def test_big_mixed_buffers(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Buffers of several 256 KiB pieces (the default sizes): clean pieces fast, others msgspec's."""
    spy = Spy(monkeypatch)
    rnd = random.Random(seed)
    # One producer's separators (a piece mixing both is msgspec's) over ~6 pieces, and trouble in a few
    # places only, so that some pieces are clean and others not.
    parts = lines(rnd, 6000, odd=0.0, junk=0.0, spaced=seed % 2 == 0)
    for _ in range(seed % 4):
        at = rnd.randrange(len(parts) - 40)
        parts[at : at + 40] = lines(rnd, 40)
    decode_both([join(rnd, parts)])
    assert spy.taken > 0
    assert spy.left > 0 or seed % 4 == 0


@pytest.mark.parametrize("seed", range(40))
def test_small_pieces(seed: int, small_pieces: None, monkeypatch: pytest.MonkeyPatch) -> None:
    spy = Spy(monkeypatch)
    rnd = random.Random(1000 + seed)
    odd = rnd.choice([0.0, 0.05, 0.2, 0.5])
    parts = lines(rnd, rnd.randrange(1, 120), odd=odd, junk=odd / 4)
    if rnd.random() < 0.5:
        decode_both([join(rnd, parts)])
    else:  # as from Kafka: one or more lines per record
        decode_both([join(rnd, parts[i : i + 3]) for i in range(0, len(parts), 3)])
    assert spy.calls > 0


OPTIONS = [
    pytest.param(DecodeOptions(latency_unit="s"), id="seconds"),
    pytest.param(DecodeOptions(latency_unit="us"), id="microseconds"),
    pytest.param(DecodeOptions(default_customer=None), id="customer-required"),
    pytest.param(DecodeOptions(default_customer="anon"), id="other-default"),
    pytest.param(DecodeOptions(max_label_length=9), id="short-labels"),
    pytest.param(DecodeOptions(max_record_bytes=150), id="short-lines"),
    pytest.param(
        DecodeOptions(
            ts_field="@timestamp",
            service_field="svc",
            endpoint_field="route",
            customer_field="tenant",
            status_field="code",
            latency_field="duration",
        ),
        id="field-names",
    ),
    pytest.param(DecodeOptions(latency_field="dur\u00e9e"), id="non-ascii-field-name"),
]


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("seed", range(6))
def test_options(options: DecodeOptions, seed: int, small_pieces: None) -> None:
    rnd = random.Random(2000 + seed)
    parts = lines(rnd, 80, odd=0.15)
    names = options.field_names()
    if names != dec.DEFAULT_OPTIONS.field_names():
        default = dec.DEFAULT_OPTIONS.field_names()
        for old, new in zip(default, names, strict=True):
            key = json.dumps(new).encode()
            parts = [p.replace(b'"' + old.encode() + b'"', key) for p in parts]
    decode_both([join(rnd, parts)], options)


def test_reassigned_vocabularies(small_pieces: None) -> None:
    """The label cache follows `Decoder.vocabs` if it is replaced (ids are only valid in their own)."""
    rnd = random.Random(9)
    buf = join(rnd, lines(rnd, 200, odd=0.0, junk=0.0))
    fast = Decoder()
    fast.decode(buf, Rejections())
    fast.vocabs = Vocabs()
    same_batches(fast.decode(buf, Rejections()), Decoder(fast_path=False).decode(buf, Rejections()))


SPACED = [
    b'{"ts": "2026-03-01T00:00:01.147Z", "service": "a", "endpoint": "GET /", "customer": "c",'
    b' "status": 200, "latency_ms": 14.676}',
    b'{"ts": "2026-03-01t00:00:01.123456789+02:00", "service": "a", "endpoint": "GET /",'
    b' "customer": "c", "status": 100, "latency_ms": 86400000}',
    b'{"ts": "2026-03-01 00:00:01.1z", "service": "a", "endpoint": "GET /", "customer": "c",'
    b' "status": 404, "latency_ms": 0.0000000000001}',
    b'{"ts": "2024-02-29T23:59:59-00:30", "service": "a", "endpoint": "GET /", "customer": "c",'
    b' "status": 599, "latency_ms": 86399999.999999}',
]
COMPACT = [
    b'{"ts":"2026-03-01T00:00:01Z","service":"a","endpoint":"GET /","customer":"c","status":599,'
    b'"latency_ms":0}',
    b'{"ts":"2026-03-01T00:00:01.5Z","service":"' + b"s" * 128 + b'","endpoint":"/","customer":"c",'
    b'"status":503,"latency_ms":0.5}',
]


@pytest.mark.parametrize("good", [SPACED, COMPACT], ids=["spaced", "compact"])
def test_the_fast_path_takes_the_common_shapes(
    good: list[bytes], small_pieces: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = Spy(monkeypatch)
    batch = decode_both([b"\r\n".join(good) + b"\r\n"])
    assert len(batch) == len(good)
    assert (spy.taken, spy.left) == (2 * len(good), 0)


def test_one_buffer_one_shape(small_pieces: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shape is picked per buffer: lines of the other one are msgspec's (and still decoded)."""
    spy = Spy(monkeypatch)
    batch = decode_both([b"\n".join(SPACED + COMPACT)])
    assert len(batch) == len(SPACED) + len(COMPACT)
    assert (spy.taken, spy.left) == (2 * len(SPACED), 2 * len(COMPACT))


def test_hash_collisions_cost_speed_not_correctness(
    small_pieces: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every label hashes alike: the cache keeps one and verifies it; all others are resolved by bytes."""
    monkeypatch.setattr(
        labelcache.LabelCache,
        "hashes",
        staticmethod(lambda words, lengths: np.zeros(len(lengths), np.uint64)),
    )
    rnd = random.Random(7)
    decode_both([join(rnd, lines(rnd, 300, odd=0.0, junk=0.0))])


def test_many_labels_grow_the_cache(small_pieces: None) -> None:
    rnd = random.Random(8)
    parts = [
        f'{{"ts": "2026-03-01T00:00:01.147Z", "service": "s{i % 7}", "endpoint": "GET /{i % 50}",'
        f' "customer": "customer-{i}-{rnd.randrange(10**6)}", "status": 200, "latency_ms": {i}.5}}'.encode()
        for i in range(5000)
    ]
    batch = decode_both([b"\n".join(parts)])
    assert len(batch.customer.vocab) == 5000


LATENCIES = [
    "0",
    "0.0",
    "12.0",
    "14.676",
    "86400000",
    "86400000.0",
    "86400000.000001",
    "86400001",
    "86399999.999999",
    "123456789012345",
    "1234567890123456",
    "12345678901234.5",
    "1234567890123.45",
    "0.0000000000001",
    "0.00000000000001",
    "99999999999999.9",
    "5",
    "0.5",
    "1e2",
    "1E-3",
    "2.5e+1",
    "-0",
    "-0.0",
    "-1.5",
    "00",
    "00.5",
    "01",
    ".5",
    "5.",
    "1..2",
    "1.2.3",
    "NaN",
    "1e400",
    '"12"',
    "true",
    "null",
    "[1]",
    "12 ",
    " 12",
    "1 2",
    "+1",
    "0x10",
    "1_000",
]
STATUSES = [
    "100",
    "200",
    "599",
    "99",
    "600",
    "699",
    "1000",
    "0",
    "-200",
    "0200",
    "200.0",
    "2e2",
    '"200"',
    "true",
]


def variants() -> Iterator[tuple[str, str]]:
    """(field, JSON text) for one field at a time: every odd value the generator knows, and then some."""
    rnd = random.Random(5)
    for latency in LATENCIES:
        yield "latency_ms", latency
    for status in STATUSES:
        yield "status", status
    for _ in range(400):
        yield "ts", json.dumps(ts_text(rnd))
    for ts in [
        "1767225600123",
        "1767225600.5",
        '""',
        '"2026-03-01T00:00:01.147Z "',
        '"2026-03-01T00:00:01.147"',
    ]:
        yield "ts", ts
    for field in ("service", "endpoint", "customer"):
        for label in [*ODD_LABELS, "ok", "x" * 8, "x" * 9, "x" * 15, "x" * 16, "x" * 17]:
            yield field, json.dumps(label)
            yield field, json.dumps(label, ensure_ascii=False)
        for raw in [
            '"\\u00e9t\\u00e9"',
            '"a\\"b"',
            '"\\/"',
            "null",
            "5",
            '""',
            '"a\rb"',
            '"a\tb"',
            '"a\x00b"',
        ]:
            yield field, raw  # (the last three hold raw control chars: not JSON)
    for text in ['"a\rb"', "1\r2", "200\r"]:
        yield "latency_ms", text


def variant_line(field: str, value: str, colon: str, comma: str) -> bytes:
    fields = {
        "ts": '"2026-03-01T00:00:01.147Z"',
        "service": '"checkout"',
        "endpoint": '"GET /v1/orders"',
        "customer": '"cust-1"',
        "status": "200",
        "latency_ms": "14.676",
    }
    fields[field] = value
    return ("{" + comma.join(f'"{k}"{colon}{v}' for k, v in fields.items()) + "}").encode()


@pytest.mark.parametrize("compact", [False, True], ids=["spaced", "compact"])
def test_one_odd_field_at_a_time(compact: bool, small_pieces: None) -> None:
    """Each odd value in an otherwise perfect line: alone, and among perfect lines."""
    colon, comma = (":", ",") if compact else (": ", ", ")
    clean = variant_line("status", "200", colon, comma)
    odd = [variant_line(field, value, colon, comma) for field, value in variants()]
    odd += [clean.replace(b'"service"', b'\r"service"'), clean[:-1] + b"\r}", clean + b"\r\r"]
    decode_both(odd)  # one line per record
    decode_both([b"\n".join(x for line in odd for x in (clean, line, clean))])


def test_latencies_are_correctly_rounded(small_pieces: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Decimal strings of every length and point position: the same doubles as `float` (and msgspec)."""
    spy = Spy(monkeypatch)
    rnd = random.Random(4)
    texts = []
    for _ in range(20_000):
        digits = str(rnd.randint(1, 9)) + "".join(rnd.choice("0123456789") for _ in range(rnd.randint(0, 14)))
        point = rnd.randint(1, len(digits))
        text = digits[:point] + ("." + digits[point:] if point < len(digits) < 15 else "")
        texts.append(rnd.choice([text, "0." + digits[:13], "0", digits[:1] + ".0"]))
    record = b"\n".join(variant_line("latency_ms", text, ": ", ", ") for text in texts)
    batch = decode_both([record])
    expected = np.array([float(t) for t in texts])
    valid = expected <= 86_400_000  # longer than a day: bad_latency, on both paths
    assert np.array_equal(batch.latency_ms.view(np.int64), expected[valid].view(np.int64))
    assert spy.left == 2 * int((~valid).sum())  # every other line was read by the fast path


line_strategy = st.one_of(
    st.integers(0, 2**32).map(lambda seed: event_line(random.Random(seed), 0.3)),
    st.integers(0, 2**32).map(lambda seed: junk_line(random.Random(seed))),
    st.binary(max_size=30),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(line_strategy, min_size=1, max_size=40), st.sampled_from([b"\n", b"\r\n", b"\n\n"]))
def test_any_lines(parts: list[bytes], sep: bytes) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(dec, "_FAST_MIN_BYTES", 0)
        mp.setattr(framing, "PIECE_BYTES", 300)
        decode_both([sep.join(parts)])
        decode_both(parts)


# -- replay: the same JSON, byte for byte --------------------------------------------------------------------

SLOS_YAML = """\
apiVersion: sloguard/v1
slos:
  - name: checkout-availability
    service: checkout
    objective: 99.9
    sli: {type: availability}
    window: 30d
    group_by: [endpoint]
  - name: search-latency
    service: search
    objective: 99
    sli: {type: latency, threshold_ms: 300}
    window: 28d
    group_by: [customer]
    max_series: 40
  - name: everything
    service: "a"
    objective: 99.5
    sli: {type: availability}
    window: {calendar: month, timezone: Europe/Berlin}
latency:
  group_by: [service, endpoint]
  percentiles: [50, 90, 99, 99.9]
  windows: [1m, 5m, 1h]
"""


def mixed_file(seed: int) -> bytes:
    """Mostly clean lines (whole clean pieces), with stretches of every kind of trouble."""
    rnd = random.Random(seed)
    parts = lines(rnd, 9000, odd=0.0, junk=0.0, spaced=True)
    for at in (10, 2500, 5000, 8900):
        parts[at : at + 60] = lines(rnd, 60, odd=0.4, junk=0.2)
    return join(rnd, parts)


def replay_json(path: Path, config_path: Path) -> bytes:
    result = replay_module.replay(FileSource([str(path)]), load_config(config_path))
    return msgspec.json.encode(report.to_dict(result.snapshot, result.invalid, result.after_now, REASONS))


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_replay_json_is_identical_on_both_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gz: bool
) -> None:
    data = mixed_file(11)
    path = tmp_path / ("mixed.ndjson.gz" if gz else "mixed.ndjson")
    path.write_bytes(gzip.compress(data) if gz else data)
    config_path = tmp_path / "slos.yaml"
    config_path.write_text(SLOS_YAML)
    spy = Spy(monkeypatch)
    fast = replay_json(path, config_path)
    assert spy.taken > 0 and spy.left > 0  # both paths ran
    monkeypatch.setattr(replay_module, "Decoder", functools.partial(Decoder, fast_path=False))
    slow = replay_json(path, config_path)
    assert fast == slow
    doc = json.loads(fast)
    assert doc["events"] > 8000
    assert sum(doc["invalid"].values()) > 0
    assert doc["overflow"]["search-latency"] > 0  # the cap met labels in the order both paths interned them


# -- FileSource ----------------------------------------------------------------------------------------------


class Progress:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int | None]] = []

    def __call__(self, done: int, total: int | None) -> None:
        self.calls.append((done, total))


def file_cases(rnd: random.Random) -> Iterator[bytes]:
    yield b""
    yield b"no newline at all"
    yield b"\n\n\n"
    yield b"".join(
        rnd.choice([b"a" * rnd.randrange(60), b"b" * rnd.randrange(500, 3000)]) + b"\n" for _ in range(400)
    )
    yield b"x" * 5000 + b"\n" + b"tail without newline"


@pytest.mark.parametrize("chunk_bytes", [1, 7, 100, 1024, 1 << 20])
def test_file_source_yields_whole_lines(tmp_path: Path, chunk_bytes: int) -> None:
    rnd = random.Random(chunk_bytes)
    for i, data in enumerate(file_cases(rnd)):
        plain, packed = tmp_path / f"{i}.ndjson", tmp_path / f"{i}.ndjson.gz"
        plain.write_bytes(data)
        packed.write_bytes(gzip.compress(data))
        for path in (plain, packed):
            progress = Progress()
            records = list(FileSource([str(path)], chunk_bytes=chunk_bytes, on_progress=progress).records())
            assert b"".join(records) == data
            # Plain files are read to each chunk's end, streams cut after reading: the same chunks
            # (batch boundaries can decide the order of series in a report).
            assert records == list(FileSource([], chunk_bytes=chunk_bytes)._chunks(io.BytesIO(data)))
            assert all(r.endswith(b"\n") for r in records[:-1])
            assert all(records)
            assert len(progress.calls) == len(records)
            assert all(total == len(path.read_bytes()) for _, total in progress.calls)
