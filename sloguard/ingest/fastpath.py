"""The byte-level fast path: big buffers of lines in the common shape, read straight from the bytes.

Most request logs are written by one encoder, so every line has the same shape:

    {"ts": "…", "service": "…", "endpoint": "…", "customer": "…", "status": 200, "latency_ms": 12.5}

(the keys of `DecodeOptions` in that order, with `json.dumps`'s or compact separators). For a big
buffer `ByteScanner` checks every line against that shape with numpy, on the raw bytes and without a
Python object per line: 8-byte words are read from every line at once (rows in parallel), constant
text is compared word by word, and each string value is scanned for its closing quote. A line passes
only if it is exactly that shape, holds a valid event, and has nothing that needs a JSON decoder's
judgement: no backslash, no byte above 127, no control character (but a CRLF terminator), labels of
1 to 128 bytes, a valid status, a latency of at most 15 digits with at most one point. Such a
line is valid JSON and means exactly what its bytes say, so its values are read from the bytes:

* ts: `sloguard.ingest.timestamps.parse_words`, the column parser working on 8-byte words;
* status: its three digits;
* latency: its digits as an exact integer M (SWAR: 8 digits per 64-bit word), then M / 10**f with f
  the digits after the point. M < 10**15 < 2**53 and 10**f are exact doubles, so the one IEEE division
  is the correctly rounded value of the decimal, which is what msgspec (and `float`) return;
* labels: vocabulary ids from `LabelCache`, verified byte for byte.

Any other line sends the 256 KiB piece holding it (`framing.pieces`) down the msgspec
path. So a record's batch, its rejections, its dead letters and even the order in which labels enter
the vocabularies are exactly what the msgspec path alone gives (tests/unit/ingest/test_fastpath.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, TypeAlias

import numpy as np
import numpy.typing as npt

from sloguard._types import F64, I64, U8, U64, Bools, Intp
from sloguard.core.model import EventBatch, LabelColumn, Vocabs
from sloguard.ingest.framing import pieces
from sloguard.ingest.labelcache import LABEL_WORDS, LabelCache, LabelScan
from sloguard.ingest.rules import MAX_LATENCY_MS, STATUS_MAX, STATUS_MIN, DecodeOptions, LatencyScale
from sloguard.ingest.swar import (
    BYTE_FF,
    C01,
    C1E,
    C7F,
    C22,
    C30,
    C76,
    C80,
    N7,
    N8,
    N16,
    N32,
    N56,
    Run,
    first_byte,
    first_zero_flags,
    flag_positions,
    low_bytes,
    scratch_size,
    zero_bytes,
)
from sloguard.ingest.timestamps import IS_ZULU, LAYOUTS, TS_WIDTH, in_window, parse_words

__all__ = ["ByteScanner", "Scan"]

I32: TypeAlias = npt.NDArray[np.int32]

_MAX_LATENCY_CHARS: Final = 15  # digits and point: M < 10**15 < 2**53, exact as a double
_LANES8: Final = np.uint64(0x00FF_00FF_00FF_00FF)
_LANES16: Final = np.uint64(0x0000_FFFF_0000_FFFF)
_LANES32: Final = np.uint64(0x0000_0000_FFFF_FFFF)
_POW10_I64: Final = 10 ** np.arange(19, dtype=np.int64)
_POW10_F64: Final = _POW10_I64.astype(np.float64)

# [k, n]: mask of word k (bytes 8k .. 8k + 7) of an n-byte string.
_STRING_MASKS: Final = np.array([low_bytes(k) for k in range(9)], np.uint64)[
    np.clip(np.arange(8 * LABEL_WORDS + 9)[None, :] - 8 * np.arange(LABEL_WORDS + 1)[:, None], 0, 8)
]
# [k, n]: mask of word k of the 16 bytes that end with a line's closing brace (column 15) for a latency
# of n chars (columns 15 - n .. 14).
_LATENCY_MASKS: Final = np.array(
    [
        [low_bytes(8) & ~low_bytes(min(15 - n, 8)) for n in range(_MAX_LATENCY_CHARS + 1)],
        [low_bytes(7) & ~low_bytes(max(7 - n, 0)) for n in range(_MAX_LATENCY_CHARS + 1)],
    ],
    dtype=np.uint64,
)


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
            words.append((np.uint64(value), None if mask == low_bytes(8) else np.uint64(mask)))
        return cls(len(text), tuple(words))

    def read(self, words: U64, pos: Intp) -> list[U64]:
        run = Run(words, pos)
        return [run.next() for _ in self.words]

    def check(self, read: list[U64], ok: Bools) -> None:
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


class Scan:
    """What the fast path read from a buffer: per non-empty line (a "row"), its values and whether it
    passed."""

    __slots__ = ("labels", "latency_ms", "newlines", "ok", "starts", "status", "ts_ms")

    def __init__(
        self,
        newlines: Intp,
        starts: Intp,
        ok: Bools,
        ts_ms: I64,
        status: I32,
        latency_ms: F64,
        labels: tuple[LabelScan, LabelScan, LabelScan],
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


class ByteScanner:
    """The fast path: reads the lines of the expected shape straight from the bytes (module docstring)."""

    __slots__ = (
        "_caches",
        "_hits",
        "_max_label",
        "_max_line",
        "_pad",
        "_scale",
        "_scratch",
        "_templates",
        "_word_hits",
        "vocabs",
    )

    def __init__(self, options: DecodeOptions, vocabs: Vocabs, templates: tuple[_Template, ...]) -> None:
        self.vocabs = vocabs
        self._templates = templates
        self._caches = (
            LabelCache(vocabs.service),
            LabelCache(vocabs.endpoint),
            LabelCache(vocabs.customer),
        )
        self._max_line = options.max_record_bytes
        self._max_label = min(options.max_label_length, 8 * LABEL_WORDS)
        self._scale = LatencyScale(options.latency_unit)
        # Zero bytes after a buffer's copy. Whatever a row holds, every read stays within them: a read
        # starts at most a template's constant text plus four values' maximum lengths past a row start.
        longest = max(t.head.length + sum(s.length for s in t.seps) + t.tail.length for t in templates)
        self._pad = 8 * (-(-(2 * (longest + TS_WIDTH + 3 * 8 * (LABEL_WORDS + 1) + 64)) // 8))
        self._scratch = np.zeros(0, np.uint8)
        self._hits = np.zeros(0, np.bool_)
        self._word_hits = np.zeros(0, np.bool_)

    @classmethod
    def create(cls, options: DecodeOptions, vocabs: Vocabs) -> ByteScanner | None:
        """A scanner for `options`, or None when a field name would need JSON escapes."""
        names = options.field_names()
        plain = all(n.isascii() and n.isprintable() and '"' not in n and "\\" not in n for n in names)
        if not plain or not np.little_endian:
            return None
        return cls(options, vocabs, (_Template.of(names, b": ", b", "), _Template.of(names, b":", b",")))

    def _copy(self, buf: bytes) -> U8:
        """`buf` then zero bytes, 8-byte aligned, in scratch arrays reused from call to call."""
        need = -(-len(buf) // 8) * 8 + self._pad
        if len(self._scratch) < need:
            self._scratch = np.empty((need + need // 4) // 8 * 8, np.uint8)
            self._hits = np.empty(len(self._scratch), np.bool_)
            self._word_hits = np.empty(scratch_size(len(self._scratch) // 8), np.bool_)
        arr = self._scratch[:need]
        arr[: len(buf)] = np.frombuffer(buf, np.uint8)
        arr[len(buf) :] = 0
        return arr

    def _control_chars(self, arr: U8, size: int) -> Intp:
        """Positions of the bytes below 32 (mostly "\\n")."""
        return self._byte_positions(arr, size, np.less, 32)

    def _byte_positions(self, arr: U8, size: int, compare: np.ufunc, value: int) -> Intp:
        """Positions of the bytes of ``arr[:size]`` where ``compare(byte, value)``, found word by word:
        numpy's nonzero over every byte of a large buffer costs more than the rest of the scan."""
        hits = self._hits[: len(arr)]
        compare(arr, value, out=hits)
        hits[size:] = False
        return flag_positions(hits.view(np.uint64), self._word_hits)

    def scan(self, buf: bytes) -> Scan | None:
        """Read every row of `buf`; None if none has the expected shape (then it is all msgspec's)."""
        size = len(buf)
        arr = self._copy(buf)
        a = arr[:size]
        words: U64 = arr.view(np.uint64)

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
        template = self._template(words, starts)
        if template is None:
            return None
        template.head.check(template.head.read(words, starts), ok)
        if not _any_whole_piece(buf, starts, ok):
            return None  # every piece has a line of another shape: msgspec reads them all anyway
        # Escapes and non-ASCII text are msgspec's to judge.
        if b"\\" in buf:
            ok[np.searchsorted(starts, self._byte_positions(arr, size, np.equal, 92), side="right") - 1] = (
                False
            )
        if not buf.isascii():
            high = self._byte_positions(arr, size, np.greater_equal, 128)
            ok[np.searchsorted(starts, high, side="right") - 1] = False
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
        return Scan(newlines, starts, ok, ts_ms, status, latency, (service, endpoint, customer))

    def _template(self, words: U64, starts: Intp) -> _Template | None:
        """The first template whose head begins one of the first rows."""
        probe = starts[:8]
        for template in self._templates:
            ok = np.ones(len(probe), np.bool_)
            template.head.check(template.head.read(words, probe), ok)
            if ok.any():
                return template
        return None

    @staticmethod
    def _string(words: U64, at: Intp, ok: Bools, limit: int) -> tuple[Intp, list[U64]]:
        """Length of the string value starting at `at` (up to the first quote: ok rows have no backslash),
        and its words, zero past its end. Rows with no quote in `limit` bytes fail."""
        run = Run(words, at)
        length = np.zeros(len(at), np.intp)
        pending = ok.copy()
        out: list[U64] = []
        for k in range(-(-(limit + 1) // 8)):
            x = run.next()
            out.append(x)
            quote = first_zero_flags(x ^ C22)
            hit = quote != 0
            hit &= pending
            if hit.any():
                found = first_byte(quote)
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

    def _label(self, cache: LabelCache, words: U64, at: Intp, ok: Bools) -> LabelScan:
        length, label_words = self._string(words, at, ok, self._max_label)
        h = cache.hashes(label_words, length)
        return LabelScan(cache, at, length, label_words, h, cache.lookup(label_words, length, h))

    def _timestamps(self, buf: bytes, words: U64, at: Intp, ok: Bools) -> tuple[Intp, I64]:
        """Length and value of each row's ts string, parsed by `parse_words` per string length."""
        n = len(at)
        ms = np.zeros(n, np.int64)
        parsed = np.zeros(n, np.bool_)
        # Guess the length from the first row that could be of the shape and parse every row's first
        # `guess` chars. A row whose string is longer fails the next literal (its opening quote is not
        # there); only rows whose first `guess` chars do not parse are scanned for their quote.
        first = int(at[int(np.argmax(ok))])
        guess = buf.find(b'"', first, first + TS_WIDTH + 1) - first
        guess = guess if 0 < guess <= TS_WIDTH else TS_WIDTH
        run = Run(words, at)
        self._parse_ts([run.next() for _ in range(-(-guess // 8))], guess, slice(None), ms, parsed)
        length = np.full(n, guess, np.intp)
        others = np.flatnonzero(ok & ~parsed)
        if len(others):
            other_len, other_words = self._string(words, at[others], ok[others], TS_WIDTH)
            length[others] = other_len
            for width in np.unique(other_len[other_len > 0]).tolist():
                sel = np.flatnonzero(other_len == width)
                sub_words = [w[sel] for w in other_words[: -(-width // 8)]]
                self._parse_ts(sub_words, width, others[sel], ms, parsed)
        ok &= parsed
        ok &= in_window(ms)
        return length, ms

    @staticmethod
    def _parse_ts(words: list[U64], width: int, rows: Intp | slice, ms: I64, parsed: Bools) -> None:
        """Parse `width`-char ts strings from their words into `ms[rows]` and `parsed[rows]`."""
        last = (words[(width - 1) // 8] >> np.uint64(8 * ((width - 1) % 8))) & BYTE_FF
        zulu = IS_ZULU.take(last.view(np.intp))
        for z in (True, False):
            layout = LAYOUTS[width, z]
            sel = zulu if z else ~zulu
            if layout is None or not sel.any():
                continue
            if bool(sel.all()):
                part, part_ok = parse_words(words, layout)
                ms[rows] = part
                parsed[rows] = part_ok
            else:
                idx = np.flatnonzero(sel)
                part, part_ok = parse_words([w[idx] for w in words], layout)
                target = idx if isinstance(rows, slice) else rows[idx]
                ms[target] = part
                parsed[target] = part_ok

    @staticmethod
    def _status(tail: list[U64], at: int, ok: Bools) -> I32:
        """The three status digits at offset `at` of the tail, within [STATUS_MIN, STATUS_MAX]: the valid
        statuses are all three-digit JSON integers (no leading zeros or signs), and any other length fails
        the template."""
        digits = []
        for i in range(at, at + 3):
            d = (tail[i // 8] >> np.uint64(8 * (i % 8))) & BYTE_FF
            digits.append(d.astype(np.int32) - 48)
        hundreds, tens, ones = digits
        # With tens and ones digits, the range check leaves only the hundreds digits of the range.
        ok &= (tens >= 0) & (tens <= 9) & (ones >= 0) & (ones <= 9)
        status = hundreds * 100
        status += tens * 10
        status += ones
        ok &= (status >= STATUS_MIN) & (status <= STATUS_MAX)
        return status

    def _latency(self, words: U64, start: Intp, brace: Intp, ok: Bools) -> F64:
        """The latency number from `start` to the closing brace, in ms (see the module docstring)."""
        n_chars = brace - start
        ok &= (n_chars >= 1) & (n_chars <= _MAX_LATENCY_CHARS)
        n_chars[~ok] = 1
        # Columns 0-15: the 16 bytes that end with the brace. The number fills columns 15 - n .. 14.
        run = Run(words, np.maximum(brace - 15, 0))
        x0, x1 = run.next(), run.next()
        ok &= (x1 >> N56) == 0x7D  # "}"
        x0 ^= C30
        x0 &= _LATENCY_MASKS[0].take(n_chars)  # bytes before the number read as leading zeros
        x1 ^= C30
        x1 &= _LATENCY_MASKS[1].take(n_chars)
        point0 = zero_bytes(x0 ^ C1E)  # 0x80 in each byte that was "."
        point1 = zero_bytes(x1 ^ C1E)
        ok &= ((((x0 & C7F) + C76) | x0) & C80) == point0  # every byte >= 10 is a point ...
        ok &= ((((x1 & C7F) + C76) | x1) & C80) == point1
        ok &= (((point0 >> N7) + (point1 >> N7)) * C01 >> N56) <= 1  # ... and there is one at most
        ok &= (point1 & np.uint64(0x80 << 48)) == 0  # not last
        col = 15 - n_chars
        lead = self._byte_at(x0, x1, col)
        ok &= lead != 0x1E  # not first
        second = self._byte_at(x0, x1, col + 1)
        ok &= (lead != 0) | (n_chars == 1) | (second == 0x1E)  # no leading zero but in "0" and "0.5"
        has_point = (point0 | point1) != 0
        frac = np.where(point0 != 0, 14 - first_byte(point0), 6 - first_byte(point1))
        frac[~has_point] = 0
        # The 16 columns as one integer (the point as a 0 digit): 8 digits per word, SWAR.
        x0 &= ~((point0 >> N7) * BYTE_FF)
        x1 &= ~((point1 >> N7) * BYTE_FF)
        halves = []
        for v in (x0, x1):
            v = (v * np.uint64(10) + (v >> N8)) & _LANES8
            v = (v * np.uint64(100) + (v >> N16)) & _LANES16
            v = (v * np.uint64(10_000) + (v >> N32)) & _LANES32
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
        self._scale.to_ms_inplace(latency)
        ok &= latency <= MAX_LATENCY_MS
        return latency

    @staticmethod
    def _byte_at(x0: U64, x1: U64, col: Intp) -> U64:
        """Byte `col` (0-15) of the 16 bytes held by words x0 (0-7) and x1 (8-15)."""
        w = np.where(col < 8, x0, x1)
        w >>= ((col & 7) << 3).view(np.uint64)
        w &= BYTE_FF
        return w


def _any_whole_piece(buf: bytes, starts: Intp, ok: Bools) -> bool:
    """Whether some piece of `buf` (`framing.pieces`) has all its rows still `ok`: the decoder sends any
    other piece down the msgspec path, so scanning further would be wasted (lines of another shape, such
    as extra keys or another key order, spread through the buffer)."""
    if bool(ok.all()):
        return True
    first_rows = np.searchsorted(starts, [start for start, _ in pieces(buf)])
    first_rows = first_rows[first_rows < len(ok)]
    return bool(np.logical_and.reduceat(ok, first_rows).any())
