"""A big buffer's lines, found once for all its pieces: what msgspec's bulk decode cannot check itself.

`decode_lines` reads a whole piece of NDJSON in one call, but it does not see lines, does not check the
UTF-8 of the strings it skips and nests as deep as the interpreter's recursion limit allows. So before a
piece's objects are taken, every one of its lines must hold exactly one object (`framing.one_per_line`
states why the test below proves it), be at most `max_record_bytes` long and nest at most `MAX_DEPTH`
deep, and the piece must be UTF-8. A piece failing any of these takes the per-line path, which judges
each line on its own; only speed depends on which path a piece takes.

Done piece by piece with bytes methods these checks cost about twice msgspec's decode of realistic lines
(~600 bytes, a nested object or two). `LineIndex` does them once per buffer with numpy, on word-wise
flags (`swar.flag_positions`): the positions of its newlines, of its ``{`` and ``[`` and of its non-ASCII
words; then per-line arrays (length, first and last byte, brackets) reduced per piece.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from sloguard._types import U8, Bools, Intp
from sloguard.ingest.framing import MAX_DEPTH, is_utf8, pieces
from sloguard.ingest.swar import flag_positions, scratch_size

__all__ = ["LineIndex", "LineIndexer"]

_OPEN_BRACE: Final = 0x7B
_CLOSE_BRACE: Final = 0x7D
_CR: Final = 0x0D
_LF: Final = 0x0A
_BYTE_SUM: Final = np.uint64(0x0101_0101_0101_0101)
_TOP_BYTE: Final = np.uint64(56)
_HIGH_BITS: Final = np.uint64(0x8080_8080_8080_8080)


class LineIndex:
    """One buffer's lines and pieces (`framing.pieces`), and per piece whether it may be decoded in bulk."""

    __slots__ = ("_bulk_ok", "_filled", "_shape_ok", "first_line", "pieces")

    def __init__(
        self,
        cuts: list[tuple[int, int]],
        first_line: list[int],
        bulk_ok: list[bool],
        filled: list[int],
        shape_ok: list[bool],
    ) -> None:
        self.pieces = cuts  # (start, end) byte ranges, as `framing.pieces` cuts them
        self.first_line = first_line  # number of each piece's first line in the buffer
        self._bulk_ok = bulk_ok
        self._filled = filled  # non-empty lines per piece
        self._shape_ok = shape_ok  # every non-empty line starts with "{" and ends with "}" or "}\r"

    def bulk_ok(self, k: int) -> bool:
        """Whether piece `k` is UTF-8 and has no line nesting deeper than MAX_DEPTH or too long (as far as
        a count of its brackets can tell: a line with more than MAX_DEPTH of them is not ok)."""
        return self._bulk_ok[k]

    def one_per_line(self, k: int, n_objects: int) -> bool:
        """`framing.one_per_line` for piece `k`, given how many objects msgspec found in it."""
        return self._shape_ok[k] and self._filled[k] == n_objects


