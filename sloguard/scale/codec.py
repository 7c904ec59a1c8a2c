"""The partial record: one piece of a partial, for one partials partition, as Kafka record bytes.

Format (version 2)::

    magic       b"SLGPART\\n"            8 bytes
    version     u16 little-endian       2 (a reader refuses any other: version 1's body was a checkpoint)
    index       u32                     this record is piece ``index`` of ``count`` for its partition
    count       u32
    partition   u32                     the partials partition it was made for
    partitions  u32                     the partials topic's partition count when it was made
    input_part  u32                     the input partition, and the range [start, end) it summarises
    start       u64
    end         u64
    fingerprint 16 bytes                `config_fingerprint` of the SLO file (and decode options)
    topic_len   u16, topic UTF-8        the input topic
    body        zlib (level 1) of:
      meta_len  u32, meta               JSON: ``[events, newest_ms, oldest_ms, slos, latency]``; ``slos``
                                        one ``[keys, too_old, events]`` per SLO of the file, in its order
                                        (``keys``: the series' label values; ``[]`` when the range
                                        touched none), ``latency`` ``[keys, too_old]`` or null
      ints      little-endian int64s    per SLO: ``len(row_events)``, then per ring (fine, coarse)
                                        ``res_ms, n, head, low, rows, cells``; then its ``row_events``
                                        and each ring's ``cells``, ``total``, ``bad`` (sparse, as
                                        `RingState`). Latency: ``len(row_events)``, rings, per ring
                                        ``slot_ms, n, head, low, buckets, keys``; then ``row_events`` and
                                        each ring's ``buckets``, ``lengths``, ``keys``, ``counts``
                                        (`HistRingState`). None (a ring never moved) is INT64_MIN.

The body names no SLO and no spec fingerprint: the header's ``fingerprint`` names the SLO file, and a
piece is read into an `AggregatorState` (`Piece.state`) only with that file's `Config`, after the
fingerprint is checked. Decoding is one zlib call, one JSON parse and one ``np.frombuffer``; the arrays
are slices of that buffer, so reading a piece costs its cells and its SLOs' few header ints, not a
checkpoint's per-array decoding.

A piece larger than ``max_bytes`` is cut by series into several records, all naming the same range, each
with its ``index``/``count``: halving the series list until each half fits, so the cut depends only on
the piece (the same range read again by another owner gives byte-identical records). Counters that
belong to no series go in record 0 only.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from sloguard._types import I64, Intp
from sloguard.checkpoint import CheckpointError
from sloguard.core.spec import Config
from sloguard.core.state import (
    AggregatorState,
    HistRingState,
    LatencyState,
    RingState,
    SeriesState,
    SloState,
    fingerprint,
)
from sloguard.scale.partials import InputRange, PartialError, take

__all__ = ["FORMAT_VERSION", "MAGIC", "Body", "Piece", "decode_piece", "encode_piece", "encode_pieces"]

MAGIC = b"SLGPART\n"
FORMAT_VERSION = 2
_HEAD = struct.Struct("<8sHIIIIIQQ16sH")

#: Default record cap: below Kafka's default max.message.bytes (1 MiB + 12 bytes) with room for the
#: record's own overhead.
DEFAULT_MAX_BYTES = 900 * 1024


class PieceTooLargeError(ValueError):
    """One series' counts for one range do not fit in a record (raise the cap or cut ranges shorter)."""


_U32 = struct.Struct("<I")
_NONE = np.iinfo(np.int64).min
_EMPTY = np.zeros(0, np.int64)


@dataclass(frozen=True, slots=True)
class Body:
    """A piece's body as read (`decode_piece`), before it meets a `Config` (`Piece.state`)."""

    meta: list[Any]
    ints: I64


@dataclass(frozen=True, slots=True)
class Piece:
    """One record's worth of a partial: piece ``index`` of ``count`` for partials ``partition``; its
    counts are ``body`` (a `Body` when decoded, an `AggregatorState` when made to be encoded)."""

    range: InputRange
    fingerprint: bytes
    partition: int
    partitions: int
    index: int
    count: int
    body: AggregatorState | Body

    def state(self, config: Config, fingerprints: Fingerprints | None = None) -> AggregatorState:
        """The piece's counts read with ``config`` (the SLO file its ``fingerprint`` names) and its
        `spec_fingerprints` (computed here if not given). Raises `PartialError` if the body does not
        fit ``config``'s SLOs."""
        if isinstance(self.body, AggregatorState):
            return self.body
        return _read_body(self.body, config, fingerprints or spec_fingerprints(config))


