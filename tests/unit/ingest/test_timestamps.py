"""Tests for sloguard.ingest.timestamps: three parsers (columns, 8-byte words, row by row) against datetime
and against each other.

End-to-end timestamp decoding (formats through both decode paths) is tested in test_decode.py.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sloguard.ingest import timestamps
from sloguard.ingest.timestamps import parse_timestamps, timestamp_ms
from tests.unit.ingest.test_fastpath import ts_text

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ms_of(dt: datetime) -> int:
    """Ground truth: epoch milliseconds, floored."""
    return (dt - EPOCH) // timedelta(milliseconds=1)


def iso_truth(text: str) -> int:
    """datetime's reading of an RFC 3339 string (3.11's fromisoformat wants "T"/"Z" in upper case)."""
    normal = text[:10] + "T" + text[11:]
    normal = normal[:-1] + "+00:00" if normal[-1] in "Zz" else normal
    return ms_of(datetime.fromisoformat(normal))


def test_timestamp_floor_is_toward_minus_infinity() -> None:
    # 23:59:59.9999 at -00:30 is 00:29:59.9999 UTC the next day: floor keeps .999, never rounds up.
    ms, _ = parse_timestamps(["2026-01-01T23:59:59.9999-00:30"])
    assert ms[0] == ms_of(datetime(2026, 1, 2, 0, 29, 59, 999_000, tzinfo=UTC))


@st.composite
def rfc3339(draw: st.DrawFn) -> tuple[str, datetime]:
    """An RFC 3339 string in any accepted spelling, and the datetime it denotes."""
    local = draw(st.datetimes(min_value=datetime(1999, 12, 31), max_value=datetime(2100, 1, 1, 23, 59, 59)))
    offset_min = draw(st.integers(-(24 * 60 - 1), 24 * 60 - 1) | st.just(0))
    zulu = offset_min == 0 and draw(st.booleans())
    digits = draw(st.integers(0, 9))
    frac_ns = draw(st.integers(0, 10**digits - 1)) if digits else 0
    sep = draw(st.sampled_from("Tt "))
    text = local.strftime("%Y-%m-%d") + sep + local.strftime("%H:%M:%S")
    if digits:
        text += "." + str(frac_ns).zfill(digits)
    if zulu:
        text += draw(st.sampled_from("Zz"))
    else:
        sign = "-" if offset_min < 0 else draw(st.sampled_from("+-")) if offset_min == 0 else "+"
        text += f"{sign}{abs(offset_min) // 60:02d}:{abs(offset_min) % 60:02d}"
    tz = timezone(timedelta(minutes=offset_min))
    micros = frac_ns * 10**6 // 10**digits  # datetime keeps microseconds, truncated
    moment = local.replace(microsecond=0, tzinfo=tz) + timedelta(microseconds=micros)
    return text, moment


@settings(max_examples=300, deadline=None)
@given(st.lists(rfc3339(), min_size=1, max_size=40))
def test_vectorised_parser_matches_datetime(cases: list[tuple[str, datetime]]) -> None:
    texts = [text for text, _ in cases]
    ms, ok = parse_timestamps(texts)
    for text, moment, got_ms, got_ok in zip(
        texts, [m for _, m in cases], ms.tolist(), ok.tolist(), strict=True
    ):
        truth = iso_truth(text)
        assert truth == ms_of(moment)
        in_window = timestamps.MIN_TS_MS <= truth < timestamps.MAX_TS_MS
        assert got_ok == in_window, text
        assert got_ms == (truth if in_window else 0), text
        assert timestamp_ms(text) == (truth if in_window else None), text


def mutations(text: str) -> st.SearchStrategy[str]:
    """Single-character edits of a valid timestamp: the near misses a parser must not accept."""
    alphabet = st.sampled_from("0123456789:-+.TtZz \x00é")
    replace = st.tuples(st.integers(0, len(text) - 1), alphabet).map(
        lambda p: text[: p[0]] + p[1] + text[p[0] + 1 :]
    )
    delete = st.integers(0, len(text) - 1).map(lambda i: text[:i] + text[i + 1 :])
    insert = st.tuples(st.integers(0, len(text)), alphabet).map(lambda p: text[: p[0]] + p[1] + text[p[0] :])
    return replace | delete | insert


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        rfc3339().flatmap(lambda case: mutations(case[0]))
        | st.text(max_size=40)
        | rfc3339().map(lambda c: c[0]),
        min_size=1,
        max_size=40,
    )
)
def test_vectorised_parser_matches_row_parser(texts: list[str]) -> None:
    """Two independent parsers (numpy columns; regex + datetime) agree on anything, valid or not."""
    ms, ok = parse_timestamps(texts)
    row = [timestamp_ms(t) for t in texts]
    assert [m if o else None for m, o in zip(ms.tolist(), ok.tolist(), strict=True)] == row


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(9.4e8, 4.2e9) | st.floats(), min_size=1, max_size=40))
def test_epoch_seconds_match_datetime(values: list[float]) -> None:
    ms, ok = parse_timestamps(values)
    for value, got_ms, got_ok in zip(values, ms.tolist(), ok.tolist(), strict=True):
        truth = (
            ms_of(datetime.fromtimestamp(value, UTC)) if math.isfinite(value) and 0 < value < 5e9 else None
        )
        expected = (
            truth if truth is not None and timestamps.MIN_TS_MS <= truth < timestamps.MAX_TS_MS else None
        )
        assert (got_ms if got_ok else None) == expected, value
        assert timestamp_ms(value) == expected, value


# -- the RFC 3339 word parser (the fast path reads timestamps as 8-byte words) ----------------------------


@st.composite
def layout_rows(draw: st.DrawFn) -> tuple[tuple[int, bool], list[bytes]]:
    key = draw(st.sampled_from(sorted(k for k, v in timestamps.LAYOUTS.items() if v is not None)))
    width = key[0]
    near = st.integers(0, 2**32).map(lambda s: ts_text(random.Random(s)).encode()[:width].ljust(width, b"0"))
    noise = st.binary(min_size=width, max_size=width)
    rows = draw(st.lists(st.one_of(near, near, noise), min_size=1, max_size=30))
    return key, rows


@settings(max_examples=300, deadline=None)
@given(layout_rows())
def test_word_parser_matches_matrix_parser(case: tuple[tuple[int, bool], list[bytes]]) -> None:
    (width, zulu), rows = case
    layout = timestamps.LAYOUTS[width, zulu]
    assert layout is not None
    matrix = np.frombuffer(b"".join(rows), np.uint8).reshape(len(rows), width)
    padded = np.zeros((len(rows), -(-width // 8) * 8), np.uint8)
    padded[:, :width] = matrix
    words = [
        padded[:, 8 * k : 8 * k + 8].copy().view(np.uint64).reshape(-1) for k in range(padded.shape[1] // 8)
    ]
    ms_matrix, ok_matrix = timestamps.parse_layout(matrix, layout)
    ms_words, ok_words = timestamps.parse_words(words, layout)
    assert np.array_equal(ok_matrix, ok_words)
    assert np.array_equal(ms_matrix[ok_matrix], ms_words[ok_words])


# -- the joined column (strings of one length read as a matrix straight from "\0".join) ------------------

EDGE_DATES = [
    "2000-01-01 00:00:00",  # the window's first millisecond (at Z)
    "1999-12-31 23:59:59",  # before the window
    "2099-12-31 23:59:59",  # its last second
    "2100-01-01 00:00:00",  # after it
    "2024-02-29 12:00:00",  # a leap day
    "2000-02-29 12:00:00",  # a leap day (400-year rule)
    "2100-02-29 12:00:00",  # not a leap year (100-year rule)
    "2023-02-29 12:00:00",  # no such day
    "2026-04-31 12:00:00",  # no such day
    "2026-13-01 12:00:00",  # no such month
    "2026-00-10 12:00:00",
    "2026-03-00 12:00:00",
    "2026-03-01 24:00:00",  # no such hour
    "2026-03-01 23:60:00",
    "2026-03-01 23:59:60",  # a leap second: rejected
    "2026-03-01 23:59:59",
]
ZONES = ["Z", "z", "+00:00", "-00:00", "+01:00", "-01:00", "+23:59", "-23:59", "+24:00", "+05:60", "*01:00"]


def spellings(date: str, digits: int, zone: str) -> list[str]:
    frac = "." + "987654321"[:digits] if digits else ""
    return [date[:10] + sep + date[11:] + frac + zone for sep in "Tt "]


def same_as_row_parser(texts: list[str]) -> None:
    ms, ok = parse_timestamps(texts)
    row = [timestamp_ms(t) for t in texts]
    assert [m if o else None for m, o in zip(ms.tolist(), ok.tolist(), strict=True)] == row


@pytest.mark.parametrize("digits", range(10))
@pytest.mark.parametrize("zone", ZONES)
def test_one_length_columns_of_every_layout(digits: int, zone: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Columns of one layout (one length, one zone kind), with the edge dates: the joined path reads them
    (the row-wise fallback is not called) and agrees with the row parser on every row."""
    texts = [t for date in EDGE_DATES for t in spellings(date, digits, zone)]
    fallback = timestamps._parse_rfc3339
    calls: list[int] = []

    def spy(values: list[str]) -> tuple[object, object]:
        calls.append(len(values))
        return fallback(values)

    monkeypatch.setattr(timestamps, "_parse_rfc3339", spy)
    same_as_row_parser(texts)
    same_as_row_parser(texts[:1])
    zulu = zone in ("Z", "z")
    if timestamps.LAYOUTS[len(texts[0]), zulu] is not None and (zulu or zone[0] != "*"):
        assert calls == []  # read as one matrix


