"""The partial record: one piece of a partial, for one partials partition, as Kafka record bytes.

Format (version 4)::

    magic       b"SLGPART\\n"            8 bytes
    version     u16 little-endian       4 (a reader refuses any other: version 1's body was a checkpoint,
                                        version 2 laid each SLO's arrays out one SLO after another,
                                        version 3 stored every int as an int64)
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
      meta_len  u32, meta               JSON (UTF-8): ``[events, newest_ms, oldest_ms, slos, latency]``;
                                        ``slos`` one ``[keys, too_old, events]`` per SLO of the file, in
                                        its order (``keys``: the series' label values; ``[]`` when the
                                        range touched none), ``latency`` ``[keys, too_old]`` or null
      runs_len  u32, runs               how the ints are stored: per run, ``u8 width, u32 count``: the
                                        run's ``count`` ints as little-endian u8, u16, u32 (width 1, 2, 4)
                                        or int64 (8), the narrowest that holds each array (adjacent
                                        arrays of one width are one run)
      ints      the runs end to end     the ints, in order: per SLO, 13 ints: ``len(row_events)``, then
                                        per ring (fine, coarse) ``res_ms, n, head, low, rows, cells``;
                                        then every SLO's ``row_events`` end to end, then the fine rings'
                                        ``cells``, their ``total``, their ``bad`` (sparse, as
                                        `RingState`), each run every SLO's end to end, then the coarse
                                        rings' likewise (`Runs`: stage 2 adds a run of every SLO in a few
                                        numpy calls, not a few per SLO). Latency: ``len(row_events)``,
                                        rings, per ring ``slot_ms, n, head, low, buckets, keys``; then
                                        ``row_events`` and each ring's ``buckets``, ``lengths``,
                                        ``steps``, ``jumps``, ``counts`` (`HistRingState`): its ``keys``
                                        (sorted in each slot) as `key_steps`, as checkpoints store them:
                                        each key less the one before it, save a slot's first key, whose
                                        step is 0 and whose difference is in ``jumps`` (one per non-empty
                                        slot): small steps fit a narrow run, keys do not. None (a ring
                                        never moved) is INT64_MIN.

The body names no SLO and no spec fingerprint: the header's ``fingerprint`` names the SLO file, and a
piece is read into an `AggregatorState` (`Piece.state`) only with that file's `Config`, after the
fingerprint is checked. Decoding is one inflate (ISA-L's, `sloguard.deflate`), one JSON parse and
one int64 array filled run by run (a few dozen runs); the arrays are slices of that array, so reading a
piece (`Piece.parts`) costs a few slices, not one per SLO and array. The narrow runs matter: most ints
are small (a bucket's count, an HDR cell's), and version 3's int64s were ~4x the bytes to inflate.

A piece larger than ``max_bytes`` is cut by series into several records, all naming the same range, each
with its ``index``/``count``: halving the series list until each half's raw body, at zlib's bound on
what it can compress to, fits. So the cut depends only on the piece, not on the compressor (the same
range read again by another owner gives the same records, series for series, whatever zlib build it
runs). Counters that
belong to no series go in record 0 only.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np

from sloguard._types import I64, Intp
from sloguard.checkpoint import CheckpointError, key_steps, keys_from_steps, slot_starts
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
from sloguard.deflate import DeflateError, decompress
from sloguard.scale.partials import InputRange, PartialError, take

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "Body",
    "Keys",
    "Meta",
    "Parts",
    "Piece",
    "Runs",
    "decode_piece",
    "encode_piece",
    "encode_pieces",
]

MAGIC = b"SLGPART\n"
FORMAT_VERSION = 4
#: Why an older version is refused.
_OLDER = {
    1: "its body was a checkpoint",
    2: "it laid each SLO's arrays out one SLO after another",
    3: "it stored every int as an int64",
}
#: Ints per SLO in a body's header block; a ring's six begin at `FINE` and `COARSE`.
HEAD_INTS, FINE, COARSE = 13, 1, 7
_HEAD = struct.Struct("<8sHIIIIIQQ16sH")

#: Default record cap: below Kafka's default max.message.bytes (1 MiB + 12 bytes) with room for the
#: record's own overhead.
DEFAULT_MAX_BYTES = 900 * 1024


class PieceTooLargeError(ValueError):
    """One series' counts for one range do not fit in a record (raise the cap or cut ranges shorter)."""


