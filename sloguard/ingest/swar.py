"""SWAR ("SIMD within a register") helpers: 8 bytes of text per uint64, numpy arrays of them per row.

The byte-level fast path (`sloguard.ingest.fastpath`) and the word-wise timestamp parser
(`sloguard.ingest.timestamps.parse_words`) read little-endian 64-bit words from many rows at once and test
all 8 bytes of each with a few integer operations. Byte j of a word is bits 8j .. 8j + 7.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from sloguard._types import U64, Bools, Intp

__all__ = [
    "BYTE_FF",
    "BYTE_INDEX",
    "C01",
    "C1E",
    "C7A",
    "C7F",
    "C22",
    "C30",
    "C76",
    "C80",
    "N1",
    "N7",
    "N8",
    "N16",
    "N32",
    "N56",
    "N63",
    "Run",
    "each_byte",
    "first_byte",
    "first_zero_flags",
    "flag_positions",
    "low_bytes",
    "scratch_size",
    "zero_bytes",
]


def low_bytes(k: int) -> int:
    """A mask of the first `k` (0-8) bytes of a little-endian 64-bit word."""
    return (1 << (8 * k)) - 1


def each_byte(value: int) -> np.uint64:
    """`value` (a byte) repeated in all 8 bytes of a word."""
    return np.uint64(value * 0x0101_0101_0101_0101)


C01: Final = each_byte(0x01)
C22: Final = each_byte(0x22)  # '"'
C30: Final = each_byte(0x30)  # XOR with "0" maps the digits to 0-9 and "." to 0x1E
C1E: Final = each_byte(0x1E)
C76: Final = each_byte(0x76)  # ((x & 0x7F) + 0x76) | x has 0x80 set where x >= 10
C7A: Final = each_byte(0x7A)  # ... and with 0x7A, where x >= 6
C7F: Final = each_byte(0x7F)
C80: Final = each_byte(0x80)
# uint64 scalars for shifts and increments (numpy would promote a uint64 array and a Python int
# to float64 under its old rules).
# uint64 scalars for shifts and increments, ready-typed for uint64 arrays.
N1: Final = np.uint64(1)
N7: Final = np.uint64(7)
N8: Final = np.uint64(8)
N16: Final = np.uint64(16)
N32: Final = np.uint64(32)
N56: Final = np.uint64(56)
N63: Final = np.uint64(63)
BYTE_FF: Final = np.uint64(0xFF)
BYTE_INDEX: Final = np.uint64(0x0001_0203_0405_0607)  # ((1 << 8b) * this) >> 56 == b
# Below this many words `flag_positions` uses numpy's nonzero (its fixed cost, ~1 us, then outweighs
# another round of words).
_NONZERO_BELOW: Final = 4096


def zero_bytes(x: U64) -> U64:
    """0x80 in each zero byte of `x`, 0 in the others (exact, no false positives)."""
    t = x & C7F
    t += C7F
    t |= x
    t |= C7F
    np.invert(t, out=t)
    return t


def first_zero_flags(x: U64) -> U64:
    """0x80 in the lowest zero byte of `x` (and maybe in bytes above it: borrows), 0 below it.

    The classic `(x - 0x01..) & ~x & 0x80..`: one op cheaper than `zero_bytes`, and enough where only
    the first zero byte matters."""
    t = x - C01
    t &= ~x
    t &= C80
    return t


def first_byte(z: U64) -> Intp:
    """Index (0-7) of the lowest byte with its 0x80 bit set in each word (0 when there is none)."""
    low = z & (~z + N1)
    low >>= N7
    low *= BYTE_INDEX
    low >>= N56
    return low.view(np.intp)


def flag_positions(flags: U64, scratch: Bools) -> Intp:
    """Positions, in order, of the set bytes of `flags`: a bool array (bytes 0 or 1) viewed 8 bytes a word.

    numpy's nonzero costs a few instructions per element, which over every byte of a large buffer costs
    more than the rest of a scan. So only the words holding a set byte are found, then their set bytes,
    one round per set byte a word; and the words are found the same way, in a bool array of a byte per
    word, down to arrays small enough for nonzero. `scratch` must hold `scratch_size(len(flags))` bools.
    """
    n = len(flags)
    padded = -(-n // 8) * 8
    word_hits = scratch[:padded]
    np.not_equal(flags, 0, out=word_hits[:n])
    if n >= _NONZERO_BELOW:
        word_hits[n:] = False
        at = flag_positions(word_hits.view(np.uint64), scratch[padded:])
    else:
        at = np.flatnonzero(word_hits[:n])
    w = flags.take(at)  # bytes are 0 or 1
    base = at << 3
    low = w & (~w + N1)
    first: Intp = base + ((low * BYTE_INDEX) >> N56).view(np.intp)
    w ^= low
    more = np.flatnonzero(w != 0)
    if len(more) == 0:  # one set byte a word (the usual case: newlines, quotes)
        return first
    # Words holding several: each word's positions go to its own run of the output, the k-th set byte
    # at the run's start + k, so the result is in order without a sort (a sort of every position cost
    # ~10 % of a plain decode). A word's set-byte count is the top byte of w * 0x0101..01 (bytes 0/1).
    counts = ((flags.take(at) * C01) >> N56).view(np.intp)
    start = np.cumsum(counts) - counts
    out = np.empty(int(start[-1] + counts[-1]), np.intp)
    out[start] = first
    k = 0
    while len(more):
        k += 1
        w, base, start = w[more], base[more], start[more]
        low = w & (~w + N1)
        out[start + k] = base + ((low * BYTE_INDEX) >> N56).view(np.intp)
        w ^= low
        more = np.flatnonzero(w != 0)
    return out


def scratch_size(n_words: int) -> int:
    """The bools of scratch `flag_positions` needs for `n_words` words of flags."""
    size = 0
    while n_words >= _NONZERO_BELOW:
        n_words = -(-n_words // 8)
        size += 8 * n_words
    return size + n_words


class Run:
    """Consecutive 8-byte words read from a position per row: the k-th `next()` gives bytes pos + 8k ..
    pos + 8k + 7 of every row, combining two aligned words as ``(a >> 8r) | (b << (64 - 8r))`` for
    r = pos % 8 (the left shift in two steps, so that r = 0 shifts by 63 then 1: numpy's shifts by 64
    are undefined). Gathering from an unaligned view of the buffer is several times slower."""

    __slots__ = ("_follow", "_hi", "_index", "_lo", "_words")

    def __init__(self, words: U64, pos: Intp) -> None:
        self._words = words
        self._index = pos >> 3
        self._lo = ((pos & 7) << 3).view(np.uint64)
        self._hi = N63 - self._lo
        self._follow = words.take(self._index)

    def next(self) -> U64:
        self._index += 1
        follow = self._words.take(self._index)
        out = self._follow >> self._lo
        t = follow << self._hi
        t <<= N1
        out |= t
        self._follow = follow
        return out
