"""Partials: what stage 1 makes of one contiguous stretch of one input partition, and how stage 2 adds it.

Pure (no I/O, no clock); the record format is `sloguard.scale.codec`, the exactly-once bookkeeping
`sloguard.scale.applied`, the design and its argument docs/scaling.md.

A partial of the input range ``[start, end)`` is the `AggregatorState` of a fresh aggregator fed exactly the
events of that range (`summarise`): per SLO series and bucket, total and bad; per latency group and slot,
sparse HDR counts; each ring's ``head`` and ``low``. It is cut by series into one piece per partials
partition (`split`): every series of every range lands on `series_partition` of its SLO name and key, so
one stage-2 owner holds all of a series. Stage 2 adds a piece with `apply`: the core's `Aggregator.merge`,
which is exact (integer counts and HDR counts, added).

Why the result equals one process fed the same events (``tests/unit/scale/test_exactly_once.py``):

* A ring holds, after any sequence of ingests and merges, exactly the buckets ``(head − n, head]`` of the
  events offered, ``head`` being the newest bucket offered: the partial of a range drops only buckets
  older than its own head − n, which any aggregator that also saw that range drops too.
* Every piece carries every ring's ``head`` and ``low`` of the whole range, series or not, so each
  stage-2 aggregator moves its rings exactly as the single process does (a ring that saw only a quiet
  series' events would otherwise keep buckets the single process has evicted).
* Stage 1 counts without caps (`fresh`): a series cap decides which keys share ``__overflow__`` by the
  order keys arrive, so only the owner of the series (stage 2) applies it, at merge.
* Counters that belong to no series (an SLO's ``events`` and ``too_old``, the events read) travel in the
  piece for partition ``home_partition`` only, so summing over partitions counts them once.

``too_old`` (events older than the ring when they arrived) depends on arrival order in every mode, one
process included (partitions interleave freely); it is not part of the exactness claim.
"""

from __future__ import annotations

import hashlib
import itertools
import struct
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from sloguard._types import I64, Intp
from sloguard.core.aggregator import Aggregator
from sloguard.core.latency import HdrLayout
from sloguard.core.model import EventBatch, Vocabs
from sloguard.core.spec import Config
from sloguard.core.state import AggregatorState, HistRingState, LatencyState, RingState, SeriesState, SloState

__all__ = [
    "InputRange",
    "PartialError",
    "apply",
    "config_fingerprint",
    "fresh",
    "home_partition",
    "latency_partition",
    "series_partition",
    "split",
    "split_rows",
    "summarise",
]

#: The series cap of stage-1 and scratch aggregators: more keys than any range could hold.
NO_CAP = 1 << 62

#: Partition of the counters that belong to no series.
_HOME = b"\x02sloguard-home"


class PartialError(ValueError):
    """A partial that cannot be applied here (another SLO file, another shape)."""


@dataclass(frozen=True, slots=True, order=True)
class InputRange:
    """The input records ``[start, end)`` of one partition of one input topic."""

    topic: str
    partition: int
    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end:
            raise ValueError(f"empty or negative range [{self.start}, {self.end})")


def config_fingerprint(config: Config, extra: str = "") -> bytes:
    """16 bytes naming the SLO file as the aggregator sees it (and ``extra``: the decode options, which
    decide which events a range holds). Partials carry it; stage 2 refuses a different one."""
    return hashlib.blake2b(f"{config!r}\x00{extra}".encode(), digest_size=16).digest()


def _hash(*parts: bytes) -> int:
    # Length-prefixed parts: ("a", "bc") and ("ab", "c") must not collide by construction.
    h = hashlib.blake2b(digest_size=8)
    for p in parts:
        h.update(struct.pack("<I", len(p)))
        h.update(p)
    return int.from_bytes(h.digest(), "little")


def series_partition(slo: str, key: tuple[str, ...], partitions: int) -> int:
    """The partials partition of series ``key`` of SLO ``slo``: BLAKE2b-64 of the length-prefixed UTF-8
    name and label values, modulo ``partitions``. Stable across processes, hosts and Python versions
    (unlike ``hash()``), well mixed, and in the standard library. Kafka's murmur2 is not needed: stage 1
    names the partition of each record itself."""
    return _hash(b"\x00slo", slo.encode(), *(v.encode() for v in key)) % partitions


def latency_partition(key: tuple[str, ...], partitions: int) -> int:
    """The partials partition of latency group ``key`` (a namespace of its own: no SLO can collide)."""
    return _hash(b"\x01latency", *(v.encode() for v in key)) % partitions


def home_partition(partitions: int) -> int:
    """The partition whose pieces carry the counters that belong to no series."""
    return _hash(_HOME) % partitions