_U32 = struct.Struct("<I")
_NONE = np.iinfo(np.int64).min
_EMPTY = np.zeros(0, np.int64)
#: A series key list, as a state holds it.
Keys = tuple[tuple[str, ...], ...]
#: A body's meta (module docstring), decoded straight into tuples, its shape checked on the way:
#: ``(events, newest_ms, oldest_ms, slos, latency)``.
Meta = tuple[int, int | None, int | None, list[tuple[Keys, int, int]], tuple[Keys, int] | None]
_META_IN = msgspec.json.Decoder(Meta)
_META_OUT = msgspec.json.Encoder()
#: A run of the body's ints: its width (a key of `_WIDTHS`) and count.
_RUN = struct.Struct("<BI")
#: The run widths and their little-endian types, narrowest first (negative ints and None are int64).
_WIDTHS: dict[int, np.dtype[Any]] = {
    1: np.dtype("<u1"),
    2: np.dtype("<u2"),
    4: np.dtype("<u4"),
    8: np.dtype("<i8"),
}
_LIMITS = [(w, (1 << 8 * w) - 1) for w in (1, 2, 4)]


@dataclass(frozen=True, slots=True)
class Body:
    """A piece's body as read (`decode_piece`), before it meets a `Config` (`Piece.state`)."""

    meta: Meta
    ints: I64


@dataclass(frozen=True, slots=True)
class Runs:
    """The SLOs' part of a piece, every SLO of the SLO file end to end (in its order): ``heads`` one row
    of `HEAD_INTS` per SLO (``len(row_events)``, then per ring, fine at `FINE` and coarse at `COARSE`,
    ``res_ms, n, head, low, rows, cells``; None as ``INT64_MIN``); ``row_events`` and each ring's
    ``cells``, ``total``, ``bad`` (as `RingState`), every SLO's in turn; per SLO its series keys (label
    values as lists), ``too_old`` and ``events``."""

    heads: I64
    row_events: I64
    fine: tuple[I64, I64, I64]
    coarse: tuple[I64, I64, I64]
    keys: list[Keys]
    too_old: list[int]
    events: list[int]

    def slo(self, i: int, fingerprint: str) -> SloState:
        """SLO ``i``'s part as a `SloState` (its arrays slices of the runs)."""
        events_at, fine_at, coarse_at = self.heads[:i, [0, FINE + 5, COARSE + 5]].sum(axis=0).tolist()
        h = self.heads[i].tolist()
        series = SeriesState(self.keys[i], self.row_events[events_at : events_at + h[0]])
        rings = []
        for at, a, (cells, total, bad) in ((FINE, fine_at, self.fine), (COARSE, coarse_at, self.coarse)):
            res_ms, n, head, low, rows, count = h[at : at + 6]
            z = a + count
            rings.append(
                RingState(res_ms, n, _none(head), _none(low), rows, cells[a:z], total[a:z], bad[a:z])
            )
        return SloState(fingerprint, series, rings[0], rings[1], self.too_old[i], self.events[i])


@dataclass(frozen=True, slots=True)
class Parts:
    """A piece read for stage 2 (`Piece.parts`): its SLOs' `Runs`, its latency groups' state, and the
    counters of the aggregator state it was made of."""

    slos: Runs
    latency: LatencyState | None
    events: int
    newest_ms: int | None
    oldest_ms: int | None


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
        parts = self.parts(config, fingerprints)
        fps = (fingerprints or spec_fingerprints(config))[0]
        slos = {spec.name: parts.slos.slo(i, fps[spec.name]) for i, spec in enumerate(config.slos)}
        return AggregatorState(slos, parts.latency, parts.events, parts.newest_ms, parts.oldest_ms)

    def parts(self, config: Config, fingerprints: Fingerprints | None = None) -> Parts:
        """The piece's counts as `Parts`, read with ``config`` (the SLO file its ``fingerprint`` names) and
        its `spec_fingerprints` (computed here if not given). Raises `PartialError` if the counts do not
        fit ``config``'s SLOs (a piece made in this process: specs of another fingerprint)."""
        fps = fingerprints or spec_fingerprints(config)
        if isinstance(self.body, AggregatorState):
            return _parts_of(config, fps, self.body)
        return _read_body(self.body, config, fps)


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