def _head(p: Piece) -> bytes:
    topic = p.range.topic.encode()
    r = p.range
    fixed = _HEAD.pack(
        MAGIC,
        FORMAT_VERSION,
        p.index,
        p.count,
        p.partition,
        p.partitions,
        r.partition,
        r.start,
        r.end,
        p.fingerprint,
        len(topic),
    )
    return fixed + topic


def _opt(v: int | None) -> int:
    return _NONE if v is None else v


def _ring_ints(r: RingState) -> list[int]:
    return [r.res_ms, r.n, _opt(r.head), _opt(r.low), r.rows, len(r.cells)]


def _body(config: Config, state: AggregatorState) -> bytes:
    """The body (format in the module docstring) of ``state``, a state of ``config``."""
    arrays: list[I64] = []  # header ints and arrays, in the order they are read
    slos: list[list[Any]] = []
    for spec in config.slos:
        s = state.slos[spec.name]
        slos.append([[list(k) for k in s.series.keys], s.too_old, s.events])
        head = [len(s.series.row_events), *_ring_ints(s.fine), *_ring_ints(s.coarse)]
        arrays += [np.array(head, np.int64), s.series.row_events, s.fine.cells, s.fine.total, s.fine.bad]
        arrays += [s.coarse.cells, s.coarse.total, s.coarse.bad]
    lat = state.latency
    latency: list[Any] | None = None
    if lat is not None:
        latency = [[list(k) for k in lat.series.keys], lat.too_old]
        arrays += [np.array([len(lat.series.row_events), len(lat.rings)], np.int64), lat.series.row_events]
        for h in lat.rings:
            head = [h.slot_ms, h.n, _opt(h.head), _opt(h.low), len(h.buckets), len(h.keys)]
            arrays += [np.array(head, np.int64), h.buckets, h.lengths, h.keys, h.counts]
    meta = json.dumps(
        [state.events, state.newest_ms, state.oldest_ms, slos, latency], separators=(",", ":")
    ).encode()
    flat = np.concatenate(arrays).astype("<i8", copy=False)
    # Level 1: partials are written once and read once, soon; speed beats the last few percent.
    return zlib.compress(_U32.pack(len(meta)) + meta + flat.tobytes(), 1)


def encode_piece(config: Config, piece: Piece) -> bytes:
    """The record value of one piece (made with its `AggregatorState`)."""
    assert isinstance(piece.body, AggregatorState)
    return _head(piece) + _body(config, piece.body)


def _parse_body(data: bytes) -> Body:
    try:
        raw = zlib.decompress(data)
    except zlib.error as exc:
        raise CheckpointError(f"partial body truncated or damaged ({exc})") from None
    if len(raw) < _U32.size:
        raise CheckpointError("partial body truncated")
    (mlen,) = _U32.unpack_from(raw)
    end = _U32.size + mlen
    if end > len(raw) or (len(raw) - end) % 8:
        raise CheckpointError("partial body truncated")
    try:
        meta = json.loads(raw[_U32.size : end])
    except ValueError:
        raise CheckpointError("partial body meta is not JSON") from None
    if not isinstance(meta, list) or len(meta) != 5:
        raise CheckpointError("partial body meta malformed")
    return Body(meta, np.frombuffer(raw, "<i8", offset=end).astype(np.int64, copy=False))


class _Cursor:
    """Reads the body's int64s in order: header ints and array slices (views, no copies)."""

    __slots__ = ("at", "ints")

    def __init__(self, ints: I64) -> None:
        self.ints, self.at = ints, 0

    def take(self, n: int) -> I64:
        a = self.at
        if n < 0 or a + n > len(self.ints):
            raise PartialError("partial body shorter than its header says")
        self.at = a + n
        return self.ints[a : a + n]

    def head(self, n: int) -> list[int]:
        return [int(v) for v in self.take(n).tolist()]


def _none(v: int) -> int | None:
    return None if v == _NONE else v


def _ring(c: _Cursor, h: list[int]) -> RingState:
    res_ms, n, head, low, rows, cells = h
    return RingState(res_ms, n, _none(head), _none(low), rows, c.take(cells), c.take(cells), c.take(cells))


def _keys(keys: list[list[str]]) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(k) for k in keys)


#: The state fingerprints of an SLO file's SLOs (by name) and latency groups (None without).
Fingerprints = tuple[dict[str, str], str | None]


def spec_fingerprints(config: Config) -> Fingerprints:
    """The fingerprints a state of ``config`` carries (``repr`` of each spec: ~1 ms for 60 SLOs, so a
    `sloguard.scale.merger.Merger` computes them once and hands them to `Piece.state`)."""
    latency = config.latency
    return {s.name: fingerprint(s) for s in config.slos}, (
        fingerprint(latency) if latency is not None else None
    )


