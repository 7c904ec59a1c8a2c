"""`LineIndex` (the per-buffer checks of msgspec's bulk decode) against the per-piece checks of `framing`,
which it replaces for big buffers: the same verdict for every piece, whatever the bytes."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sloguard.core.model import Rejections
from sloguard.ingest import framing
from sloguard.ingest.decode import Decoder
from sloguard.ingest.framing import MAX_DEPTH, maybe_too_deep, one_per_line, pieces
from sloguard.ingest.lineindex import LineIndexer

OBJ = b'{"ts": "2026-03-01T00:00:00Z", "service": "a", "endpoint": "b", "status": 200, "latency_ms": 1}'
DEEP = OBJ[:-1] + b', "x": ' + b"[" * MAX_DEPTH + b"]" * MAX_DEPTH + b"}"  # MAX_DEPTH + 1 deep
FITS = OBJ[:-1] + b', "x": ' + b"[" * (MAX_DEPTH - 1) + b"]" * (MAX_DEPTH - 1) + b"}"  # MAX_DEPTH deep


def is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def brackets(line: bytes) -> int:
    return line.count(b"{") + line.count(b"[")


def check(buf: bytes, max_line: int = 1 << 20) -> None:
    """Every piece's verdicts equal those of the per-piece checks."""
    index = LineIndexer(max_line).index(buf)
    assert index.pieces == pieces(buf)
    for k, (start, end) in enumerate(index.pieces):
        piece = buf[start:end]
        assert index.first_line[k] == buf.count(b"\n", 0, start)
        lines = piece.split(b"\n")
        expected = (
            is_utf8(piece) and max(map(brackets, lines)) <= MAX_DEPTH and max(map(len, lines)) <= max_line
        )
        assert index.bulk_ok(k) is expected, k
        filled = sum(1 for line in lines if line)
        for n in (filled - 1, filled, filled + 1):
            assert index.one_per_line(k, n) is one_per_line(piece, n), (k, n)


UTF8_BITS = [
    "é".encode(),
    "日本語".encode(),
    "\U0001f600".encode(),
    b"\xff",  # never valid
    b"\xc3",  # a lead byte alone
    b"\xa9",  # a continuation byte alone
    b"\xe6\x97",  # truncated
    b"\xc0\xaf",  # overlong
    b"\xed\xa0\x80",  # a surrogate
]


def line(rnd: random.Random) -> bytes:
    kind = rnd.random()
    if kind < 0.05:
        return rnd.choice([b"", b"  ", b"\t", b"[1]", b"{} {}", b'{"a":', b"1}"])
    if kind < 0.08:
        return rnd.choice([DEEP, FITS])
    base = bytearray(OBJ if rnd.random() < 0.5 else OBJ[:-1] + b', "req": {"q": [1, {"a": []}]}}')
    for _ in range(rnd.choice([0, 0, 1, 2])):
        at = rnd.randrange(1, len(base) - 1)
        bit = rnd.choice(UTF8_BITS[:3]) if rnd.random() < 0.9 else rnd.choice(UTF8_BITS[3:])
        base[at:at] = bit
    out = bytes(base)
    return out + b"\r" if rnd.random() < 0.1 else out


@pytest.mark.parametrize("seed", range(30))
def test_random_buffers(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rnd = random.Random(seed)
    monkeypatch.setattr(framing, "PIECE_BYTES", rnd.choice([300, 1000, 4000, 1 << 18]))
    buf = b"\n".join(line(rnd) for _ in range(rnd.randrange(1, 400)))
    if rnd.random() < 0.3:
        buf += b"\n"
    check(buf, max_line=rnd.choice([1 << 20, 150, 400]))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([OBJ, b"", b"{", b"[", b"}\r", b"\n", b"x", *UTF8_BITS]), max_size=60))
def test_any_bytes(parts: list[bytes]) -> None:
    """Non-ASCII runs at every offset from the 8-byte words, a buffer of any length."""
    buf = b"".join(parts) or b"x"
    check(buf)
    check(b"{" + buf)


@pytest.mark.parametrize("pad", range(16))
@pytest.mark.parametrize("bit", UTF8_BITS)
def test_utf8_at_every_word_offset(pad: int, bit: bytes) -> None:
    """A sequence starting at each offset of a word, crossing into the next, or cut by the buffer's end."""
    check(b"x" * pad + bit + b"\n" + OBJ)
    check(OBJ + b"\n" + b"x" * pad + bit)
    check(b"x" * pad + bit)


def test_brackets_of_neighbours_are_not_counted() -> None:
    """Lines of many brackets each, side by side: none holds more than MAX_DEPTH, so all are ok."""
    many = b'{"a": ' + b"[" * 40 + b"]" * 40 + b"}"
    check(b"\n".join([many] * 200))
    index = LineIndexer(1 << 20).index(b"\n".join([many] * 200))
    assert index.bulk_ok(0)
    check(b"\n".join([many] * 100 + [DEEP] + [many] * 100))


def test_a_deep_line_after_blank_lines_is_deep() -> None:
    """Blank lines hold no bracket: they must not lower the bound of the others (small buffers used to
    take such a line for shallow and decode it in bulk, where it alone is malformed)."""
    buf = b"\n" * 80 + DEEP
    assert maybe_too_deep(buf)
    check(buf)
    alone, after_blanks = Rejections(), Rejections()
    assert len(Decoder().decode(DEEP, alone)) == 0
    assert len(Decoder().decode(buf, after_blanks)) == 0
    assert alone.counts == after_blanks.counts == {"malformed_json": 1}