def _cat(arrays: list[I64]) -> I64:
    return np.concatenate(arrays) if arrays else _EMPTY


def _runs_of(config: Config, state: AggregatorState) -> Runs:
    """``state``'s SLOs (a state of ``config``) as `Runs`."""
    slos = [state.slos[spec.name] for spec in config.slos]
    heads = np.array(
        [[len(s.series.row_events), *_ring_ints(s.fine), *_ring_ints(s.coarse)] for s in slos], np.int64
    ).reshape(len(slos), HEAD_INTS)
    rings = [
        tuple(_cat([getattr(getattr(s, ring), a) for s in slos]) for a in ("cells", "total", "bad"))
        for ring in ("fine", "coarse")
    ]
    return Runs(
        heads,
        _cat([s.series.row_events for s in slos]),
        (rings[0][0], rings[0][1], rings[0][2]),
        (rings[1][0], rings[1][1], rings[1][2]),
        [s.series.keys for s in slos],
        [s.too_old for s in slos],
        [s.events for s in slos],
    )


def _parts_of(config: Config, fingerprints: Fingerprints, state: AggregatorState) -> Parts:
    """A state made in this process as `Parts`; raises `PartialError` if it was made for other specs."""
    slo_fps, latency_fp = fingerprints
    saved = state.slos
    if saved.keys() != slo_fps.keys() or any(saved[n].fingerprint != fp for n, fp in slo_fps.items()):
        fresh = [n for n, fp in slo_fps.items() if n not in saved or saved[n].fingerprint != fp]
        raise PartialError(
            f"partial made for other SLOs: not restored {fresh}, unknown {sorted(saved.keys() - slo_fps)}"
        )
    lat = state.latency
    if (lat is not None) != (latency_fp is not None) or (lat is not None and lat.fingerprint != latency_fp):
        raise PartialError("partial made for other latency groups")
    return Parts(_runs_of(config, state), lat, state.events, state.newest_ms, state.oldest_ms)


def _body(config: Config, state: AggregatorState) -> bytes:
    """The body (format in the module docstring) of ``state``, a state of ``config``."""
    return _deflate(_raw_body(config, state))


def _raw_body(config: Config, state: AggregatorState) -> bytes:
    """`_body` before it is compressed."""
    runs = _runs_of(config, state)
    slos = [[keys, t, e] for keys, t, e in zip(runs.keys, runs.too_old, runs.events, strict=True)]
    arrays: list[I64] = [runs.heads.reshape(-1), runs.row_events, *runs.fine, *runs.coarse]
    lat = state.latency
    latency: list[Any] | None = None
    if lat is not None:
        latency = [lat.series.keys, lat.too_old]
        arrays += [np.array([len(lat.series.row_events), len(lat.rings)], np.int64), lat.series.row_events]
        for h in lat.rings:
            head = [h.slot_ms, h.n, _opt(h.head), _opt(h.low), len(h.buckets), len(h.keys)]
            steps, jumps = key_steps(h.keys, h.lengths)
            arrays += [np.array(head, np.int64), h.buckets, h.lengths, steps, jumps, h.counts]
    return _pack([state.events, state.newest_ms, state.oldest_ms, slos, latency], arrays)


def _deflate(raw: bytes) -> bytes:
    """A raw body compressed. Level 1: partials are written once and read once, soon; speed beats the
    last few percent. The standard library's zlib, not ISA-L's faster one: the records of one range
    are then the same bytes on every host of one image (ISA-L's output depends on the CPU it runs on),
    though nothing relies on that since the cut no longer depends on the compressed size (`_halves`)."""
    return zlib.compress(raw, 1)


def _bound(n: int) -> int:
    """The most bytes zlib can make of ``n`` bytes (its ``compressBound``): incompressible data grows by
    a few bytes per 16 KiB block and a header."""
    return n + (n >> 12) + (n >> 14) + (n >> 25) + 13


def _pack(meta: list[Any], arrays: list[I64]) -> bytes:
    """A raw (uncompressed) body: ``meta`` and the ints of ``arrays`` (module docstring)."""
    head = _META_OUT.encode(meta)
    layout, data = _narrow(arrays)
    table = [_U32.pack(len(layout)), *(_RUN.pack(w, n) for w, n in layout)]
    return b"".join([_U32.pack(len(head)), head, *table, *data])