def _read_body(body: Body, config: Config, fingerprints: Fingerprints) -> AggregatorState:
    events, newest, oldest, slos, latency = body.meta
    if len(slos) != len(config.slos) or (latency is None) != (config.latency is None):
        raise PartialError(
            f"partial of {len(slos)} SLOs{'' if latency is None else ' and latency groups'}, "
            f"this SLO file has {len(config.slos)}{'' if config.latency is None else ' and latency groups'}"
        )
    c = _Cursor(body.ints)
    fps, lat_fp = fingerprints
    states: dict[str, SloState] = {}
    for spec, (keys, too_old, slo_events) in zip(config.slos, slos, strict=True):
        fp = fps[spec.name]
        h = c.head(13)
        series = SeriesState(_keys(keys), c.take(h[0]))
        fine = _ring(c, h[1:7])
        coarse = _ring(c, h[7:13])
        states[spec.name] = SloState(fp, series, fine, coarse, too_old, slo_events)
    lat_state = None
    if latency is not None and lat_fp is not None:
        n_events, n_rings = c.head(2)
        row_events = c.take(n_events)
        rings = []
        for _ in range(n_rings):
            slot_ms, n, head, low, buckets, keys_len = c.head(6)
            rings.append(
                HistRingState(
                    slot_ms,
                    n,
                    _none(head),
                    _none(low),
                    c.take(buckets),
                    c.take(buckets),
                    c.take(keys_len),
                    c.take(keys_len),
                )
            )
        lat_state = LatencyState(lat_fp, SeriesState(_keys(latency[0]), row_events), tuple(rings), latency[1])
    if c.at != len(body.ints):
        raise PartialError("partial body longer than its header says")
    return AggregatorState(states, lat_state, events, newest, oldest)


def decode_piece(data: bytes) -> Piece:
    """Parse a record value; raises `CheckpointError` (a ValueError) saying what is wrong."""
    if len(data) < _HEAD.size:
        raise CheckpointError(f"partial record of {len(data)} bytes, shorter than its header")
    magic, version, index, count, partition, partitions, input_part, start, end, fp, tlen = _HEAD.unpack_from(
        data
    )
    if magic != MAGIC:
        raise CheckpointError("not a sloguard partial (bad magic)")
    if version != FORMAT_VERSION:
        raise CheckpointError(f"partial format version {version}; this sloguard reads {FORMAT_VERSION}")
    if not (index < count and partition < partitions and start < end):
        raise CheckpointError(f"inconsistent partial header (piece {index}/{count}, range [{start}, {end}))")
    topic_end = _HEAD.size + tlen
    try:
        topic = data[_HEAD.size : topic_end].decode()
    except UnicodeDecodeError:
        raise CheckpointError("partial topic name is not UTF-8") from None
    body = _parse_body(data[topic_end:])
    return Piece(InputRange(topic, input_part, start, end), fp, partition, partitions, index, count, body)


def _halves(config: Config, state: AggregatorState, max_bytes: int, head: int) -> list[AggregatorState]:
    """``state`` cut by series until each part's body fits in ``max_bytes − head``."""
    if head + len(_body(config, state)) <= max_bytes:
        return [state]
    series = [(name, i) for name, s in state.slos.items() for i in range(len(s.series.keys))]
    if state.latency is not None:
        series += [("", i) for i in range(len(state.latency.series.keys))]
    if len(series) <= 1:
        raise PieceTooLargeError(
            f"one series of range needs {head + len(_body(config, state))} bytes, over the cap of {max_bytes}"
        )
    mid = len(series) // 2
    parts = []
    for counters, chunk in ((True, series[:mid]), (False, series[mid:])):
        slo_rows = {name: _rows(chunk, name) for name in state.slos}
        lat_rows = _rows(chunk, "") if state.latency is not None else None
        parts += _halves(config, take(config, state, slo_rows, lat_rows, counters), max_bytes, head)
    return parts


def _rows(chunk: list[tuple[str, int]], name: str) -> Intp:
    return np.array([i for n, i in chunk if n == name], np.intp)


def encode_pieces(
    config: Config,
    rng: InputRange,
    fingerprint: bytes,
    partition: int,
    partitions: int,
    state: AggregatorState,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> list[bytes]:
    """The records of partition ``partition``'s piece of the partial of ``rng`` (`split`), each at most
    ``max_bytes``. Raises `PieceTooLargeError` if a single series does not fit."""
    probe = Piece(rng, fingerprint, partition, partitions, 0, 1, state)
    parts = _halves(config, state, max_bytes, len(_head(probe)))
    return [
        encode_piece(config, Piece(rng, fingerprint, partition, partitions, i, len(parts), part))
        for i, part in enumerate(parts)
    ]