def test_window_edges_with_offsets() -> None:
    texts = [
        "2000-01-01T00:30:00+01:00",  # 1999-12-31T23:30Z: before the window
        "2000-01-01T00:30:00-01:00",
        "2099-12-31T23:30:00-01:00",  # 2100-01-01T00:30Z: after it
        "2099-12-31T23:30:00+01:00",
    ]
    assert parse_timestamps(texts)[1].tolist() == [False, True, False, True]
    same_as_row_parser(texts)


@pytest.mark.parametrize(
    "texts",
    [
        # lengths that compensate: the total is that of one length, the rows are not
        ["2026-03-01T00:00:00.12Z", "2026-03-01T00:00:00.1234Z", "2026-03-01T00:00:00.123Z"],
        ["2026-03-01T00:00:00Z", "2026-03-01T00:00:00.12Z", "2026-03-01T00:00:0Z"],
        # a NUL inside, in place of a char or of a separator's neighbour
        ["2026-03-01T00:00:00.123Z", "2026-03-01T00:00\x0000.123Z", "2026-03-01T00:00:00.123Z"],
        ["2026-03-01T00:00:00.123Z", "2026-03-01T00:00:00.12\x00", "2026-03-01T00:00:00.123Z"],
        ["2026-03-01T00:00:00.123\x00", "2026-03-01T00:00:00.123Z"],
        # non-ASCII of the same length, empty strings, too long ones
        ["2026-03-01T00:00:00.123Z", "2026-03-01T00:00:00.12éZ"],
        ["", ""],
        ["", "2026-03-01T00:00:00Z"],
        ["2026-03-01T00:00:00.123456789+01:00" + "0", "2026-03-01T00:00:00.123456789+01:000"],
        # Z and offsets mixed, of one length
        ["2026-03-01T00:00:00.12345+01:00", "2026-03-01T00:00:00.1234567890Z"],
        ["2026-03-01T00:00:00.12345+01:00", "2026-03-01T00:00:00.123456789Zz"],
    ],
)
def test_joined_column_confounders(texts: list[str]) -> None:
    same_as_row_parser(texts)
    same_as_row_parser(texts * 20)
    same_as_row_parser(list(reversed(texts)))


@st.composite
def one_length_column(draw: st.DrawFn) -> list[str]:
    """Strings of one length (near misses by replacing chars), sometimes two whose lengths compensate."""
    texts = draw(st.lists(rfc3339().map(lambda case: case[0]), min_size=1, max_size=30))
    width = len(texts[0])
    column = [t for t in texts if len(t) == width]
    for _ in range(draw(st.integers(0, 4))):
        i, j = draw(st.integers(0, len(column) - 1)), draw(st.integers(0, width - 1))
        column[i] = column[i][:j] + draw(st.sampled_from("0123456789:-+.TtZz \x00é")) + column[i][j + 1 :]
    if len(column) >= 2 and draw(st.booleans()):
        column[0], column[1] = column[0][:-1], column[1] + draw(st.sampled_from("0Z\x00"))
    return column


@settings(max_examples=400, deadline=None)
@given(one_length_column())
def test_joined_column_matches_row_parser(column: list[str]) -> None:
    same_as_row_parser(column)
