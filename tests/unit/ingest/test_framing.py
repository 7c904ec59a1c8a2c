"""Tests for sloguard.ingest.framing: lines, pieces, the one-object-per-line test, dead-letter payloads."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sloguard.ingest import framing
from sloguard.ingest.framing import (
    MAX_DEPTH,
    longest_line,
    maybe_too_deep,
    nesting_depth,
    non_blank_lines,
    one_per_line,
    payloads,
    pieces,
)

OBJ = b'{"a": 1}'


def test_pieces_cut_at_newlines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(framing, "PIECE_BYTES", 10)
    buf = b"\n".join([OBJ] * 7)
    cuts = pieces(buf)
    assert cuts[0][0] == 0
    assert cuts[-1][1] == len(buf)
    for (_, end), (start, _) in itertools.pairwise(cuts):
        assert buf[end : end + 1] == b"\n"
        assert start == end + 1
    assert b"\n".join(buf[s:e] for s, e in cuts) == buf
    assert pieces(b"short") == [(0, 5)]


@pytest.mark.parametrize(
    ("buf", "n", "expected"),
    [
        (OBJ, 1, True),
        (OBJ + b"\n", 1, True),
        (OBJ + b"\r\n" + OBJ, 2, True),
        (OBJ + b"\n\n" + OBJ, 2, True),  # a blank line
        (OBJ + b" " + OBJ, 2, False),  # two on one line
        (b'{"a":\n1}', 1, False),  # one over two lines
        (b"[1]", 1, False),
    ],
)
@pytest.mark.parametrize("many", [False, True], ids=["few", "many"])
def test_one_per_line(buf: bytes, n: int, expected: bool, many: bool) -> None:
    if many:  # past SMALL_LINE_CHECK: the numpy forms of the test
        k = framing.SMALL_LINE_CHECK + 1
        buf, n = b"\n".join([buf] * k), n * k
    assert one_per_line(buf, n) is expected


def test_lines() -> None:
    buf = b"a\n  \n\r\nbb\n\t\nccc\r"
    assert non_blank_lines(buf) == [0, 3, 5]
    assert longest_line(buf) == 4


def test_nesting_depth() -> None:
    assert nesting_depth(b'{"a": [[1], {"b": "[[[["}]}') == 3
    deep = b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1)
    assert maybe_too_deep(deep)
    assert nesting_depth(deep) == MAX_DEPTH + 1
    assert not maybe_too_deep(b"\n".join([OBJ] * 100))


@pytest.mark.parametrize("lines", [1, 100, 5000], ids=["one", "a piece", "big"])
def test_nested_lines_are_not_one_deep_line(lines: int) -> None:
    """Objects nested a few deep on every line: many brackets in the buffer, none deep."""
    nested = b'{"ts": 1, "request": {"headers": {"accept": ["a", "b"]}}, "tags": [[1], [2]]}'
    buf = b"\n".join([nested] * lines)
    assert not maybe_too_deep(buf)
    deep = b'{"a": ' + b"[" * MAX_DEPTH + b"]" * MAX_DEPTH + b"}"  # MAX_DEPTH + 1 deep
    for at in (0, lines // 2, lines):
        parts = [nested] * lines
        parts.insert(at, deep)
        assert maybe_too_deep(b"\r\n".join(parts))
    fits = b'{"a": ' + b"[" * (MAX_DEPTH - 1) + b"]" * (MAX_DEPTH - 1) + b"}"  # MAX_DEPTH deep
    assert not maybe_too_deep(b"\n".join([fits] * lines))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.sampled_from([b"x", b"  ", b"y\r", b""]), min_size=1, max_size=4), min_size=1))
def test_payloads_name_their_line_or_their_record(records_lines: list[list[bytes]]) -> None:
    records = [b"\n".join(lines) for lines in records_lines]
    joined = b"\n".join(records).split(b"\n")
    bad = [(i, f"r{i}") for i, line in enumerate(joined) if line.strip(framing.JSON_WS)]
    got = payloads(records, bad)
    assert [reason for reason, _ in got] == [reason for _, reason in bad]
    # Every payload is its whole record (a record of one non-blank line) or its line without "\r".
    for (i, _), (_, payload) in zip(bad, got, strict=True):
        assert payload in records or payload == joined[i].removesuffix(b"\r")