def _width(a: I64) -> int:
    """The narrowest run width (`_WIDTHS`) that holds ``a`` (not empty)."""
    if int(a.min()) < 0:
        return 8
    hi = int(a.max())
    return next((w for w, top in _LIMITS if hi <= top), 8)


def _narrow(arrays: list[I64]) -> tuple[list[tuple[int, int]], list[bytes]]:
    """``arrays`` (int64) as the body's runs: each in its narrowest width, adjacent ones of one width
    joined; the runs' ``(width, count)`` and their bytes."""
    groups: list[tuple[int, list[I64]]] = []
    for a in arrays:
        if not len(a):
            continue
        w = _width(a)
        if groups and groups[-1][0] == w:
            groups[-1][1].append(a)
        else:
            groups.append((w, [a]))
    runs = [(w, sum(len(a) for a in group)) for w, group in groups]
    return runs, [np.concatenate(group).astype(_WIDTHS[w], copy=False).tobytes() for w, group in groups]


def encode_piece(config: Config, piece: Piece) -> bytes:
    """The record value of one piece (made with its `AggregatorState`)."""
    assert isinstance(piece.body, AggregatorState)
    return _head(piece) + _body(config, piece.body)


def _parse_body(data: bytes) -> Body:
    try:
        raw = decompress(data)
    except DeflateError as exc:
        raise CheckpointError(f"partial body truncated or damaged ({exc})") from None
    if len(raw) < _U32.size:
        raise CheckpointError("partial body truncated")
    (mlen,) = _U32.unpack_from(raw)
    end = _U32.size + mlen
    if end + _U32.size > len(raw):
        raise CheckpointError("partial body truncated")
    try:
        meta = _META_IN.decode(raw[_U32.size : end])
    except msgspec.DecodeError as exc:
        raise CheckpointError(f"partial body meta malformed ({exc})") from None
    (nruns,) = _U32.unpack_from(raw, end)
    at = end + _U32.size + nruns * _RUN.size
    if at > len(raw):
        raise CheckpointError("partial body truncated")
    runs = list(_RUN.iter_unpack(raw[end + _U32.size : at]))
    if any(w not in _WIDTHS for w, _ in runs):
        raise CheckpointError("partial body with an unknown int width")
    if at + sum(w * n for w, n in runs) != len(raw):
        raise CheckpointError("partial body truncated")
    ints = np.empty(sum(n for _, n in runs), np.int64)
    i = 0
    for w, n in runs:
        ints[i : i + n] = np.frombuffer(raw, _WIDTHS[w], n, at)
        i, at = i + n, at + w * n
    return Body(meta, ints)


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


#: The state fingerprints of an SLO file's SLOs (by name) and latency groups (None without).
Fingerprints = tuple[dict[str, str], str | None]


def spec_fingerprints(config: Config) -> Fingerprints:
    """The fingerprints a state of ``config`` carries (``repr`` of each spec: ~1 ms for 60 SLOs, so a
    `sloguard.scale.merger.Merger` computes them once and hands them to `Piece.state`)."""
    latency = config.latency
    return {s.name: fingerprint(s) for s in config.slos}, (
        fingerprint(latency) if latency is not None else None
    )


def _check_runs(runs: Runs) -> None:
    """Raises `PartialError` unless every row a body's cells and events name is one of its series (stage 2
    adds all SLOs' cells at once: a bad row is refused here, with the piece, not met while adding)."""
    heads = runs.heads
    keys = np.array([len(k) for k in runs.keys], np.int64)
    if (heads[:, 0] > keys).any():
        raise PartialError("partial body with events for rows it has no series of")
    for at, (cells, _, _) in ((FINE, runs.fine), (COARSE, runs.coarse)):
        count = heads[:, at + 5]
        held = count > 0
        if not len(cells) or not held.any():
            continue
        rows = heads[held, at + 4]
        starts = (np.cumsum(count) - count)[held]
        if (
            (rows != keys[held]).any()
            or int(cells.min()) < 0
            or (np.maximum.reduceat(cells, starts) >= rows * heads[held, at + 1]).any()
        ):
            raise PartialError("partial body with cells outside its rings or series")


