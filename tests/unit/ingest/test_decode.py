"""Tests for sloguard.ingest.decode: bytes -> EventBatch + counted rejections."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sloguard.core.model import Event, Rejections
from sloguard.ingest import decode as dec
from sloguard.ingest import framing, timestamps
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
    DecodeOptions,
    Decoder,
    parse_timestamps,
    timestamp_ms,
)
from tests.unit.ingest.test_timestamps import iso_truth, ms_of

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TS = "2026-01-01T00:00:00.123Z"
TS_MS = 1_767_225_600_123
# More rows than the small-batch threshold, so that a record of this many lines takes the numpy path.
BIG = framing.SMALL_LINE_CHECK + 6
FULLWIDTH_2026 = "\uff12\uff10\uff12\uff16"  # str.isdigit() says yes; RFC 3339 says no
DROP = object()  # marks a field to leave out of the JSON


def event(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "ts": TS,
        "service": "checkout",
        "endpoint": "GET /v1/orders",
        "customer": "cust-1",
        "status": 200,
        "latency_ms": 12.5,
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not DROP}


def line(**fields: Any) -> bytes:
    return json.dumps(event(**fields)).encode()


GOOD = line()
GOOD_EVENT = Event(TS_MS, "checkout", "GET /v1/orders", "cust-1", 200, 12.5)


def nonblank_lines(record: bytes) -> int:
    return sum(1 for part in record.split(b"\n") if part.strip(b" \t\r"))


def decode(record: bytes, options: DecodeOptions = dec.DEFAULT_OPTIONS) -> tuple[list[Event], Rejections]:
    rejections = Rejections()
    batch = Decoder(options).decode(record, rejections)
    return batch.events(), rejections


# -- valid input ------------------------------------------------------------------------------------------


def test_one_valid_event() -> None:
    events, rejections = decode(GOOD)
    assert events == [GOOD_EVENT]
    assert rejections.total == 0


def test_batch_column_types() -> None:
    batch = Decoder().decode(b"\n".join([GOOD] * BIG), Rejections())
    assert len(batch) == BIG
    assert batch.ts_ms.dtype == np.int64
    assert batch.status.dtype == np.int32
    assert batch.latency_ms.dtype == np.float64
    assert batch.events() == [GOOD_EVENT] * BIG


@pytest.mark.parametrize(
    "record",
    [
        pytest.param(GOOD + b"\n", id="trailing-newline"),
        pytest.param(GOOD + b"\r\n", id="trailing-crlf"),
        pytest.param(b"\n\n" + GOOD + b"\n\n", id="blank-lines-around"),
        pytest.param(b"  \t" + GOOD + b" \r", id="whitespace-around"),
        pytest.param(GOOD[:-1] + b', "x": {"y": [1, {"z": null}]}, "w": 1e400}', id="unknown-fields-ignored"),
        pytest.param(
            GOOD.replace(b'"status": 200', b'"status": 500, "status": 200'), id="duplicate-key-last"
        ),
    ],
)
def test_tolerated_layouts(record: bytes) -> None:
    events, rejections = decode(record)
    assert events == [GOOD_EVENT]
    assert rejections.total == 0


@pytest.mark.parametrize("sep", [b"\n", b"\r\n", b"\n\n", b"\n \t\n"], ids=["lf", "crlf", "blank", "ws-line"])
@pytest.mark.parametrize("n", [3, BIG], ids=["small", "big"])
def test_ndjson(sep: bytes, n: int) -> None:
    lines = [line(status=200 + i % 300, customer=f"cust-{i}") for i in range(n)]
    events, rejections = decode(sep.join(lines) + sep)
    assert [e.customer for e in events] == [f"cust-{i}" for i in range(n)]
    assert [e.status for e in events] == [200 + i % 300 for i in range(n)]
    assert rejections.total == 0


@pytest.mark.parametrize("record", [b"", b"\n", b"\r\n \t\n", b"   "], ids=["empty", "lf", "blank", "spaces"])
def test_nothing_to_decode(record: bytes) -> None:
    events, rejections = decode(record)
    assert events == []
    assert rejections.total == 0


# -- rejections -------------------------------------------------------------------------------------------

REJECTED: list[Any] = [
    # not JSON
    pytest.param(b'{"ts": "2026-01-01T00:00:00Z", "service": ', MALFORMED_JSON, id="malformed-truncated"),
    pytest.param(b"{not json}", MALFORMED_JSON, id="malformed-garbage"),
    pytest.param(line(latency_ms=1.0).replace(b"1.0", b"NaN"), MALFORMED_JSON, id="malformed-nan"),
    pytest.param(line(latency_ms=1.0).replace(b"1.0", b"Infinity"), MALFORMED_JSON, id="malformed-infinity"),
    pytest.param(GOOD + b" x", MALFORMED_JSON, id="malformed-trailing-garbage"),
    pytest.param(GOOD + b" " + GOOD, MALFORMED_JSON, id="malformed-two-objects-one-line"),
    pytest.param(GOOD[:-1] + b', "x": "\\ud800"}', MALFORMED_JSON, id="malformed-lone-surrogate"),
    pytest.param(
        GOOD[:-1] + b', "x": ' + b"[" * 5000 + b"]" * 5000 + b"}", MALFORMED_JSON, id="malformed-deep"
    ),
    pytest.param(b"\xef\xbb\xbf" + GOOD, MALFORMED_JSON, id="malformed-bom"),
    pytest.param(b'{"service": "a\x01b"}', MALFORMED_JSON, id="malformed-control-char"),
    pytest.param(line(service="caf\xe9").replace(b"\\u00e9", b"\xe9"), BAD_ENCODING, id="encoding-latin1"),
    pytest.param(GOOD[:-1] + b', "x": "\xff\xfe"}', BAD_ENCODING, id="encoding-in-unknown-field"),
    pytest.param(b"\xc3", BAD_ENCODING, id="encoding-truncated-utf8"),
    pytest.param(b"[1, 2]", NOT_AN_OBJECT, id="not-object-list"),
    pytest.param(b"42", NOT_AN_OBJECT, id="not-object-number"),
    pytest.param(b'"text"', NOT_AN_OBJECT, id="not-object-string"),
    pytest.param(b"null", NOT_AN_OBJECT, id="not-object-null"),
    pytest.param(b"[" + GOOD + b"]", NOT_AN_OBJECT, id="not-object-wrapped-in-list"),
    # fields
    *[pytest.param(line(**{f: DROP}), MISSING_FIELD, id=f"missing-{f}") for f in event() if f != "customer"],
    pytest.param(line(status="200"), BAD_TYPE, id="type-status-string"),
    pytest.param(line(status=200.0), BAD_TYPE, id="type-status-float"),
    pytest.param(line(status=True), BAD_TYPE, id="type-status-bool"),
    pytest.param(line(status=1e400).replace(b"Infinity", b"1e400"), BAD_TYPE, id="type-status-huge-float"),
    pytest.param(line(service=5), BAD_TYPE, id="type-service-number"),
    pytest.param(line(endpoint=None), BAD_TYPE, id="type-endpoint-null"),
    pytest.param(line(customer=["a"]), BAD_TYPE, id="type-customer-list"),
    pytest.param(line(ts=True), BAD_TYPE, id="type-ts-bool"),
    pytest.param(line(ts=None), BAD_TYPE, id="type-ts-null"),
    pytest.param(line(ts={"s": 1}), BAD_TYPE, id="type-ts-object"),
    pytest.param(line(latency_ms="12"), BAD_TYPE, id="type-latency-string"),
    pytest.param(line(latency_ms=False), BAD_TYPE, id="type-latency-bool"),
    pytest.param(
        GOOD.replace(b'"status": 200', b'"status": "x", "status": 200'), BAD_TYPE, id="type-duplicate-key"
    ),
    # values
    pytest.param(line(ts=1_767_225_600), BAD_TIMESTAMP, id="ts-epoch-seconds-as-int"),
    pytest.param(line(ts=1_767_225_600_123.0), BAD_TIMESTAMP, id="ts-epoch-ms-as-float"),
    pytest.param(line(ts=2**70), BAD_TIMESTAMP, id="ts-int-beyond-int64"),
    pytest.param(line(ts=-1), BAD_TIMESTAMP, id="ts-negative"),
    pytest.param(line(ts=1e400).replace(b"Infinity", b"1e400"), BAD_TIMESTAMP, id="ts-float-out-of-range"),
    pytest.param(line(ts="1999-12-31T23:59:59.999Z"), BAD_TIMESTAMP, id="ts-before-2000"),
    pytest.param(line(ts="2100-01-01T00:00:00Z"), BAD_TIMESTAMP, id="ts-2100"),
    pytest.param(line(ts="2026-13-01T00:00:00Z"), BAD_TIMESTAMP, id="ts-month-13"),
    pytest.param(line(ts="2026-00-01T00:00:00Z"), BAD_TIMESTAMP, id="ts-month-0"),
    pytest.param(line(ts="2026-02-29T00:00:00Z"), BAD_TIMESTAMP, id="ts-feb-29-non-leap"),
    pytest.param(line(ts="2026-04-31T00:00:00Z"), BAD_TIMESTAMP, id="ts-april-31"),
    pytest.param(line(ts="2026-01-00T00:00:00Z"), BAD_TIMESTAMP, id="ts-day-0"),
    pytest.param(line(ts="2026-01-01T24:00:00Z"), BAD_TIMESTAMP, id="ts-hour-24"),
    pytest.param(line(ts="2026-01-01T00:60:00Z"), BAD_TIMESTAMP, id="ts-minute-60"),
    pytest.param(line(ts="2026-12-31T23:59:60Z"), BAD_TIMESTAMP, id="ts-leap-second"),
    pytest.param(line(ts="2026-01-01T00:00:00"), BAD_TIMESTAMP, id="ts-no-offset"),
    pytest.param(line(ts="2026-01-01T00:00:00+24:00"), BAD_TIMESTAMP, id="ts-offset-24h"),
    pytest.param(line(ts="2026-01-01T00:00:00+0100"), BAD_TIMESTAMP, id="ts-offset-no-colon"),
    pytest.param(line(ts="2026-01-01T00:00:00.Z"), BAD_TIMESTAMP, id="ts-dot-no-digits"),
    pytest.param(line(ts="2026-01-01T00:00:00.1234567890Z"), BAD_TIMESTAMP, id="ts-10-fraction-digits"),
    pytest.param(line(ts="2026-01-01X00:00:00Z"), BAD_TIMESTAMP, id="ts-bad-separator"),
    pytest.param(line(ts="2026-01-01"), BAD_TIMESTAMP, id="ts-date-only"),
    pytest.param(line(ts=""), BAD_TIMESTAMP, id="ts-empty"),
    pytest.param(line(ts=FULLWIDTH_2026 + "-01-01T00:00:00Z"), BAD_TIMESTAMP, id="ts-fullwidth-digits"),
    pytest.param(line(ts=TS + "\u0000"), BAD_TIMESTAMP, id="ts-trailing-nul"),
    pytest.param(line(ts=TS + " " * 40), BAD_TIMESTAMP, id="ts-too-long"),
    pytest.param(line(ts="1767225600123"), BAD_TIMESTAMP, id="ts-digits-in-string"),
    pytest.param(line(status=99), BAD_STATUS, id="status-99"),
    pytest.param(line(status=600), BAD_STATUS, id="status-600"),
    pytest.param(line(status=-200), BAD_STATUS, id="status-negative"),
    pytest.param(line(status=2**64), BAD_STATUS, id="status-beyond-int64"),
    pytest.param(line(latency_ms=-0.001), NEGATIVE_LATENCY, id="latency-negative"),
    pytest.param(
        line(latency_ms=-1e400).replace(b"-Infinity", b"-1e400"), NEGATIVE_LATENCY, id="latency-minus-huge"
    ),
    pytest.param(line(latency_ms=86_400_000.001), BAD_LATENCY, id="latency-over-a-day"),
    pytest.param(
        line(latency_ms=1e400).replace(b"Infinity", b"1e400"), BAD_LATENCY, id="latency-float-overflow"
    ),
    pytest.param(line(latency_ms=10**400), BAD_LATENCY, id="latency-int-overflow"),
    pytest.param(line(service=""), EMPTY_LABEL, id="empty-service"),
    pytest.param(line(endpoint=""), EMPTY_LABEL, id="empty-endpoint"),
    pytest.param(line(service="s" * 257), LABEL_TOO_LONG, id="long-service"),
    pytest.param(line(endpoint="e" * 257), LABEL_TOO_LONG, id="long-endpoint"),
    pytest.param(line(customer="c" * 257), LABEL_TOO_LONG, id="long-customer"),
    pytest.param(line(customer="é" * 257), LABEL_TOO_LONG, id="long-customer-in-chars"),
    # precedence
    pytest.param(line(ts="nope", status=1, service=""), BAD_TIMESTAMP, id="first-reason-wins-values"),
    pytest.param(line(status="x", ts=DROP), MISSING_FIELD, id="first-reason-wins-missing"),
    pytest.param(line(status="x", ts="nope"), BAD_TYPE, id="first-reason-wins-type"),
]


@pytest.mark.parametrize(("record", "reason"), REJECTED)
def test_rejected_alone(record: bytes, reason: str) -> None:
    rejected: list[tuple[str, bytes]] = []
    rejections = Rejections()
    batch = Decoder().decode(record, rejections, rejected)
    assert len(batch) == 0
    assert rejections.counts == {reason: 1}
    assert rejected == [(reason, record)]  # a single-line record goes to the dead letters whole


@pytest.mark.parametrize(("record", "reason"), REJECTED)
@pytest.mark.parametrize("crlf", [False, True], ids=["lf", "crlf"])
def test_rejected_among_good_lines(record: bytes, reason: str, crlf: bool) -> None:
    """The bad line is counted, its neighbours survive, its payload is the line without terminator."""
    sep = b"\r\n" if crlf else b"\n"
    lines = [line(customer=f"c{i}") for i in range(BIG)]
    lines.insert(BIG // 2, record)
    rejected: list[tuple[str, bytes]] = []
    rejections = Rejections()
    batch = Decoder().decode(sep.join(lines) + sep, rejections, rejected)
    assert batch.customer == [f"c{i}" for i in range(BIG)]
    assert rejections.counts == {reason: 1}
    assert rejected == [(reason, record)]


def test_every_reason_is_exercised() -> None:
    covered = {p.values[1] for p in REJECTED} | {TOO_LARGE}
    assert covered == set(REASONS)
    assert len(REASONS) == len(set(REASONS)) == 12


@pytest.mark.parametrize("n_good", [0, 3, BIG], ids=["alone", "small", "big"])
def test_too_large(n_good: int) -> None:
    options = DecodeOptions(max_record_bytes=300)
    huge = line(customer="x" * 400)  # would be label_too_long, but is never parsed
    lines = [GOOD] * n_good + [huge] + [GOOD] * n_good
    record = b"\n".join(lines)
    rejected: list[tuple[str, bytes]] = []
    rejections = Rejections()
    batch = Decoder(options).decode(record, rejections, rejected)
    assert len(batch) == 2 * n_good
    assert rejections.counts == {TOO_LARGE: 1}
    assert rejected == [(TOO_LARGE, huge if n_good else record)]


def test_large_record_of_small_lines_is_fine() -> None:
    options = DecodeOptions(max_record_bytes=300)
    record = b"\n".join([GOOD] * 100)
    assert len(record) > 300
    events, rejections = decode(record, options)
    assert len(events) == 100
    assert rejections.total == 0


def test_mixed_ndjson() -> None:
    bad = {
        3: b"{oops",
        10: line(status="500"),
        11: b"[]",
        40: line(ts="2026-02-30T00:00:00Z"),
        41: line(latency_ms=-5),
        70: line(service=""),
    }
    lines = [bad.get(i, line(customer=f"c{i}")) for i in range(80)]
    lines.insert(20, b"")  # blank lines are skipped, not counted
    lines.insert(30, b"  \r")
    record = b"\r\n".join(lines)
    rejected: list[tuple[str, bytes]] = []
    rejections = Rejections()
    batch = Decoder().decode(record, rejections, rejected)
    assert batch.customer == [f"c{i}" for i in range(80) if i not in bad]
    assert rejections.counts == {
        MALFORMED_JSON: 1,
        BAD_TYPE: 1,
        NOT_AN_OBJECT: 1,
        BAD_TIMESTAMP: 1,
        NEGATIVE_LATENCY: 1,
        EMPTY_LABEL: 1,
    }
    assert [payload for _, payload in rejected] == list(bad.values())  # in line order, byte-exact


# -- timestamps -------------------------------------------------------------------------------------------

TS_CASES = [
    "2026-01-01T00:00:00Z",
    "2026-01-01T00:00:00+00:00",
    "2026-01-01T00:00:00-00:00",
    "2026-06-15T12:34:56+02:00",
    "2026-06-15T12:34:56-05:30",
    "2026-06-15T02:04:06+14:00",
    "2026-06-15T02:04:06-23:59",
    *[f"2026-06-15T12:34:56.{'987654321'[:k]}Z" for k in range(1, 10)],
    *[f"2024-02-29T23:59:59.{'999999999'[:k]}-05:30" for k in range(1, 10)],
    *[f"2031-12-31T23:59:59.{'000000001'[:k]}+01:00" for k in range(1, 10)],
    "2000-01-01T00:00:00Z",
    "2099-12-31T23:59:59.999999999Z",
    "1999-12-31T23:30:00-01:00",
    "2100-01-01T00:30:00+01:00",
    "2000-02-29T00:00:00Z",
]


def ts_variants() -> Iterator[Any]:
    for text in TS_CASES:
        yield pytest.param(text, iso_truth(text), id=text)
    for text in ("2026-06-15t12:34:56.5z", "2026-06-15 12:34:56.5+02:00"):
        yield pytest.param(text, iso_truth(text), id=text.replace(" ", "_space_"))
    yield pytest.param(TS_MS, TS_MS, id="epoch-ms-int")
    for seconds in (1_767_225_600.123, 1_767_225_600.0, 1_767_225_600.9999996, 946_684_800.0005):
        truth = ms_of(datetime.fromtimestamp(seconds, UTC))
        yield pytest.param(seconds, truth, id=f"epoch-s-float-{seconds!r}")


@pytest.mark.parametrize(("value", "expected"), list(ts_variants()))
def test_timestamp_formats(value: str | int | float, expected: int) -> None:
    ms, ok = parse_timestamps([value])
    assert ok.tolist() == [True]
    assert ms.tolist() == [expected]
    assert timestamp_ms(value) == expected
    # End to end, through both the row-by-row and the vectorised paths.
    assert [e.ts_ms for e in decode(line(ts=value))[0]] == [expected]
    assert [e.ts_ms for e in decode(b"\n".join([line(ts=value)] * BIG))[0]] == [expected] * BIG


def test_mixed_timestamp_types_in_one_record() -> None:
    values: list[Any] = [TS, TS_MS, TS_MS / 1000, "2026-01-01T01:00:00.123+01:00", 1_767_225_600]
    lines = [line(ts=v) for v in values] * (BIG // len(values) + 1)
    events, rejections = decode(b"\n".join(lines))
    assert {e.ts_ms for e in events} == {TS_MS}
    assert rejections.counts == {BAD_TIMESTAMP: len(lines) // len(values)}
    assert [timestamp_ms(v) for v in (True, None, b"x")] == [None] * 3
    ms, ok = parse_timestamps([*values, True, None, b"x"])
    assert ok.tolist() == [True] * 4 + [False] * 4
    assert ms.tolist() == [TS_MS] * 4 + [0] * 4


# -- options ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("unit", "raw", "expected_ms"),
    [
        pytest.param("ms", 12.5, 12.5, id="ms"),
        pytest.param("ms", 7, 7.0, id="ms-int"),
        pytest.param("s", 0.0125, 12.5, id="s"),
        pytest.param("s", 86_400, 86_400_000.0, id="s-one-day"),
        pytest.param("us", 12_500, 12.5, id="us"),
        pytest.param("us", 1, 0.001, id="us-one"),
    ],
)
@pytest.mark.parametrize("n", [1, BIG], ids=["small", "big"])
def test_custom_fields_and_units(unit: dec.LatencyUnit, raw: float, expected_ms: float, n: int) -> None:
    options = DecodeOptions(
        ts_field="@timestamp",
        service_field="svc",
        endpoint_field="route",
        customer_field="tenant.id",
        status_field="http.status",
        latency_field="duration",
        latency_unit=unit,
    )
    record = json.dumps(
        {
            "@timestamp": TS,
            "svc": "api",
            "route": "/x",
            "tenant.id": "t1",
            "http.status": 503,
            "duration": raw,
        }
    ).encode()
    events, rejections = decode(b"\n".join([record] * n), options)
    assert events == [Event(TS_MS, "api", "/x", "t1", 503, expected_ms)] * n
    assert rejections.total == 0
    # The default names are not read any more.
    _, rejections = decode(GOOD, options)
    assert rejections.counts == {MISSING_FIELD: 1}


@pytest.mark.parametrize(
    ("unit", "raw", "reason"),
    [
        pytest.param("s", 86_400.001, BAD_LATENCY, id="s-over-a-day"),
        pytest.param("s", 1e308, BAD_LATENCY, id="s-overflows-to-inf"),
        pytest.param("us", 86_400_000_001, BAD_LATENCY, id="us-over-a-day"),
        pytest.param("s", -1e-9, NEGATIVE_LATENCY, id="s-negative"),
    ],
)
@pytest.mark.parametrize("n", [1, BIG], ids=["small", "big"])
def test_latency_limits_apply_after_unit_conversion(
    unit: dec.LatencyUnit, raw: float, reason: str, n: int
) -> None:
    _, rejections = decode(b"\n".join([line(latency_ms=raw)] * n), DecodeOptions(latency_unit=unit))
    assert rejections.counts == {reason: n}


@pytest.mark.parametrize(
    ("default", "customer", "expected"),
    [
        pytest.param("unknown", DROP, "unknown", id="missing"),
        pytest.param("unknown", None, "unknown", id="null"),
        pytest.param("unknown", "", "unknown", id="empty"),
        pytest.param("anon", DROP, "anon", id="custom-default"),
        pytest.param("unknown", "c9", "c9", id="present"),
        pytest.param(None, DROP, MISSING_FIELD, id="no-default-missing"),
        pytest.param(None, None, MISSING_FIELD, id="no-default-null"),
        pytest.param(None, "", EMPTY_LABEL, id="no-default-empty"),
        pytest.param(None, "c9", "c9", id="no-default-present"),
    ],
)
@pytest.mark.parametrize("n", [1, BIG], ids=["small", "big"])
def test_default_customer(default: str | None, customer: Any, expected: str, n: int) -> None:
    events, rejections = decode(
        b"\n".join([line(customer=customer)] * n), DecodeOptions(default_customer=default)
    )
    if expected in REASONS:
        assert events == []
        assert rejections.counts == {expected: n}
    else:
        assert [e.customer for e in events] == [expected] * n


@pytest.mark.parametrize("customer", [DROP, None], ids=["missing", "null"])
def test_missing_customer_beats_bad_type_without_default(customer: Any) -> None:
    _, rejections = decode(line(customer=customer, status="x"), DecodeOptions(default_customer=None))
    assert rejections.counts == {MISSING_FIELD: 1}


def test_default_options() -> None:
    options = DecodeOptions()
    assert options.field_names() == ("ts", "service", "endpoint", "customer", "status", "latency_ms")
    assert (options.latency_unit, options.default_customer) == ("ms", "unknown")
    assert (options.max_record_bytes, options.max_label_length) == (1 << 20, 256)


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"service_field": "ts"}, id="duplicate-field"),
        pytest.param({"status_field": ""}, id="empty-field"),
        pytest.param({"latency_unit": "ns"}, id="bad-unit"),
        pytest.param({"max_record_bytes": 0}, id="zero-max-bytes"),
        pytest.param({"max_label_length": 0}, id="zero-max-label"),
        pytest.param({"default_customer": ""}, id="empty-default-customer"),
        pytest.param({"default_customer": "x" * 10, "max_label_length": 5}, id="long-default-customer"),
    ],
)
def test_invalid_options(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        DecodeOptions(**kwargs)


def test_label_length_limit_is_configurable() -> None:
    options = DecodeOptions(max_label_length=3, default_customer="-")
    for n in (1, BIG):
        _, rejections = decode(b"\n".join([line(service="abcd", customer="abc", endpoint="e")] * n), options)
        assert rejections.counts == {LABEL_TOO_LONG: n}


# -- decode_many --------------------------------------------------------------------------------------------


def test_decode_many_joins_records_in_order() -> None:
    records = [
        line(customer="a"),
        line(customer="b") + b"\n",
        line(customer="c") + b"\r\n" + line(customer="d"),
        b"",
        b"\n\n",
        line(customer="e") + b"\n" + line(customer="f") + b"\n",
    ] * 10
    rejections = Rejections()
    batch = Decoder().decode_many(records, rejections)
    assert batch.customer == list("abcdef") * 10
    assert rejections.total == 0


def test_decode_many_dead_letters() -> None:
    bad_single = line(status=42) + b"\r\n"
    bad_in_multi = line(customer="z", ts="yesterday")
    records = (
        [GOOD] * 30 + [bad_single] + [GOOD + b"\n" + bad_in_multi + b"\r\n" + GOOD] + [b"[]"] + [GOOD] * 30
    )
    rejected: list[tuple[str, bytes]] = []
    rejections = Rejections()
    batch = Decoder().decode_many(records, rejections, rejected)
    assert len(batch) == 62
    assert rejected == [(BAD_STATUS, bad_single), (BAD_TIMESTAMP, bad_in_multi), (NOT_AN_OBJECT, b"[]")]
    assert rejections.counts == {BAD_STATUS: 1, BAD_TIMESTAMP: 1, NOT_AN_OBJECT: 1}


@pytest.mark.parametrize("n", [0, 1, 5, BIG], ids=["none", "one", "small", "big"])
def test_decode_many_agrees_with_decode(n: int) -> None:
    records = [line(customer=f"c{i}", status=100 + 50 * (i % 12)) for i in range(n)]
    rej_many, rej_one = Rejections(), Rejections()
    many = Decoder().decode_many(records, rej_many)
    one = [e for r in records for e in Decoder().decode(r, rej_one).events()]
    assert many.events() == one
    assert rej_many.counts == rej_one.counts


def test_big_buffer_is_decoded_in_pieces() -> None:
    n = 2 * framing.PIECE_BYTES // len(GOOD) + 100
    lines = [line(customer=f"c{i}") for i in range(n)]
    bad_at = [5, n // 2, n - 1]
    for i in bad_at:
        lines[i] = b"{bad"
    rejected: list[tuple[str, bytes]] = []
    rejections = Rejections()
    batch = Decoder().decode(b"\n".join(lines) + b"\n", rejections, rejected)
    assert batch.customer == [f"c{i}" for i in range(n) if i not in bad_at]
    assert rejections.counts == {MALFORMED_JSON: 3}
    assert rejected == [(MALFORMED_JSON, b"{bad")] * 3


# -- robustness ---------------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
field_values = st.one_of(
    json_values,
    st.sampled_from(
        [TS, TS_MS, TS_MS / 1000, "2026-02-30T00:00:00Z", "", "x" * 300, 200, 503, 99, -1.0, 1e9]
    ),
)


@st.composite
def event_lines(draw: st.DrawFn) -> bytes:
    """A line that is usually close to a valid event: some fields replaced, dropped or renamed."""
    fields = event()
    for key in list(fields):
        choice = draw(st.integers(0, 9))
        if choice == 0:
            del fields[key]
        elif choice == 1:
            fields[key] = draw(field_values)
    try:
        text = json.dumps(fields)
    except ValueError:
        text = "{}"
    return text.encode("utf-8", "surrogatepass")


junk_lines = st.one_of(
    st.binary(max_size=40),
    st.text(max_size=40).map(lambda t: t.encode("utf-8", "surrogatepass")),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.sampled_from([b"{", b"}", b"{}", b"[]", b"null", b"NaN", b"\xff", b" ", b"\r", b"{} {}", GOOD + GOOD]),
)
any_lines = st.lists(st.one_of(event_lines(), st.just(GOOD), junk_lines), max_size=90)
separators = st.sampled_from([b"\n", b"\r\n", b"\n\n", b"\n \n"])


def check_accounting(records: list[bytes], options: DecodeOptions = dec.DEFAULT_OPTIONS) -> None:
    """Every non-blank line is one event or one rejection, and what comes out is valid."""
    rejected: list[tuple[str, bytes]] = []
    rejections = Rejections()
    batch = Decoder(options).decode_many(records, rejections, rejected)
    assert len(batch) + rejections.total == sum(nonblank_lines(r) for r in records)
    assert Counter(reason for reason, _ in rejected) == rejections.counts
    assert set(rejections.counts) <= set(REASONS)
    assert all(batch.ts_ms >= timestamps.MIN_TS_MS) and all(batch.ts_ms < timestamps.MAX_TS_MS)
    assert all((batch.status >= 100) & (batch.status <= 599))
    assert all((batch.latency_ms >= 0) & (batch.latency_ms <= 86_400_000))
    for col in (batch.service, batch.endpoint, batch.customer):
        assert all(0 < len(label) <= options.max_label_length for label in col)
        assert all(isinstance(label, str) for label in col)
        "".join(col).encode()  # no lone surrogates: labels are exportable as UTF-8


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_never_raise(record: bytes) -> None:
    check_accounting([record])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_lines, separators)
def test_jsonish_lines_are_all_accounted_for(lines: list[bytes], sep: bytes) -> None:
    check_accounting([sep.join(lines)])
    check_accounting(lines)  # one record per line, as from Kafka
    check_accounting([sep.join(lines)], DecodeOptions(max_record_bytes=120, default_customer=None))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(any_lines)
def test_vectorised_and_row_paths_agree(lines: list[bytes]) -> None:
    """One record of many lines (numpy path) == each line alone (row-by-row path)."""
    lines = [x for x in lines if b"\n" not in x and x.strip(b" \t\r")]
    assume(lines)
    lines += [GOOD] * (dec._SMALL_BATCH + 1)  # enough objects for the vectorised checks
    decoder = Decoder()
    rej_all, rej_each = Rejections(), Rejections()
    dead_all: list[tuple[str, bytes]] = []
    dead_each: list[tuple[str, bytes]] = []
    together = decoder.decode(b"\n".join(lines), rej_all, dead_all).events()
    alone = [e for x in lines for e in decoder.decode(x, rej_each, dead_each).events()]
    assert together == alone
    assert rej_all.counts == rej_each.counts

    # Alone, a line is a single-line record and goes to the dead letters whole, "\r" included; in a
    # multi-line record a final "\r" belongs to the "\r\n" terminator.
    def chomp(dead: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
        return [(reason, x[:-1] if x.endswith(b"\r") else x) for reason, x in dead]

    assert chomp(dead_all) == chomp(dead_each)
