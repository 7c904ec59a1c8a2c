"""Decode raw request-log records (JSON / NDJSON bytes) into `EventBatch` columns: the `Decoder`.

A record is the payload of one Kafka message or one chunk of a file. It holds one JSON object per line
(NDJSON); a single JSON event is simply a one-line record. Blank lines (only spaces, tabs and `\\r`) and
a trailing newline are ignored, `\\r\\n` is tolerated. A JSON document spread over several lines (pretty
printed) is *not* supported: each of its lines is rejected as `malformed_json`.

Every non-blank line becomes exactly one valid event or exactly one rejection, counted by reason in a
`Rejections`. Nothing the bytes contain can make the decoder raise.

Where things live
-----------------
* `sloguard.ingest.rules`: `DecodeOptions` and the validity rules (status, latency, labels), stated once;
* `sloguard.ingest.reasons`: the rejection reasons, whose order is the precedence;
* `sloguard.ingest.timestamps`: the accepted timestamp formats and window, and their parsers;
* `sloguard.ingest.framing`: lines, pieces and dead-letter payloads; `lineindex`: their checks per buffer;
* `sloguard.ingest.fastpath` (with `labelcache` and `swar`): the byte-level fast path;
* `sloguard.ingest.explain`: why a line failed the typed decode.
This module keeps the `Decoder`, which sends each buffer down the fast path or the msgspec path, and
re-exports the names its callers import from here.

Speed
-----
Buffers of 160 KiB and more first go through the byte-level fast path: the lines in the common shape
(`{"ts": "...", "service": ...}` with the configured keys in order) are read straight from the bytes
with numpy, and only the 256 KiB pieces holding any other line take the msgspec path described next,
with exactly the same results.

The msgspec path does one `msgspec` call for the whole buffer (`decode_lines`) into a `gc=False` Struct,
pulls each field into a column, and validates the columns with numpy. Timestamps are parsed in bulk
(`parse_timestamps`). Only when the whole-buffer decode fails (a malformed line, a wrong type, a label
out of bounds) does the decoder fall back to decoding line by line, so that the good lines of a mixed
record are still kept and each bad line gets its own reason.

Buffers over 256 KiB are decoded in pieces cut at newlines (cache-sized, and a bad line only sends its
own piece down the per-line path). What msgspec's bulk decode does not check (one object a line, nesting
depth, line length, the UTF-8 of skipped strings) is checked per piece before its objects are taken:
for buffers of 16 KiB and more once per buffer with numpy (`sloguard.ingest.lineindex`), below that
with bytes methods (`framing`). `decode_many` joins its records into one buffer. Below 16 objects
numpy's fixed cost per call (tens of microseconds) dominates, so small batches are checked row by row
in plain Python (`timestamp_ms`), with the same rules; prefer `decode_many` over many `decode` calls.

Rejection precedence
--------------------
A line with several problems is counted once, under the first matching reason of `REASONS`.
Duplicate keys: the last occurrence wins, but every occurrence must have the right type.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Sequence
from typing import Annotated, Any, Final

import msgspec
import numpy as np

from sloguard.core.inputspec import InputSpec
from sloguard.core.model import EventBatch, Rejections, Vocabs
from sloguard.ingest.columns import Assembler, Columns
from sloguard.ingest.explain import DECODE_ERRORS, Explainer
from sloguard.ingest.fastpath import ByteScanner, Scan
from sloguard.ingest.framing import (
    JSON_WS,
    MAX_DEPTH,
    LineReasons,
    longest_line,
    maybe_too_deep,
    nesting_depth,
    non_blank_lines,
    one_per_line,
    payloads,
    pieces,
)
from sloguard.ingest.lineindex import LineIndex, LineIndexer
from sloguard.ingest.mapped import MappedDecoder, flat_options
from sloguard.ingest.reasons import (
    BAD_ENCODING,
    BAD_LATENCY,
    BAD_STATUS,
    BAD_TIMESTAMP,
    BAD_TYPE,
    EMPTY_LABEL,
    FUTURE_TIMESTAMP,
    LABEL_TOO_LONG,
    MALFORMED_JSON,
    MISSING_FIELD,
    NEGATIVE_LATENCY,
    NOT_AN_OBJECT,
    REASONS,
    TOO_LARGE,
)
from sloguard.ingest.rules import (
    DEFAULT_OPTIONS,
    FIELDS,
    DecodeOptions,
    LatencyUnit,
)
from sloguard.ingest.timestamps import parse_timestamps, timestamp_ms

__all__ = [
    "BAD_ENCODING",
    "BAD_LATENCY",
    "BAD_STATUS",
    "BAD_TIMESTAMP",
    "BAD_TYPE",
    "DEFAULT_OPTIONS",
    "EMPTY_LABEL",
    "FUTURE_TIMESTAMP",
    "LABEL_TOO_LONG",
    "MALFORMED_JSON",
    "MAX_DEPTH",
    "MISSING_FIELD",
    "NEGATIVE_LATENCY",
    "NOT_AN_OBJECT",
    "REASONS",
    "TOO_LARGE",
    "DecodeOptions",
    "DecodeStats",
    "Decoder",
    "LatencyUnit",
    "parse_timestamps",
    "timestamp_ms",
]

# Below this many objects numpy's fixed cost per call (about 40 us for a whole decode) outweighs its
# per-row savings, so the rows are validated in plain Python (measured break-even).
_SMALL_BATCH: Final = 16
# The fast path's scan costs ~0.35 ms per buffer whatever its size (a few hundred numpy calls), then
# ~0.23 us a line against msgspec's ~0.65: measured break-even about 140 KiB.
_FAST_MIN_BYTES: Final = 160 * 1024
# From this size on the checks of msgspec's bulk decode are done once per buffer with numpy
# (`LineIndex`), below it with bytes methods per piece (numpy's fixed cost per call dominates).
_INDEX_MIN_BYTES: Final = 16 * 1024
# After buffers the fast path could not read a whole piece of, it sits out up to this many (a scan that
# finds nothing costs ~5 % of a msgspec decode of the buffer).
_MAX_SKIPPED_SCANS: Final = 8


class Decoder:
    """Turns records of NDJSON request-log lines into an `EventBatch` and counted `Rejections`.

    Build one per `DecodeOptions` and reuse it: it compiles the msgspec decoders once. Between calls it
    keeps only caches that never change a result (the fast path's label ids and scratch buffer); the
    caller's `rejections` and `rejected` are mutated, and new labels are interned into `vocabs`. Not
    thread-safe.
    """

    __slots__ = (
        "_assembler",
        "_explainer",
        "_indexer",
        "_max_line",
        "_relaxed",
        "_scan_misses",
        "_scanner",
        "_skip_scans",
        "_strict",
        "mapped",
        "options",
        "stats",
        "vocabs",
    )

    def __init__(
        self,
        options: DecodeOptions = DEFAULT_OPTIONS,
        vocabs: Vocabs | None = None,
        *,
        fast_path: bool = True,
        input: InputSpec | None = None,
    ) -> None:
        # An input mapping the flat options cannot say is read by `sloguard.ingest.mapped` (`mapped`);
        # a flat one becomes the options, keeping the fast path.
        self.mapped: MappedDecoder | None = None
        if input is not None:
            flat = flat_options(input, options)
            if flat is None:
                self.mapped = MappedDecoder(input, options)
            options = flat or options
        self.options = options
        # Label columns come out as ids in these vocabularies; pass the aggregator's to skip re-coding.
        self.vocabs = vocabs if vocabs is not None else Vocabs()
        self._max_line = options.max_record_bytes
        self._assembler = Assembler(options)
        # The strict Struct checks label bounds inside msgspec, at C speed, on the hot path. A label out of
        # bounds fails the whole-buffer decode and sends it to the per-line path, which uses the relaxed
        # Struct and reports the label problem with the same precedence as every other value check.
        label = Annotated[str, msgspec.Meta(min_length=1, max_length=options.max_label_length)]
        customer = Annotated[str, msgspec.Meta(max_length=options.max_label_length)]
        self._strict: msgspec.json.Decoder[Any] = msgspec.json.Decoder(_struct(options, label, customer))
        self._relaxed: msgspec.json.Decoder[Any] = msgspec.json.Decoder(_struct(options, str, str))
        self._explainer = Explainer(options)
        self._indexer = LineIndexer(options.max_record_bytes)
        # Big buffers of lines in the common shape skip msgspec (see `sloguard.ingest.fastpath`);
        # `fast_path=False` keeps everything on the msgspec path (tests compare the two).
        self._scanner = ByteScanner.create(options, self.vocabs) if fast_path else None
        self.stats = DecodeStats()
        self._scan_misses = self._skip_scans = 0

    def decode(
        self,
        record: bytes,
        rejections: Rejections,
        rejected: list[tuple[str, bytes]] | None = None,
    ) -> EventBatch:
        """Decode one record (one JSON event or NDJSON lines) into a batch of valid events.

        Each rejected line is counted in `rejections`. If `rejected` is given, it also receives
        `(reason, payload)` per rejection, in line order, for a dead-letter topic: the payload is the whole
        record, byte for byte, when the record has a single non-blank line, else the offending line
        without its `\\n` / `\\r\\n` terminator.
        """
        return self.decode_many((record,), rejections, rejected)

    def decode_many(
        self,
        records: Sequence[bytes],
        rejections: Rejections,
        rejected: list[tuple[str, bytes]] | None = None,
        max_ts_ms: int | None = None,
    ) -> EventBatch:
        """Decode many records (e.g. one Kafka `getmany`) into one batch, in record then line order.

        Same contract as `decode`, record by record. With ``max_ts_ms``, otherwise valid events stamped
        later than it are rejected as `FUTURE_TIMESTAMP` (the daemon's clock-skew allowance), with their
        lines' bytes like any other rejection. The records are joined with `\\n` so that one
        msgspec call decodes them all; a record boundary is always a line boundary.
        """
        if self.mapped is not None:
            return self.mapped.decode_many(self.vocabs, records, rejections, rejected, max_ts_ms)
        if not records:
            return EventBatch.empty(self.vocabs)
        buf = records[0] if len(records) == 1 else b"\n".join(records)
        batch, bad = self._decode_buffer(buf)
        if max_ts_ms is not None and len(batch) and int(batch.ts_ms.max()) > max_ts_ms:
            batch, bad = _refuse_future(buf, batch, bad, max_ts_ms)
        if bad:
            for reason, n in Counter(reason for _, reason in bad).items():
                rejections.add(reason, n)
            if rejected is not None:
                rejected.extend(payloads(records, bad))
        return batch

    # -- internals -------------------------------------------------------------------------------------

    def _decode_buffer(self, buf: bytes) -> tuple[EventBatch, LineReasons]:
        """Valid events of `buf`, and `(line number, reason)` per rejected line (lines split on LF)."""
        if self._scanner is not None and len(buf) >= _FAST_MIN_BYTES:
            if self._scanner.vocabs is not self.vocabs:  # reassigned: the cached ids are another's
                self._scanner = ByteScanner.create(self.options, self.vocabs)
                return self._decode_buffer(buf)
            if self._skip_scans:
                self._skip_scans -= 1
            else:
                scan = self._scanner.scan(buf)
                if scan is not None:
                    self._scan_misses = 0
                    return self._decode_scanned(buf, scan)
                # Lines of other shapes (another producer): try again later, less often the longer it
                # lasts. Only speed depends on this: both paths give the same results.
                self._scan_misses = min(self._scan_misses + 1, _MAX_SKIPPED_SCANS)
                self._skip_scans = self._scan_misses
        if len(buf) < _INDEX_MIN_BYTES and len(pieces(buf)) == 1:
            return self._decode_piece(buf, 0)
        # Big buffers go piece by piece, cut at newlines: the Structs of a piece are freed before the
        # next one is decoded, so they stay in cache (about 2x faster than one huge decode_lines), and a
        # bad line only sends its own piece down the per-line path.
        index = self._indexer.index(buf)
        batches: list[EventBatch] = []
        bad: list[tuple[int, str]] = []
        # Consecutive pieces decoded in bulk are assembled together (`Columns.concat`): the numpy work of
        # the value rules is then paid once for all of them.
        run: list[tuple[int, Columns]] = []  # (piece, its columns)
        for k in range(len(index.pieces)):
            objs = self._bulk_objects(buf, index, k)
            if objs is not None and len(objs) > _SMALL_BATCH:
                self.stats.bulk += len(objs)
                run.append((k, self._assembler.columns(objs, self.vocabs)))
                continue
            if run:
                self._assemble_run(buf, index, run, batches, bad)
                run = []
            if objs is None:
                batch, piece_bad = self._decode_per_line(buf[slice(*index.pieces[k])], index.first_line[k])
            else:
                batch, piece_bad = self._take_bulk(objs, buf, *index.pieces[k], index.first_line[k])
            batches.append(batch)
            bad += piece_bad
        if run:
            self._assemble_run(buf, index, run, batches, bad)
        return EventBatch.concat(batches), bad

    def _assemble_run(
        self,
        buf: bytes,
        index: LineIndex,
        run: list[tuple[int, Columns]],
        batches: list[EventBatch],
        bad: LineReasons,
    ) -> None:
        """Append the batch of a run of pieces decoded in bulk, and their rejected lines (numbered in
        `buf`), to `batches` and `bad`."""
        batch, bad_rows = self._assembler.batch(Columns.concat([cols for _, cols in run]), self.vocabs)
        batches.append(batch)
        if not bad_rows:
            return
        # Row r of the run is row r - offsets[i] of its i-th piece, the k-th non-blank line of that piece.
        offsets = np.cumsum([0] + [len(cols) for _, cols in run]).tolist()
        row_lines: dict[int, list[int]] = {}
        for row, reason in bad_rows:
            i = bisect.bisect_right(offsets, row) - 1
            k = run[i][0]
            if k not in row_lines:
                row_lines[k] = non_blank_lines(buf[slice(*index.pieces[k])])
            bad.append((index.first_line[k] + row_lines[k][row - offsets[i]], reason))

    def _bulk_objects(self, buf: bytes, index: LineIndex, k: int) -> list[Any] | None:
        """The objects of piece `k` of `buf` in one msgspec call, if `index` allows it and they sit one a
        line; else None (the piece goes line by line)."""
        if not index.bulk_ok(k):
            return None
        start, end = index.pieces[k]
        try:
            # A view, not a copy: msgspec reads any buffer.
            objs: list[Any] = self._strict.decode_lines(memoryview(buf)[start:end])
        except DECODE_ERRORS:
            return None
        if objs and not index.one_per_line(k, len(objs)):
            return None
        return objs

    def _decode_scanned(self, buf: bytes, scan: Scan) -> tuple[EventBatch, LineReasons]:
        """Rows the fast path read, and the msgspec path for every piece holding a row it did not.

        Pieces are processed in order and new labels interned row by row within each, so the vocabularies
        grow exactly as they would on the msgspec path alone.
        """
        ok = scan.ok
        if bool(ok.all()):
            for labels in scan.labels:
                labels.resolve(buf, 0, len(ok))
            self.stats.fast += len(ok)
            return scan.batch(0, len(ok)), []
        batches: list[EventBatch] = []
        bad: list[tuple[int, str]] = []
        run: list[int] = []  # first and last row of the pending run of fast pieces
        index: LineIndex | None = None
        for k, (start, end) in enumerate(pieces(buf)):
            r0, r1 = np.searchsorted(scan.starts, (start, end)).tolist()
            if bool(ok[r0:r1].all()):
                for labels in scan.labels:
                    labels.resolve(buf, r0, r1)
                self.stats.fast += r1 - r0
                run = [run[0] if run else r0, r1]
                continue
            if run:
                batches.append(scan.batch(run[0], run[1]))
                run = []
            index = index or self._indexer.index(buf)  # the same pieces
            batch, piece_bad = self._decode_indexed(buf, index, k)
            batches.append(batch)
            bad += piece_bad
        if run:
            batches.append(scan.batch(run[0], run[1]))
        return EventBatch.concat(batches), bad

    def _decode_indexed(self, buf: bytes, index: LineIndex, k: int) -> tuple[EventBatch, LineReasons]:
        """Piece `k` of `buf`: in one msgspec call if `index` allows it and its objects sit one a line,
        else line by line. Rejected lines are numbered in `buf`."""
        start, end = index.pieces[k]
        first_line = index.first_line[k]
        objs = self._bulk_objects(buf, index, k)
        if objs is None:
            return self._decode_per_line(buf[start:end], first_line)
        return self._take_bulk(objs, buf, start, end, first_line)

    def _decode_piece(self, buf: bytes, first_line: int) -> tuple[EventBatch, LineReasons]:
        objs = self._decode_whole(buf)
        if objs is None:
            return self._decode_per_line(buf, first_line)
        return self._take_bulk(objs, buf, 0, len(buf), first_line)

    def _take_bulk(
        self, objs: list[Any], buf: bytes, start: int, end: int, first_line: int
    ) -> tuple[EventBatch, LineReasons]:
        """The batch of the objects msgspec decoded from `buf[start:end]` in one call, and its rejected
        lines."""
        self.stats.bulk += len(objs)
        batch, bad_rows = self._assemble(objs, ())
        if not bad_rows:
            return batch, []
        # Row i is the i-th non-blank line; only worth mapping when something was rejected.
        row_lines = non_blank_lines(buf[start:end])
        return batch, [(first_line + row_lines[row], reason) for row, reason in bad_rows]

    def _decode_whole(self, buf: bytes) -> list[Any] | None:
        """The hot path: the objects of `buf` if it is clean NDJSON with one object per line, else None."""
        if maybe_too_deep(buf):
            return None
        if not buf.isascii():
            try:
                buf.decode("utf-8")
            except UnicodeDecodeError:
                return None
        if len(buf) > self._max_line and longest_line(buf) > self._max_line:
            return None
        try:
            objs: list[Any] = self._strict.decode_lines(buf)
        except DECODE_ERRORS:
            return None
        if not objs:
            return objs  # only JSON whitespace: no non-blank line
        return objs if one_per_line(buf, len(objs)) else None

    def _decode_per_line(self, buf: bytes, first_line: int) -> tuple[EventBatch, LineReasons]:
        """The fallback: decode line by line so each bad line gets its reason and good lines survive."""
        check_size = len(buf) > self._max_line
        check_utf8 = not buf.isascii()
        strict, relaxed = self._strict.decode, self._relaxed.decode
        objs: list[Any] = []
        obj_lines: list[int] = []
        unchecked: list[int] = []  # rows decoded by the relaxed Struct: labels still to check
        bad: list[tuple[int, str]] = []
        for i, line in enumerate(buf.split(b"\n"), first_line):
            if check_size and len(line) > self._max_line:
                if line.strip(JSON_WS):
                    bad.append((i, TOO_LARGE))
                continue
            if check_utf8 and not line.isascii():
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError:
                    bad.append((i, BAD_ENCODING))
                    continue
            if maybe_too_deep(line) and nesting_depth(line) > MAX_DEPTH:
                bad.append((i, MALFORMED_JSON))
                continue
            try:
                obj = strict(line)
            except DECODE_ERRORS:
                if not line.strip(JSON_WS):
                    continue
                try:
                    obj = relaxed(line)
                except DECODE_ERRORS:
                    bad.append((i, self._explainer.explain(line)))
                    continue
                unchecked.append(len(objs))
            objs.append(obj)
            obj_lines.append(i)
        self.stats.per_line += len(objs) + len(bad)
        batch, bad_rows = self._assemble(objs, unchecked)
        if bad_rows:
            bad.extend((obj_lines[row], reason) for row, reason in bad_rows)
            bad.sort()
        return batch, bad

    def _assemble(self, objs: list[Any], unchecked: Sequence[int]) -> tuple[EventBatch, LineReasons]:
        """The batch of the valid objects, and `(row, reason)` for the others (see `Assembler.batch`)."""
        n = len(objs)
        if n == 0:
            return EventBatch.empty(self.vocabs), []
        if n <= _SMALL_BATCH:
            return self._assembler.small(objs, self.vocabs)
        return self._assembler.batch(self._assembler.columns(objs, self.vocabs), self.vocabs, unchecked)


class DecodeStats:
    """How many non-blank lines each decode path read, for benchmarks and tests: `fast` (the byte fast
    path), `bulk` (msgspec, a whole piece in one call) and `per_line` (msgspec line by line: a piece
    holding a line the bulk decode refused, e.g. a malformed one). Rejected lines count where they were
    judged."""

    __slots__ = ("bulk", "fast", "per_line")

    def __init__(self) -> None:
        self.fast = self.bulk = self.per_line = 0

    def as_dict(self) -> dict[str, int]:
        return {"fast": self.fast, "bulk": self.bulk, "per_line": self.per_line}


def _struct(options: DecodeOptions, label: Any, customer: Any) -> type[msgspec.Struct]:
    """The decoding Struct, its label types given (strict: bounded by `msgspec.Meta`; relaxed: `str`)."""
    # kw_only lets the optional customer sit among required fields; gc=False because millions of
    # these are created and they never form cycles.
    return msgspec.defstruct(
        "RequestLogEvent",
        [
            ("ts", str | int | float),
            ("service", label),
            ("endpoint", label),
            ("customer", customer | None, None),
            ("status", int),
            ("latency", float),
        ],
        kw_only=True,
        gc=False,
        rename=dict(zip(FIELDS, options.field_names(), strict=True)),
    )


def _refuse_future(
    buf: bytes, batch: EventBatch, bad: LineReasons, max_ts_ms: int
) -> tuple[EventBatch, LineReasons]:
    """`batch` without its events stamped after ``max_ts_ms``, and their lines added to ``bad``.

    Row k of a batch is the k-th non-blank line that was not rejected (both decode paths keep line
    order), which gives each refused event its line.
    """
    future = batch.ts_ms > max_ts_ms
    rejected_lines = {line for line, _ in bad}
    accepted = [i for i in non_blank_lines(buf) if i not in rejected_lines]
    if len(accepted) != len(batch):  # cannot happen; never mis-attribute bytes if it did
        raise AssertionError("decoded rows do not match the accepted lines")
    refused = [(accepted[row], FUTURE_TIMESTAMP) for row in np.flatnonzero(future).tolist()]
    return batch.take(np.flatnonzero(~future)), sorted(bad + refused)