class LineIndexer:
    """Builds `LineIndex`es, reusing its scratch arrays from buffer to buffer. Not thread-safe."""

    __slots__ = ("_flags", "_max_line", "_scratch", "_words")

    def __init__(self, max_line: int) -> None:
        self._max_line = max_line
        self._flags = np.zeros(0, np.bool_)
        self._words = np.zeros(0, np.uint64)
        self._scratch = np.zeros(0, np.bool_)

    def index(self, buf: bytes) -> LineIndex:
        """The lines and pieces of `buf` (not empty) and each piece's verdicts."""
        size = len(buf)
        self._reserve(size)
        a = np.frombuffer(buf, np.uint8)
        flags = self._flags[: -(-size // 8) * 8]
        np.equal(a, _LF, out=flags[:size])
        flags[size:] = False
        nl = flag_positions(flags.view(np.uint64), self._scratch)
        starts = np.empty(len(nl) + 1, np.intp)  # line i is [starts[i], ends[i])
        starts[0] = 0
        starts[1:] = nl + 1
        ends = np.empty_like(starts)
        ends[:-1] = nl
        ends[-1] = size
        cuts = pieces(buf)
        first = np.searchsorted(starts, [start for start, _ in cuts]).astype(np.intp)
        lengths = ends - starts
        filled = lengths > 0
        too_long = np.maximum.reduceat(lengths, first) > self._max_line
        deep = self._too_deep(buf, starts, ends, first)
        return LineIndex(
            cuts,
            first.tolist(),
            (~too_long & ~deep & self._utf8(buf, cuts)).tolist(),
            np.add.reduceat(filled, first, dtype=np.intp).tolist(),
            np.logical_and.reduceat(_shape_ok(a, starts, ends, filled), first).tolist(),
        )

    def _reserve(self, size: int) -> None:
        if len(self._flags) < -(-size // 8) * 8 + 8:
            padded = -(-(size + size // 4) // 8) * 8 + 8
            self._flags = np.zeros(padded, np.bool_)
            self._words = np.zeros(padded // 8, np.uint64)
            self._scratch = np.zeros(scratch_size(padded // 8), np.bool_)

    def _too_deep(self, buf: bytes, starts: Intp, ends: Intp, first: Intp) -> Bools:
        """Per piece: whether a line holds more than MAX_DEPTH brackets (``{`` or ``[``), as a line
        nesting deeper than that must.

        Each line is first charged every bracket of the 8-byte words it touches (numpy: a count per word,
        summed per line), which is at most 14 more than it holds; only the lines charged more than
        MAX_DEPTH are counted exactly, in Python."""
        size = len(buf)
        padded = -(-size // 8) * 8 + 8  # and a word of zeros: the last line's "newline word"
        is_open = self._flags[:padded]
        folded = is_open.view(np.uint8)  # the same memory: each byte is folded, then compared in place
        np.bitwise_or(np.frombuffer(buf, np.uint8), 0x20, out=folded[:size])  # "[" (0x5B) -> "{" (0x7B)
        np.equal(folded[:size], _OPEN_BRACE, out=is_open[:size])
        is_open[size:] = False
        per_word = self._words[: padded // 8]
        np.multiply(is_open.view(np.uint64), _BYTE_SUM, out=per_word)  # bytes 0 or 1: their sum, top byte
        per_word >>= _TOP_BYTE
        # A line's words run from its first to the word before the next line's first; add the word of
        # its newline (shared with the next line, or counted twice: a bound still). Lines starting in
        # one word get that word's count (reduceat's rule for an empty range): a bound too.
        charged = np.add.reduceat(per_word.view(np.intp), starts >> 3)
        charged += per_word.view(np.intp).take(ends >> 3)
        suspects = np.flatnonzero(charged > MAX_DEPTH)
        deep = np.zeros(len(first), np.bool_)
        for line in suspects.tolist():
            text = buf[int(starts[line]) : int(ends[line])]
            if text.count(b"{") + text.count(b"[") > MAX_DEPTH:
                deep[np.searchsorted(first, line, side="right") - 1] = True
        return deep

    def _utf8(self, buf: bytes, cuts: list[tuple[int, int]]) -> Bools:
        """Per piece: whether its bytes are UTF-8.

        Only the 8-byte words holding a byte >= 128 and the word after each are decoded, joined (with the
        bytes after the last whole word). Valid text is ASCII bytes and multi-byte sequences made of bytes
        >= 128 only, so it is UTF-8 exactly when each run of such bytes is. Each run lies whole in the
        selected words, and joined they still end each run where it ended (the word after a run's last
        word is selected, and a selected word followed by one that is not is all ASCII) and start it where
        it started (the word before the first of a run is ASCII, or it would be selected).
        """
        n = len(cuts)
        if buf.isascii():
            return np.ones(n, np.bool_)
        n_words = len(buf) // 8
        words = np.frombuffer(buf, np.uint64, count=n_words)
        high = self._words[:n_words]
        np.bitwise_and(words, _HIGH_BITS, out=high)
        hit = self._flags[: -(-n_words // 8) * 8]
        np.not_equal(high, 0, out=hit[:n_words])
        hit[n_words:] = False
        at = flag_positions(hit.view(np.uint64), self._scratch)
        both = np.empty(2 * len(at), np.intp)  # each word and the next: non-decreasing
        both[0::2] = at
        both[1::2] = at + 1
        keep = np.empty(len(both), np.bool_)
        keep[:1] = True
        np.not_equal(both[1:], both[:-1], out=keep[1:])
        selected = both[keep]
        text = words.take(selected[selected < n_words]).tobytes() + buf[n_words * 8 :]
        if is_utf8(text):
            return np.ones(n, np.bool_)
        return np.array([is_utf8(buf[start:end]) for start, end in cuts], np.bool_)


def _shape_ok(a: U8, starts: Intp, ends: Intp, filled: Bools) -> Bools:
    """Per line: empty, or starting with "{" and ending with "}" or "}\\r" (`a` is not empty)."""
    last_at = np.maximum(ends - 1, 0)
    first_byte = a.take(np.minimum(starts, len(a) - 1))
    last = a.take(last_at)
    before_last = a.take(np.maximum(last_at - 1, 0))
    closes = (last == _CLOSE_BRACE) | ((last == _CR) & (ends - starts >= 2) & (before_last == _CLOSE_BRACE))
    ok: Bools = ~filled | ((first_byte == _OPEN_BRACE) & closes)
    return ok
