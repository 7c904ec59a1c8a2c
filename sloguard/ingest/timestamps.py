"""Event timestamps to int64 epoch milliseconds: RFC 3339 strings, epoch milliseconds, epoch seconds.

The `ts` field accepts

* RFC 3339 strings: `YYYY-MM-DD(T|t| )HH:MM:SS[.F]` then `Z`/`z` or `±HH:MM`; `F` is 1 to 9 digits.
  Second 60 (leap second), missing offsets and other ISO 8601 forms are rejected.
* JSON integers: epoch milliseconds.
* JSON floats: epoch seconds. They are first rounded to the microsecond exactly as
  `datetime.fromtimestamp` does (round half to even), then floored to the millisecond.

Sub-millisecond precision is floored (toward minus infinity) to an int64 epoch millisecond. The instant
must fall in [2000-01-01, 2100-01-01) UTC (`in_window`), otherwise the line is `bad_timestamp`; this also
catches epoch seconds sent as an integer, which would land in 1970.

Three parsers give the same answers (the tests check it): `parse_timestamps` on columns (strings become
a `uint8` matrix and the calendar arithmetic is done on columns, `parse_layout`), `parse_words` on the
8-byte words the fast path reads, and `timestamp_ms`, one value at a time for small batches, written
independently with a regex and `datetime`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import numpy as np

from sloguard._types import F64, I64, U8, U64, Bools, Intp
from sloguard.ingest.rules import int64_column
from sloguard.ingest.swar import BYTE_FF, C7A, C7F, C30, C76, N8

__all__ = [
    "DAY_MS",
    "IS_ZULU",
    "LAYOUTS",
    "MAX_TS_MS",
    "MIN_TS_MS",
    "TS_WIDTH",
    "Layout",
    "in_window",
    "parse_layout",
    "parse_timestamps",
    "parse_words",
    "timestamp_ms",
]

MIN_TS_MS: Final = 946_684_800_000  # 2000-01-01T00:00:00Z
MAX_TS_MS: Final = 4_102_444_800_000  # 2100-01-01T00:00:00Z, excluded
DAY_MS: Final = 86_400_000


def in_window(ms: I64) -> Bools:
    """Which instants fall in the accepted window, [2000-01-01, 2100-01-01) UTC."""
    return (ms >= MIN_TS_MS) & (ms < MAX_TS_MS)


# Two ASCII digits combine into a uint8 "pair" of at most 255 even when the row is garbage, so tables
# indexed by pairs are sized for 0-255 and never need clamping: garbage rows are flagged, not trapped.
_YEARS: Final = 256 * 100 + 256  # year = pair * 100 + pair


def _calendar_tables() -> tuple[I64, Intp, I64, I64]:
    """Lookup tables for the proleptic Gregorian calendar (RFC 3339's), by year and by month.

    Returns days from 1970-01-01 to January 1st of each year (Hinnant's days_from_civil), a leap flag
    per year, and, indexed by `leap * 256 + month`, the days before the month and the days in the month
    (0 for a month outside 1-12, which makes every day of it invalid).
    """
    y = np.arange(_YEARS, dtype=np.int64) - 1  # January counts in the previous March-based year
    era = y // 400  # floor division, right for y = -1 too
    yoe = y - era * 400
    doe = yoe * 365 + yoe // 4 - yoe // 100 + 306  # 306 = days from March 1st to January 1st
    year_days = era * 146_097 + doe - 719_468
    years = np.arange(_YEARS)
    leap = ((years % 4 == 0) & ((years % 100 != 0) | (years % 400 == 0))).astype(np.intp)
    before = np.zeros(512, np.int64)
    dim = np.zeros(512, np.int64)
    for is_leap in (0, 1):
        lengths = [31, 28 + is_leap, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        dim[is_leap * 256 + 1 : is_leap * 256 + 13] = lengths
        before[is_leap * 256 + 1 : is_leap * 256 + 13] = np.cumsum([0, *lengths[:-1]])
    return year_days, leap, before, dim


_YEAR_DAYS, _LEAP, _DAYS_BEFORE_MONTH, _DAYS_IN_MONTH = _calendar_tables()


def _byte_set(chars: bytes) -> Bools:
    table = np.zeros(256, np.bool_)
    table[list(chars)] = True
    return table


_IS_DATE_TIME_SEP: Final = _byte_set(b"Tt ")
IS_ZULU: Final = _byte_set(b"Zz")
_IS_SIGN: Final = _byte_set(b"+-")
_SIGN_OF: Final = np.zeros(256, np.int64)
_SIGN_OF[ord("+")], _SIGN_OF[ord("-")] = 1, -1

TS_WIDTH: Final = 35  # the longest RFC 3339 form: 19 + "." + 9 digits + "+HH:MM"
_ONES: Final = np.ones(TS_WIDTH, np.float32)


@dataclass(frozen=True, slots=True)
class Layout:
    """Where everything sits in RFC 3339 strings of one length and one zone kind (Z or offset)."""

    length: int
    zulu: bool  # ends in "Z" rather than in an offset
    tz: int  # column of "Z" or of the offset sign
    lo: U8  # per column: row - lo must be <= span (uint8 arithmetic wraps)
    span: U8
    first: Intp  # per pair of digits: column of the tens digit
    second: Intp  # per pair of digits: column of the units digit
    hours: tuple[int, ...]  # pairs that are hours (<= 23): the time's, and the offset's if any
    weights: F64  # pairs @ weights = (time of day ms, offset ms)


def _make_layout(length: int, zulu: bool) -> Layout | None:
    """The layout of `length`-char strings ending in Z (`zulu`) or in an offset; None if impossible."""
    tz = length - (1 if zulu else 6)
    rest = tz - 19  # "" or "." and 1-9 fraction digits
    if rest < 0 or rest == 1 or rest > 10:
        return None
    n_frac = max(rest - 1, 0)
    # Column kinds: D a digit, 5 a digit up to 5 (tens of minutes and seconds), ? anything (checked
    # separately with a byte set), else that literal char.
    spec = list("DDDD-DD-DD?DD:5D:5D")
    if n_frac:
        spec += ["."] + ["D"] * n_frac
    spec += ["?"] if zulu else ["?", "D", "D", ":", "5", "D"]
    lo = np.zeros(length, np.uint8)
    span = np.zeros(length, np.uint8)
    for col, kind in enumerate(spec):
        if kind in "D5":
            lo[col], span[col] = ord("0"), 9 if kind == "D" else 5
        elif kind == "?":
            lo[col], span[col] = 0, 255
        else:
            lo[col], span[col] = ord(kind), 0
    # (tens column, units column, time-of-day ms weight, offset ms weight). Column 4 is "-", whose
    # value relative to lo is 0 in every valid row: pairing it with a lone digit yields that digit.
    # Month and day are range-checked with the calendar tables, minutes and seconds by their tens digit
    # (so a leap second, :60, is rejected), hours explicitly.
    pairs: list[tuple[int, int, int, int]] = [
        (0, 1, 0, 0),  # century
        (2, 3, 0, 0),  # year of century
        (5, 6, 0, 0),  # month
        (8, 9, 0, 0),  # day
        (11, 12, 3_600_000, 0),  # hour
        (14, 15, 60_000, 0),  # minute
        (17, 18, 1000, 0),  # second
    ]
    hours = [4]
    if n_frac == 1:
        pairs.append((4, 20, 100, 0))
    elif n_frac >= 2:
        pairs.append((20, 21, 10, 0))
    if n_frac >= 3:
        pairs.append((4, 22, 1, 0))  # digits after the third are floored away (but validated)
    if not zulu:
        hours.append(len(pairs))
        pairs += [(tz + 1, tz + 2, 0, 3_600_000), (tz + 4, tz + 5, 0, 60_000)]
    cols = np.array(pairs, dtype=np.int64)
    return Layout(
        length=length,
        zulu=zulu,
        tz=tz,
        lo=lo,
        span=span,
        first=cols[:, 0].astype(np.intp),
        second=cols[:, 1].astype(np.intp),
        hours=tuple(hours),
        weights=cols[:, 2:4].astype(np.float64),
    )


LAYOUTS: Final = {(n, z): _make_layout(n, z) for n in range(TS_WIDTH + 1) for z in (False, True)}


def parse_timestamps(values: Sequence[object]) -> tuple[I64, Bools]:
    """Event timestamps to int64 epoch milliseconds, vectorised; see the module docstring for formats.

    Returns `(ms, ok)`: `ok[i]` is False when `values[i]` is not an accepted timestamp (wrong format or
    type, invalid date, outside [2000-01-01, 2100-01-01) UTC); `ms[i]` is 0 there. Sub-millisecond
    precision is floored. Values may mix strings, ints and floats; bools and other types are not ok.
    """
    n = len(values)
    if n and type(values[0]) is str:
        try:
            joined = "\0".join(values)  # type: ignore[arg-type]  # TypeError unless all are str
        except TypeError:
            pass
        else:
            ms, ok = _parse_joined(joined, values, n)  # type: ignore[arg-type]
            ok &= in_window(ms)
            ms[~ok] = 0
            return ms, ok
    kinds = set(map(type, values))
    if kinds == {str}:
        ms, ok = _parse_rfc3339(values)  # type: ignore[arg-type]  # kinds proves they are all str
    elif kinds == {int}:
        ms, ok = _from_epoch_ms(values)  # type: ignore[arg-type]
    else:
        ms = np.zeros(n, np.int64)
        ok = np.zeros(n, np.bool_)
        # Mixed types (rare): convert each kind on its own rows; other types stay not ok.
        for kind in (str, int, float):
            if kind not in kinds:
                continue
            idx = [i for i, v in enumerate(values) if type(v) is kind]
            part: list[Any] = [values[i] for i in idx]
            if kind is str:
                ms[idx], ok[idx] = _parse_rfc3339(part)
            elif kind is int:
                ms[idx], ok[idx] = _from_epoch_ms(part)
            else:
                ms[idx], ok[idx] = _from_epoch_s(part)
    ok &= in_window(ms)
    ms[~ok] = 0
    return ms, ok


_RFC3339: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:[Zz]|([+-])(\d{2}):(\d{2}))",
    re.ASCII,
)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL: Final = _EPOCH.toordinal()
_ONE_MS: Final = timedelta(milliseconds=1)


def timestamp_ms(value: object) -> int | None:
    """One timestamp to epoch milliseconds, or None if not accepted: the row-by-row `parse_timestamps`.

    Written independently of the vectorised parser (regex and `datetime`) and used for small batches;
    the tests check that both agree.
    """
    if type(value) is str:
        match = _RFC3339.fullmatch(value)
        if match is None:
            return None
        year, month, day, hour, minute, second, frac, sign, off_hour, off_minute = match.groups()
        if int(hour) > 23 or int(minute) > 59 or int(second) > 59:
            return None
        try:
            days = date(int(year), int(month), int(day)).toordinal() - _EPOCH_ORDINAL
        except ValueError:  # no such day (or year 0, out of the window anyway)
            return None
        seconds = ((days * 24 + int(hour)) * 60 + int(minute)) * 60 + int(second)
        ms = seconds * 1000 + (int(frac[:3].ljust(3, "0")) if frac else 0)
        if sign:
            if int(off_hour) > 23 or int(off_minute) > 59:
                return None
            offset = (int(off_hour) * 60 + int(off_minute)) * 60_000
            ms -= offset if sign == "+" else -offset
    elif type(value) is int:
        ms = value
    elif type(value) is float:
        if not 9e8 < value < 5e9:
            return None
        ms = (datetime.fromtimestamp(value, UTC) - _EPOCH) // _ONE_MS
    else:
        return None
    return ms if MIN_TS_MS <= ms < MAX_TS_MS else None


def _from_epoch_ms(values: list[int]) -> tuple[I64, Bools]:
    ms = int64_column(values)
    return ms, np.ones(len(ms), np.bool_)


def _from_epoch_s(values: list[float]) -> tuple[I64, Bools]:
    """Epoch seconds -> ms, rounding to the microsecond like CPython's datetime.fromtimestamp, then flooring.

    CPython splits with modf, rounds the fraction * 1e6 half to even and carries; np.rint is half to
    even too, so the two agree bit for bit.
    """
    s = np.array(values, dtype=np.float64)
    ok = (s > 9e8) & (s < 5e9)  # loose window (NaN and inf fail it); the exact one is applied later
    s = np.where(ok, s, 0.0)
    whole = np.trunc(s)
    us = np.rint((s - whole) * 1e6)
    carry = us >= 1e6
    whole += carry
    us -= carry * 1e6
    return whole.astype(np.int64) * 1000 + us.astype(np.int64) // 1000, ok


def _parse_joined(joined: str, values: Sequence[str], n: int) -> tuple[I64, Bools]:
    """`_parse_rfc3339` of `values`, given joined with NULs: the usual column, ASCII strings of one length
    and one zone kind, is read as a char matrix straight from the joined bytes, without a Python call per
    string. `ms` is unchecked against the window."""
    width = len(values[0])
    if 0 < width <= TS_WIDTH and len(joined) == n * (width + 1) - 1 and joined.isascii():
        m = np.frombuffer(joined.encode("ascii") + b"\0", np.uint8).reshape(n, width + 1)
        # One length: column `width` holds the n NULs (n - 1 separators and the one appended), and they
        # are the only NULs (a string holding one would be longer or shorter, or miscount).
        if not m[:, width].any() and np.count_nonzero(m) == n * width:
            zulu = IS_ZULU[m[:, width - 1]]
            if bool(zulu.all()) or not zulu.any():
                return parse_layout(m, LAYOUTS[width, bool(zulu[0])])
    return _parse_rfc3339(list(values))


def _parse_rfc3339(values: list[str]) -> tuple[I64, Bools]:
    """Parse RFC 3339 strings in bulk (see module docstring). `ms` is unchecked against the window."""
    n = len(values)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.bool_)
    # True lengths matter: numpy would silently truncate longer strings and drop trailing NULs.
    lengths = np.fromiter(map(len, values), np.intp, n)
    lo, hi = int(lengths.min()), int(lengths.max())
    if lo == hi <= TS_WIDTH:
        # The usual case, one length: the joined ASCII bytes already are the row-major char matrix.
        try:
            joined = "".join(values).encode("ascii")
        except UnicodeEncodeError:
            pass
        else:
            m = np.frombuffer(joined, np.uint8).reshape(n, lo)
            last = m[:, lo - 1] if lo else np.zeros(n, np.uint8)
            zulu = IS_ZULU[last]
            if bool(zulu.all()) or not zulu.any():
                return parse_layout(m, LAYOUTS[lo, bool(zulu[0])])
    if hi > TS_WIDTH:
        values = [v if len(v) <= TS_WIDTH else "" for v in values]
        lengths[lengths > TS_WIDTH] = 0
    try:
        chars = np.array(values, dtype=f"S{TS_WIDTH}")
    except UnicodeEncodeError:  # a non-ASCII string cannot be RFC 3339
        is_ascii = np.fromiter((v.isascii() for v in values), np.bool_, n)
        values = [v if v.isascii() else "" for v in values]
        lengths[~is_ascii] = 0
        chars = np.array(values, dtype=f"S{TS_WIDTH}")
    m = chars.view(np.uint8).reshape(n, TS_WIDTH)
    # Group rows by (length, ends in Z): within a group every field sits at a fixed column.
    zulu = IS_ZULU[m[np.arange(n), np.maximum(lengths - 1, 0)]]
    key = lengths * 2 + zulu
    ms = np.zeros(n, np.int64)
    ok = np.zeros(n, np.bool_)
    for k in np.flatnonzero(np.bincount(key)).tolist():
        rows = np.flatnonzero(key == k)
        ms[rows], ok[rows] = parse_layout(m[rows], LAYOUTS[k // 2, bool(k % 2)])
    return ms, ok


def parse_layout(m: U8, layout: Layout | None) -> tuple[I64, Bools]:
    """Parse the rows of char matrix `m` (at least `layout.length` wide), all laid out as `layout`."""
    n = m.shape[0]
    if layout is None:
        return np.zeros(n, np.int64), np.zeros(n, np.bool_)
    rel = m[:, : layout.length] - layout.lo  # digit columns: the digit's value
    # Count out-of-bounds chars per row with a matmul: numpy's row reductions (.all(axis=1)) cost about
    # 10 ns a row whatever the width, a float32 matmul a third of that.
    ok = (rel > layout.span).astype(np.float32) @ _ONES[: layout.length] == 0
    ok &= _IS_DATE_TIME_SEP[m[:, 10]]
    zone = m[:, layout.tz]
    ok &= (IS_ZULU if layout.zulu else _IS_SIGN)[zone]
    pairs = rel[:, layout.first] * np.uint8(10) + rel[:, layout.second]  # wraps harmlessly on garbage
    for hour in layout.hours:
        ok &= pairs[:, hour] <= 23
    year = pairs[:, 0].astype(np.intp) * 100 + pairs[:, 1]
    month = pairs[:, 2]
    day = pairs[:, 3].astype(np.int64)
    leap_month = _LEAP[year] * 256 + month
    ok &= (day >= 1) & (day <= _DAYS_IN_MONTH[leap_month])
    days = _YEAR_DAYS[year] + _DAYS_BEFORE_MONTH[leap_month] + day - 1
    # One small float matmul gives time of day and offset, exact: every value is far below 2**53.
    tod_off = (pairs.astype(np.float64) @ layout.weights).astype(np.int64)
    ms: I64 = days * DAY_MS + tod_off[:, 0]
    # Local time minus the offset is UTC ("+02:00" is two hours ahead); Z rows have a zero offset.
    ms -= _SIGN_OF[zone] * tod_off[:, 1]
    return ms, ok


_WordCheck = tuple[np.uint64, np.uint64, np.uint64, np.uint64]  # literal value, literal mask, <= 9, <= 5


@functools.cache
def _word_checks(length: int, zulu: bool) -> tuple[_WordCheck, ...]:
    """Per 8-byte word of an RFC 3339 string laid out as `LAYOUTS[length, zulu]`: the literal chars
    (value and mask), and a 0x80 in each byte that must be a digit, or a digit up to 5."""
    layout = LAYOUTS[length, zulu]
    assert layout is not None
    checks = []
    for k in range(-(-length // 8)):
        value = mask = digit = digit5 = 0
        for col in range(8 * k, min(8 * k + 8, length)):
            shift = 8 * (col % 8)
            lo, span = int(layout.lo[col]), int(layout.span[col])
            if span == 0:
                value |= lo << shift
                mask |= 0xFF << shift
            elif span == 9:
                digit |= 0x80 << shift
            elif span == 5:
                digit5 |= 0x80 << shift
        checks.append((np.uint64(value), np.uint64(mask), np.uint64(digit), np.uint64(digit5)))
    return tuple(checks)


def parse_words(words: Sequence[U64], layout: Layout) -> tuple[I64, Bools]:
    """`parse_layout` for strings given as little-endian 8-byte words (the fast path reads them so).

    The character classes are checked a word at a time (SWAR): XOR with "0" maps the digits, and only
    them, to 0-9; a byte's 0x80 bit in ``((x & 0x7F) + 0x76) | x`` is set exactly when it is >= 10.
    Pairs of digits are read the same way: in ``x * 10 + (x >> 8)`` byte j is 10 x[j] + x[j + 1].
    Rows that fail a check get garbage values (as in `parse_layout`), always in the tables' bounds.
    """
    n = len(words[0])
    ok = np.ones(n, np.bool_)
    checks = _word_checks(layout.length, layout.zulu)
    lows = _word_lows(layout.length, layout.zulu)
    values: list[U64] = []  # per word: each byte minus its class's low end (digit values)
    tens: list[U64] = []  # per word: byte j is 10 * values[j] + values[j + 1]
    for w, (value, mask, digit, digit5), (lo, keep) in zip(words, checks, lows, strict=False):
        if mask:
            ok &= (w & mask) == value
        x = w ^ C30
        low = x & C7F
        if digit:
            ok &= (((low + C76) | x) & digit) == 0
        if digit5:
            ok &= (((low + C7A) | x) & digit5) == 0
        x = w ^ lo
        x &= keep  # the free-form columns ("T", zone) are 0: no carries into their neighbours' bytes
        values.append(x)
        t = x * np.uint64(10)
        t += x >> N8
        tens.append(t)

    def byte(arrays: list[U64], col: int) -> U64:
        return (arrays[col // 8] >> np.uint64(8 * (col % 8))) & BYTE_FF

    ok &= _IS_DATE_TIME_SEP.take(byte(list(words), 10).view(np.intp))
    zone = byte(list(words), layout.tz).view(np.intp)
    ok &= (IS_ZULU if layout.zulu else _IS_SIGN).take(zone)
    pairs = [
        byte(tens, f)
        if s == f + 1 and f % 8 < 7
        else (byte(values, f) * np.uint64(10) + byte(values, s)) & BYTE_FF
        for f, s in zip(layout.first.tolist(), layout.second.tolist(), strict=True)
    ]
    for hour in layout.hours:
        ok &= pairs[hour] <= 23
    year = (pairs[0] * np.uint64(100) + pairs[1]).view(np.intp)
    month = pairs[2].view(np.intp)
    day = pairs[3].view(np.int64)
    leap_month = _LEAP.take(year) * 256 + month
    ok &= (day >= 1) & (day <= _DAYS_IN_MONTH.take(leap_month))
    ms: I64 = _YEAR_DAYS.take(year) + _DAYS_BEFORE_MONTH.take(leap_month) + day - 1
    ms *= DAY_MS
    offset = np.zeros(n, np.int64)
    for pair, (to_day, to_offset) in zip(pairs, layout.weights.astype(np.int64).tolist(), strict=True):
        if to_day:
            ms += pair.view(np.int64) * np.int64(to_day)
        if to_offset:
            offset += pair.view(np.int64) * np.int64(to_offset)
    if not layout.zulu:
        ms -= _SIGN_OF.take(zone) * offset
    return ms, ok


@functools.cache
def _word_lows(length: int, zulu: bool) -> tuple[tuple[np.uint64, np.uint64], ...]:
    """Per 8-byte word of an RFC 3339 string laid out as `LAYOUTS[length, zulu]`: each column's low
    end ("0" for digits, the char itself for literals), so that XOR gives digit values (and 0), and a
    mask of the columns that are digits or literals."""
    layout = LAYOUTS[length, zulu]
    assert layout is not None
    out = []
    for k in range(-(-length // 8)):
        lo = keep = 0
        for col in range(8 * k, min(8 * k + 8, length)):
            lo |= int(layout.lo[col]) << (8 * (col % 8))
            if int(layout.span[col]) != 255:
                keep |= 0xFF << (8 * (col % 8))
        out.append((np.uint64(lo), np.uint64(keep)))
    return tuple(out)
