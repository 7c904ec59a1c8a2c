"""The partial record: one piece of a partial, for one partials partition, as Kafka record bytes.

Format (version 1)::

    magic       b"SLGPART\\n"            8 bytes
    version     u16 little-endian       1
    index       u32                     this record is piece ``index`` of ``count`` for its partition
    count       u32
    partition   u32                     the partials partition it was made for
    partitions  u32                     the partials topic's partition count when it was made
    input_part  u32                     the input partition, and the range [start, end) it summarises
    start       u64
    end         u64
    fingerprint 16 bytes                `config_fingerprint` of the SLO file (and decode options)
    topic_len   u16, topic UTF-8        the input topic
    body        a checkpoint (`sloguard.checkpoint` format: CRC, zlib, arrays in the narrowest integer
                type, JSON meta; nothing pickled) of the piece's `AggregatorState`, with no offsets

A piece larger than ``max_bytes`` is cut by series into several records, all naming the same range, each
with its ``index``/``count``: halving the series list until each half fits, so the cut depends only on
the piece (the same range read again by another owner gives byte-identical records). Counters that
belong to no series go in record 0 only.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from sloguard._types import Intp
from sloguard.checkpoint import Checkpoint, CheckpointError, decode, encode
from sloguard.core.spec import Config
from sloguard.core.state import AggregatorState
from sloguard.scale.partials import InputRange, take

__all__ = ["FORMAT_VERSION", "MAGIC", "Piece", "decode_piece", "encode_piece", "encode_pieces"]

MAGIC = b"SLGPART\n"
FORMAT_VERSION = 1
_HEAD = struct.Struct("<8sHIIIIIQQ16sH")

#: Default record cap: below Kafka's default max.message.bytes (1 MiB + 12 bytes) with room for the
#: record's own overhead.
DEFAULT_MAX_BYTES = 900 * 1024


class PieceTooLargeError(ValueError):
    """One series' counts for one range do not fit in a record (raise the cap or cut ranges shorter)."""


@dataclass(frozen=True, slots=True)
class Piece:
    """One record's worth of a partial: piece ``index`` of ``count`` for partials ``partition``."""

    range: InputRange
    fingerprint: bytes
    partition: int
    partitions: int
    index: int
    count: int
    state: AggregatorState


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


def _body(state: AggregatorState) -> bytes:
    # Level 1: partials are written once and read once, soon; speed beats the last few percent.
    return encode(Checkpoint(state=state, offsets={}, created_ms=0), level=1)


def encode_piece(piece: Piece) -> bytes:
    """The record value of one piece."""
    return _head(piece) + _body(piece.state)


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
    body = decode(data[topic_end:])
    return Piece(
        InputRange(topic, input_part, start, end), fp, partition, partitions, index, count, body.state
    )


def _halves(config: Config, state: AggregatorState, max_bytes: int, head: int) -> list[AggregatorState]:
    """``state`` cut by series until each part's body fits in ``max_bytes − head``."""
    if head + len(_body(state)) <= max_bytes:
        return [state]
    series = [(name, i) for name, s in state.slos.items() for i in range(len(s.series.keys))]
    if state.latency is not None:
        series += [("", i) for i in range(len(state.latency.series.keys))]
    if len(series) <= 1:
        raise PieceTooLargeError(
            f"one series of range needs {head + len(_body(state))} bytes, over the cap of {max_bytes}"
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
        encode_piece(Piece(rng, fingerprint, partition, partitions, i, len(parts), part))
        for i, part in enumerate(parts)
    ]