def _read_body(body: Body, config: Config, fingerprints: Fingerprints) -> Parts:
    events, newest, oldest, slos, latency = body.meta
    n = len(config.slos)
    if len(slos) != n or (latency is None) != (config.latency is None):
        raise PartialError(
            f"partial of {len(slos)} SLOs{'' if latency is None else ' and latency groups'}, "
            f"this SLO file has {n}{'' if config.latency is None else ' and latency groups'}"
        )
    c = _Cursor(body.ints)
    heads = c.take(n * HEAD_INTS).reshape(n, HEAD_INTS)
    sizes = heads[:, [0, FINE + 5, COARSE + 5]]
    if n and int(sizes.min()) < 0:
        raise PartialError("partial body header with a negative length")
    events_n, fine_n, coarse_n = sizes.sum(axis=0).tolist() if n else (0, 0, 0)
    row_events = c.take(events_n)
    fine = (c.take(fine_n), c.take(fine_n), c.take(fine_n))
    coarse = (c.take(coarse_n), c.take(coarse_n), c.take(coarse_n))
    runs = Runs(
        heads, row_events, fine, coarse, [s[0] for s in slos], [s[1] for s in slos], [s[2] for s in slos]
    )
    _check_runs(runs)
    lat_state = None
    lat_fp = fingerprints[1]
    if latency is not None and lat_fp is not None:
        n_events, n_rings = c.head(2)
        row_events = c.take(n_events)
        rings = []
        for _ in range(n_rings):
            slot_ms, ring_n, top, low, buckets, keys_len = c.head(6)
            slots, lengths = c.take(buckets), c.take(buckets)
            if len(lengths) and (int(lengths.min()) < 0 or int(lengths.sum()) != keys_len):
                raise PartialError("partial body with latency slots of other lengths than its keys")
            starts = slot_starts(lengths)
            steps, jumps = c.take(keys_len), c.take(len(starts))
            keys = keys_from_steps(steps, jumps, starts)
            counts = c.take(keys_len)
            rings.append(HistRingState(slot_ms, ring_n, _none(top), _none(low), slots, lengths, keys, counts))
        lat_state = LatencyState(lat_fp, SeriesState(latency[0], row_events), tuple(rings), latency[1])
    if c.at != len(body.ints):
        raise PartialError("partial body longer than its header says")
    return Parts(runs, lat_state, events, newest, oldest)


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
        why = f" ({_OLDER[version]}): run both stages at one sloguard version" if version in _OLDER else ""
        raise CheckpointError(f"partial format version {version}; this sloguard reads {FORMAT_VERSION}{why}")
    if not (index < count and partition < partitions and start < end):
        raise CheckpointError(f"inconsistent partial header (piece {index}/{count}, range [{start}, {end}))")
    topic_end = _HEAD.size + tlen
    try:
        topic = data[_HEAD.size : topic_end].decode()
    except UnicodeDecodeError:
        raise CheckpointError("partial topic name is not UTF-8") from None
    body = _parse_body(data[topic_end:])
    return Piece(InputRange(topic, input_part, start, end), fp, partition, partitions, index, count, body)


def _halves(config: Config, state: AggregatorState, max_bytes: int, head: int) -> list[bytes]:
    """The raw bodies of ``state`` cut by series until each part's body, compressed, surely fits in
    ``max_bytes − head``.

    The cut is decided on the raw size (and zlib's bound on what it can make of it), never on the
    compressed size: that depends on the zlib build, and two stage-1 hosts with different builds could
    otherwise cut the same range into the same number of records holding different series, which stage
    2 could not tell apart (docs/scaling.md). The raw body is a function of the piece alone."""
    body = _raw_body(config, state)
    if head + _bound(len(body)) <= max_bytes:
        return [body]
    series = [(name, i) for name, s in state.slos.items() for i in range(len(s.series.keys))]
    if state.latency is not None:
        series += [("", i) for i in range(len(state.latency.series.keys))]
    if len(series) <= 1:
        raise PieceTooLargeError(
            f"one series of range needs up to {head + _bound(len(body))} bytes, over the cap of {max_bytes}"
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
    bodies = _halves(config, state, max_bytes, len(_head(probe)))
    # (each body made once: the one `_halves` measured is the one sent)
    return [
        _head(Piece(rng, fingerprint, partition, partitions, i, len(bodies), state)) + _deflate(body)
        for i, body in enumerate(bodies)
    ]