def fresh(config: Config) -> Aggregator:
    """An aggregator of ``config`` whose series indexes have no cap (the specs, and so the state
    fingerprints and ring shapes, are those of ``config``): what a range is summarised in, and what a
    piece is restored into before it is merged into a capped aggregator."""
    agg = Aggregator(config)
    for slo in agg.slos:
        slo.series.cap = NO_CAP
    if agg.latency is not None:
        agg.latency.series.cap = NO_CAP
    return agg


def summarise(config: Config, batches: Sequence[EventBatch]) -> AggregatorState:
    """The partial of a range: a fresh uncapped aggregator fed the range's valid events as one batch (one
    batch, so even ``too_old`` does not depend on how the range was fetched)."""
    agg = fresh(config)
    batch = EventBatch.concat(list(batches)) if len(batches) != 1 else batches[0]
    # Read the labels in the batch's own vocabularies (the decoder's, long-lived): re-coding them into
    # fresh ones would intern every value the decoder has ever seen, at every range. Never reset them
    # here: they are the decoder's (it bounds them itself).
    agg.vocabs = Vocabs(batch.service.vocab, batch.endpoint.vocab, batch.customer.vocab)
    agg.vocab_limit = NO_CAP
    agg.ingest(batch)
    return agg.export_state()


# -- cutting a state by series ------------------------------------------------------------------------


def _take_ring(r: RingState, rows: Intp) -> RingState:
    """``r`` with only ``rows`` (renumbered 0..len-1 in the given order); head and low kept."""
    new = np.full(max(r.rows, 1), -1, np.int64)
    new[rows] = np.arange(len(rows))
    slots, row = np.divmod(r.cells, max(r.rows, 1))
    mapped = new[row] if len(row) else row
    keep = mapped >= 0
    cells = slots[keep] * len(rows) + mapped[keep]
    order = np.argsort(cells, kind="stable")
    return RingState(
        r.res_ms, r.n, r.head, r.low, len(rows), cells[order], r.total[keep][order], r.bad[keep][order]
    )


def _split_ring(r: RingState, of: I64, partitions: int) -> list[RingState]:
    """`_take_ring` of each partition's rows at once (``of``: each row's partition): one sort for all
    partitions, not a pass over the ring per partition."""
    sizes = np.bincount(of, minlength=partitions).astype(np.int64)
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    local = np.empty(len(of), np.int64)  # each row's number among its partition's rows (in row order)
    local[np.argsort(of, kind="stable")] = np.arange(len(of)) - np.repeat(starts, sizes)
    slots, row = np.divmod(r.cells, max(r.rows, 1))
    part = of[row]
    cells = slots * sizes[part] + local[row]
    order = np.lexsort((cells, part))
    cells, part, total, bad = cells[order], part[order], r.total[order], r.bad[order]
    cut = np.searchsorted(part, np.arange(partitions + 1)).tolist()
    return [
        RingState(r.res_ms, r.n, r.head, r.low, int(sizes[q]), cells[a:z], total[a:z], bad[a:z])
        for q, (a, z) in enumerate(itertools.pairwise(cut))
    ]


def _take_hist(h: HistRingState, rows: Intp, counts_len: int, n_rows: int) -> HistRingState:
    new = np.full(max(n_rows, 1), -1, np.int64)
    new[rows] = np.arange(len(rows))
    buckets: list[int] = []
    keys: list[I64] = []
    counts: list[I64] = []
    ends = np.cumsum(h.lengths).tolist()
    for b, a, e in zip(h.buckets.tolist(), [0, *ends][:-1], ends, strict=True):
        row, cell = np.divmod(h.keys[a:e], counts_len)
        mapped = new[row]
        keep = mapped >= 0
        if keep.any():
            k = mapped[keep] * counts_len + cell[keep]
            order = np.argsort(k, kind="stable")
            buckets.append(b)
            keys.append(k[order])
            counts.append(h.counts[a:e][keep][order])
    cat = np.concatenate if keys else lambda _: np.zeros(0, np.int64)
    lengths = np.array([len(k) for k in keys], np.int64)
    return replace(
        h, buckets=np.array(buckets, np.int64), lengths=lengths, keys=cat(keys), counts=cat(counts)
    )


def _take_series(s: SeriesState, rows: Intp) -> SeriesState:
    return SeriesState(tuple(s.keys[i] for i in rows.tolist()), s.row_events[rows])


