"""Line framing: how a buffer of NDJSON is cut into lines, pieces and dead-letter payloads.

A record (a Kafka message, a chunk of a file) holds one JSON object per line; `decode_many` joins records
with `\\n`, so a record boundary is always a line boundary. Blank lines (only `JSON_WS`) are skipped, a
trailing newline is ignored and `\\r\\n` is tolerated. Lines are numbered from 0 across the joined
buffer, and rejections are `(line number, reason)` pairs until `payloads` turns them into the bytes a
dead-letter topic receives.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Final, TypeAlias

import numpy as np

__all__ = [
    "JSON_WS",
    "MAX_DEPTH",
    "PIECE_BYTES",
    "SMALL_LINE_CHECK",
    "LineReasons",
    "is_utf8",
    "longest_line",
    "maybe_too_deep",
    "nesting_depth",
    "non_blank_lines",
    "one_per_line",
    "payloads",
    "pieces",
]

LineReasons: TypeAlias = list[tuple[int, str]]
"""`(line or row number, reason)` of rejected lines."""

JSON_WS: Final = b" \t\r"  # JSON whitespace besides "\n", which separates lines
PIECE_BYTES: Final = 256 * 1024  # decode big buffers in pieces of about this size (cache-sized)
# Below this many objects numpy's fixed cost per call outweighs its per-line savings (measured).
SMALL_LINE_CHECK: Final = 64

#: Deepest nesting of arrays/objects accepted in a line. msgspec's own limit is the interpreter's
#: recursion limit less the caller's stack depth, so the same line could pass in one caller and fail in
#: another; this fixed limit (far below it) makes the verdict depend on the line alone.
MAX_DEPTH: Final = 64


def maybe_too_deep(buf: bytes) -> bool:
    """Cheap test: False means no line of ``buf`` nests deeper than MAX_DEPTH.

    A line nested d deep holds at least d opening brackets, so no line with at most MAX_DEPTH of them
    can be too deep. Every line starting with "{" holds one at least, so no line holds more than the
    buffer's brackets less those lines but one: usually that settles it with three counts. Otherwise the
    brackets are counted line by line. (Big buffers are checked by `lineindex.LineIndex` instead.)"""
    opens = buf.count(b"[") + buf.count(b"{")
    if opens - buf.count(b"\n{") - buf.startswith(b"{") + 1 <= MAX_DEPTH:
        return False
    return max(line.count(b"[") + line.count(b"{") for line in buf.split(b"\n")) > MAX_DEPTH


def nesting_depth(line: bytes) -> int:
    """Deepest nesting of ``[``/``{`` outside strings (only for the rare lines `maybe_too_deep` flags)."""
    depth = deepest = 0
    in_string = escaped = False
    for c in line:
        if in_string:
            if escaped:
                escaped = False
            elif c == 0x5C:  # backslash
                escaped = True
            elif c == 0x22:  # quote
                in_string = False
        elif c == 0x22:
            in_string = True
        elif c in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif c in (0x5D, 0x7D):
            depth -= 1
    return deepest


def pieces(buf: bytes) -> list[tuple[int, int]]:
    """`buf` cut into pieces of about `PIECE_BYTES` at newlines: (start, end) byte ranges, the cutting
    newline in neither."""
    if len(buf) <= PIECE_BYTES:
        return [(0, len(buf))]
    out = []
    start = 0
    while start < len(buf):
        cut = buf.find(b"\n", start + PIECE_BYTES)
        end = len(buf) if cut < 0 else cut
        out.append((start, end))
        start = end + 1
    return out


def longest_line(buf: bytes) -> int:
    """Length of the longest line of `buf`, terminator excluded."""
    nl = np.flatnonzero(np.frombuffer(buf, np.uint8) == 10)
    return int(np.diff(nl, prepend=-1, append=len(buf)).max()) - 1


def one_per_line(buf: bytes, n_objects: int) -> bool:
    """Whether the `n_objects` top-level values msgspec found in `buf` sit one per non-empty line.

    msgspec's decode_lines ignores line structure: two objects on one line, or one object over two lines,
    both decode. So every non-empty line must start with "{" and end with "}" (or "}\r"), and there must be
    `n_objects` of them. Then every line boundary is "}", newlines, "{", which JSON only allows *between*
    top-level values, so each such line holds at least one value, and equal counts mean exactly one each.
    (A blank line of spaces fails the test and takes the per-line path, which skips it.) A few lines are
    checked without numpy (its per-call cost).
    """
    if n_objects <= SMALL_LINE_CHECK:
        return _one_per_line_small(buf, n_objects)
    return _one_per_line_exact(buf, n_objects)


def _one_per_line_exact(buf: bytes, n_objects: int) -> bool:
    """`one_per_line` with numpy: a compare and a few gathers (bytes.count would cost ~0.5 ns a byte per
    pattern)."""
    a = np.frombuffer(buf, np.uint8)
    nl = np.flatnonzero(a == 10)
    starts = np.empty(len(nl) + 1, np.intp)  # lines are [starts[i], ends[i])
    starts[0] = 0
    starts[1:] = nl + 1
    ends = np.empty_like(starts)
    ends[:-1] = nl
    ends[-1] = len(buf)
    filled = ends > starts
    s = starts[filled]
    e = ends[filled] - 1
    if len(s) != n_objects:
        return False
    last = a[e]
    ok = (a[s] == 123) & ((last == 125) | ((last == 13) & (e > s) & (a[np.maximum(e - 1, 0)] == 125)))
    return bool(ok.all())


def _one_per_line_small(buf: bytes, n_objects: int) -> bool:
    """`one_per_line` without numpy's per-call overhead, for a few lines."""
    lines = [line for line in buf.split(b"\n") if line]
    return len(lines) == n_objects and all(line[0] == 123 and line.endswith((b"}", b"}\r")) for line in lines)


def payloads(records: Sequence[bytes], bad: LineReasons) -> list[tuple[str, bytes]]:
    """Dead-letter payloads for rejected lines, given as line numbers of `b"\\n".join(records)`."""
    # Record r spans count("\n") + 1 lines of the joined buffer.
    first_line: list[int] = []
    total = 0
    for record in records:
        first_line.append(total)
        total += record.count(b"\n") + 1
    out: list[tuple[str, bytes]] = []
    split: dict[int, list[bytes] | None] = {}  # record -> its lines, None if it has one non-blank line
    for line_no, reason in bad:
        r = bisect.bisect_right(first_line, line_no) - 1
        if r not in split:
            lines = records[r].split(b"\n")
            split[r] = lines if sum(1 for x in lines if x.strip(JSON_WS)) > 1 else None
        lines_or_none = split[r]
        if lines_or_none is None:
            out.append((reason, records[r]))
        else:
            line = lines_or_none[line_no - first_line[r]]
            out.append((reason, line[:-1] if line.endswith(b"\r") else line))
    return out


def is_utf8(data: bytes) -> bool:
    """Whether `data` is UTF-8 (msgspec does not check the strings it skips, so the decoder must)."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def non_blank_lines(buf: bytes) -> list[int]:
    """Numbers of the non-blank lines of `buf`: row k of a decode is line `non_blank_lines(buf)[k]`."""
    return [i for i, line in enumerate(buf.split(b"\n")) if line.strip(JSON_WS)]