def take(
    config: Config,
    state: AggregatorState,
    slo_rows: dict[str, Intp],
    latency_rows: Intp | None,
    counters: bool,
    rings: dict[str, tuple[RingState, RingState]] | None = None,
) -> AggregatorState:
    """The part of ``state`` made of the given series rows of each SLO (and latency groups), every ring's
    head and low, and (``counters``) the counters that belong to no series. ``newest``/``oldest`` are
    kept in every part: a minimum or maximum may be taken twice. ``rings``: each SLO's fine and coarse
    ring already cut to those rows (`_split_ring`)."""
    empty = np.zeros(0, np.intp)
    slos = {}
    for name, s in state.slos.items():
        rows = slo_rows.get(name, empty)
        cut = rings.get(name) if rings is not None else None
        fine, coarse = cut if cut is not None else (_take_ring(s.fine, rows), _take_ring(s.coarse, rows))
        slos[name] = SloState(
            fingerprint=s.fingerprint,
            series=_take_series(s.series, rows),
            fine=fine,
            coarse=coarse,
            too_old=s.too_old if counters else 0,
            events=s.events if counters else 0,
        )
    latency = None
    lat = state.latency
    if lat is not None:
        assert config.latency is not None
        rows = latency_rows if latency_rows is not None else empty
        counts_len = _counts_len(config)
        n_rows = len(lat.series.keys)
        latency = LatencyState(
            fingerprint=lat.fingerprint,
            series=_take_series(lat.series, rows),
            rings=tuple(_take_hist(r, rows, counts_len, n_rows) for r in lat.rings),
            too_old=lat.too_old if counters else 0,
        )
    return replace(state, slos=slos, latency=latency, events=state.events if counters else 0)


def _counts_len(config: Config) -> int:
    lat = config.latency
    assert lat is not None
    return HdrLayout.create(int(lat.highest_ms * 1000), lat.significant_figures).counts_len


def _rows_by(of: I64, partitions: int) -> list[Intp]:
    """Rows per partition, given each row's partition."""
    return [np.flatnonzero(of == p) for p in range(partitions)]


def _partition_of(state: AggregatorState, partitions: int) -> tuple[dict[str, I64], I64 | None]:
    """Each row's partials partition, per SLO and for the latency groups."""
    slos = {
        name: np.array([series_partition(name, k, partitions) for k in s.series.keys], np.int64)
        for name, s in state.slos.items()
    }
    latency = None
    if state.latency is not None:
        latency = np.array([latency_partition(k, partitions) for k in state.latency.series.keys], np.int64)
    return slos, latency


def _split_rows(
    of: tuple[dict[str, I64], I64 | None], partitions: int
) -> list[tuple[dict[str, Intp], Intp | None]]:
    out: list[tuple[dict[str, Intp], Intp | None]] = [({}, None) for _ in range(partitions)]
    slos, latency = of
    for name, parts in slos.items():
        for p, rows in enumerate(_rows_by(parts, partitions)):
            out[p][0][name] = rows
    if latency is not None:
        by = _rows_by(latency, partitions)
        out = [(slo, rows) for (slo, _), rows in zip(out, by, strict=True)]
    return out


def split_rows(state: AggregatorState, partitions: int) -> list[tuple[dict[str, Intp], Intp | None]]:
    """Per partials partition, the rows of each SLO and of the latency state whose series land there."""
    return _split_rows(_partition_of(state, partitions), partitions)


def split(config: Config, state: AggregatorState, partitions: int) -> list[AggregatorState]:
    """``state`` cut into one piece per partials partition (index = partition). Every piece is produced,
    even one without a series: it carries the ring heads, and it tells that partition's owner the range
    was read (so its set of applied ranges stays contiguous, docs/scaling.md)."""
    home = home_partition(partitions)
    of = _partition_of(state, partitions)
    cut = {
        name: list(
            zip(
                _split_ring(s.fine, of[0][name], partitions),
                _split_ring(s.coarse, of[0][name], partitions),
                strict=True,
            )
        )
        for name, s in state.slos.items()
    }
    return [
        take(config, state, slo_rows, lat_rows, p == home, {name: c[p] for name, c in cut.items()})
        for p, (slo_rows, lat_rows) in enumerate(_split_rows(of, partitions))
    ]


def apply(target: Aggregator, piece: AggregatorState) -> None:
    """Add a piece of a partial to ``target`` (an aggregator of the same config): restored into a fresh
    uncapped aggregator, then merged, so ``target``'s caps decide the rows of new keys.

    Raises `PartialError` if the piece was made for other SLO specs (it would restore as empty)."""
    scratch = fresh(target.config)
    report = scratch.restore_state(piece)
    if report.fresh or report.dropped or (piece.latency is not None) != report.latency_restored:
        raise PartialError(
            f"partial made for other SLOs: not restored {list(report.fresh)}, unknown {list(report.dropped)}"
        )
    target.merge(scratch)
