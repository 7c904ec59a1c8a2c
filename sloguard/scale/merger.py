"""Stage 2's state for one partials partition: the aggregator of its series and the ranges applied.

Pure: `Merger.offer` takes a decoded `Piece` and says what it did with it; the stage-2 runtime consumes,
checkpoints (`Merger.aggregator`'s state, `Merger.applied` and the partials offset, together) and exports
the series this partition owns (`owns`).

New pieces are held and added several at a time (`Merger.aggregator` adds the held ones before it hands
the aggregator out, so no reader sees a state without them): adding costs a few numpy calls per ring
whatever the number of pieces (`sloguard.scale.batch`: the cells of every SLO of every held piece are
worked out together, then one add per ring), so a batch of ``k`` pieces costs little more than one. The
state is the one adding them one by one gives: a ring keeps the buckets ``(head − n, head]`` of every
cell offered, ``head`` the newest offered, whatever the order (see `sloguard.scale.partials`); rows are
given to new keys piece by piece in order; every other counter is a sum, a minimum or a maximum.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from sloguard._types import I64, Bools, Intp
from sloguard.core.aggregator import Aggregator, LatencyAggregate, SloAggregate
from sloguard.core.exclusions import ExclusionCalendar
from sloguard.core.histring import HistRing
from sloguard.core.model import OVERFLOW
from sloguard.core.snapshot import SloCounts
from sloguard.core.spec import Config
from sloguard.core.state import HistRingState, LatencyState, RingState, SeriesState, SloState
from sloguard.core.windows import BucketRing
from sloguard.scale.applied import Applied, RangeKey, Verdict
from sloguard.scale.batch import add_runs, rows_of
from sloguard.scale.codec import COARSE, FINE, Body, Fingerprints, Parts, Piece, spec_fingerprints
from sloguard.scale.partials import NO_CAP, PartialError, latency_partition, series_partition

__all__ = ["Merger", "Refused", "held_bytes_each"]

#: Pieces held before they are added (`Merger.offer`): at most this many, and at most `Merger.held_limit`
#: bytes of decoded bodies (a piece holds its body's int64s: ~490 KiB for bench-scale's ~42 KiB format-4
#: records). A process's partitions share `HELD_BYTES` (`held_bytes_each`), each at least `HELD_MIN_BYTES`
#: and at most `HELD_MAX_BYTES`: bigger batches cost less per event while behind, because every flush
#: sorts the cells of the latency slots it writes again, those held included (bench-scale, 12 partitions
#: on one process: 4 MiB each cost ~0.4 µs a further input event, ~10 MiB each ~0.3 µs). The cap bounds
#: one flush, which holds the event loop (bench-scale's records: 5-12 ms a MiB, warm to cold).
HELD_PIECES = 64
HELD_BYTES = 128 << 20
HELD_MIN_BYTES = 4 << 20
HELD_MAX_BYTES = 16 << 20


def held_bytes_each(partitions: int) -> int:
    """The bytes of decoded bodies each of a process's ``partitions`` mergers holds at most."""
    return min(HELD_MAX_BYTES, max(HELD_MIN_BYTES, HELD_BYTES // max(1, partitions)))


#: The config `_spec_fingerprints` last saw and its fingerprints.
_last_fingerprints: list[tuple[Config, Fingerprints]] = []


def _spec_fingerprints(config: Config) -> Fingerprints:
    """`spec_fingerprints` of ``config``, once for all the mergers of one config (a stage-2 process makes
    one per partition it is assigned, at each rebalance: ``repr`` of every spec costs ~6 ms for
    bench-scale's 63 SLOs). The same object only: a reloaded config is another one."""
    if not _last_fingerprints or _last_fingerprints[0][0] is not config:
        _last_fingerprints[:] = [(config, spec_fingerprints(config))]
    return _last_fingerprints[0][1]


@dataclass(frozen=True, slots=True)
class Refused:
    """A piece this partition must not apply: made for another SLO file or another partition layout.

    Not recorded as applied: the runtime should stop applying this partition (and say so in the log and
    /readyz) until both stages run the same SLO file, rather than skip events."""

    reason: str


@dataclass
class Merger:
    """The series of partials partition ``partition`` (of ``partitions``) under SLO file ``fingerprint``."""

    config: Config
    fingerprint: bytes
    partition: int
    partitions: int
    _aggregator: Aggregator = field(init=False, repr=False, compare=False)
    applied: Applied = field(default_factory=Applied)
    #: Records per verdict (and refused), for self-metrics.
    counts: dict[str, int] = field(default_factory=dict)
    #: Per SLO (None: latency groups): the key list last seen (the index's own, append-only) and which
    #: of its keys this partition owns, so `owned_mask` hashes each key once, not at every tick.
    _owned: dict[str | None, tuple[Sequence[tuple[str, ...]], list[bool], Bools]] = field(
        default_factory=dict, repr=False, compare=False
    )
    #: Pieces applied so far. Change the aggregator only through `offer`.
    version: int = field(default=0, compare=False)
    #: Per SLO index: ``(version, fine bucket of now)`` and the counts captured then.
    captured: dict[int, tuple[tuple[int, int], SloCounts]] = field(
        default_factory=dict, repr=False, compare=False
    )

    #: Per SLO index: the `version` at which that SLO's state last changed (a piece with no counts for
    #: it and ring heads it already has leaves it as it was): `sloguard.scale.view` reuses a capture
    #: of the SLO while this and ``now`` aligned to its fine resolution are unchanged.
    slo_versions: dict[int, int] = field(default_factory=dict, repr=False, compare=False)
    #: The state fingerprints of the config's SLOs and latency groups (``repr`` of each spec, once).
    _fingerprints: Fingerprints = field(init=False, repr=False, compare=False)
    #: New pieces not added yet (in order), and the bytes they hold.
    _held: list[Parts] = field(default_factory=list, repr=False, compare=False)
    _held_bytes: int = field(default=0, repr=False, compare=False)
    #: Flush once the held bodies reach this many bytes (`held_bytes_each` of the partitions a process owns).
    held_limit: int = field(default=HELD_MIN_BYTES, repr=False, compare=False)
    #: Per SLO (None: latency groups): a series index's key list and the spans ``[lo, hi)`` of it that
    #: `_flush` appended, from pieces made for this partition (`owned_mask` needs no hash for those).
    _from_pieces: dict[str | None, tuple[Sequence[tuple[str, ...]], list[tuple[int, int]]]] = field(
        default_factory=dict, repr=False, compare=False
    )

    #: Per SLO, its rings' ``res_ms`` and ``n`` (fine, coarse): a piece's must be the same.
    _shapes: I64 = field(init=False, repr=False, compare=False)
    #: The SLOs with maintenance windows (their pieces are restored and merged one at a time).
    _calendared: frozenset[int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._aggregator = Aggregator(self.config)
        self._fingerprints = _spec_fingerprints(self.config)
        slos = self._aggregator.slos
        shapes = [[s.fine.res_ms, s.fine.n, s.coarse.res_ms, s.coarse.n] for s in slos]
        self._shapes = np.array(shapes, np.int64).reshape(len(slos), 4)
        self._calendared = frozenset(
            i
            for i, s in enumerate(slos)
            if ExclusionCalendar.for_slo(self.config.exclusions, s.spec) is not None
        )

    @property
    def aggregator(self) -> Aggregator:
        """The partition's aggregator, every piece offered so far added (held ones first). Read and change
        the state only through this."""
        self._flush()
        return self._aggregator

    def offer(self, piece: Piece) -> Verdict | Refused:
        """Apply ``piece`` unless it is a duplicate, a conflict, or refused (see `Verdict`, `Refused`)."""
        outcome = self._judge(piece)
        name = outcome.value if isinstance(outcome, Verdict) else "refused"
        self.counts[name] = self.counts.get(name, 0) + 1
        return outcome

    def _judge(self, piece: Piece) -> Verdict | Refused:
        if piece.fingerprint != self.fingerprint:
            return Refused(
                f"SLO file fingerprint {piece.fingerprint.hex()}, this process has {self.fingerprint.hex()}"
            )
        if (piece.partition, piece.partitions) != (self.partition, self.partitions):
            return Refused(
                f"made for partition {piece.partition} of {piece.partitions}, "
                f"read from partition {self.partition} of {self.partitions}"
            )
        r = piece.range
        key = RangeKey((r.topic, r.partition), r.start, r.end, piece.index, piece.count)
        verdict = self.applied.check(key)
        if verdict is Verdict.NEW:
            try:
                # (only a new piece is read past its header)
                parts = piece.parts(self.config, self._fingerprints)
                shapes = parts.slos.heads[:, [FINE, FINE + 1, COARSE, COARSE + 1]]
                if not np.array_equal(shapes, self._shapes):
                    raise PartialError("partial made for SLO rings of other resolutions or lengths")
            except PartialError as exc:
                return Refused(str(exc))
            self.version += 1
            self._held.append(parts)
            self._held_bytes += piece.body.ints.nbytes if isinstance(piece.body, Body) else 0
            if len(self._held) >= HELD_PIECES or self._held_bytes >= self.held_limit:
                self._flush()
            self.applied.record(key)
        return verdict

    def _flush(self) -> None:
        """Add the held pieces to the aggregator: what `sloguard.scale.partials.apply` of each in turn
        does (restore the piece into a fresh uncapped aggregator, merge that), all SLOs of all held
        pieces at once (`sloguard.scale.batch.add_runs`; an SLO with maintenance windows piece by piece,
        `_merge_one`), the latency groups one ``add`` per ring. Same state as `apply`, bucket by bucket
        (tests/unit/scale/test_merger.py)."""
        held = self._held
        if not held:
            return
        self._held, self._held_bytes = [], 0
        agg = self._aggregator
        before = self._key_lists()
        changed = add_runs(agg.slos, [p.slos for p in held], self._calendared)
        fps = self._fingerprints[0]
        for i in sorted(self._calendared):
            slo = agg.slos[i]
            for p in held:
                changed[i] = _merge_one(slo, p.slos.slo(i, fps[slo.spec.name]), self.config) or changed[i]
        for i in np.flatnonzero(changed).tolist():
            self.slo_versions[i] = self.version
        if agg.latency is not None:
            _merge_latency(agg.latency, [p.latency for p in held if p.latency is not None])
        self._note_from_pieces(before)
        st = agg.stats
        for piece in held:
            st.events += piece.events  # (a restored aggregator's ``unmatched`` is 0)
            for attr, pick in (("newest_ms", max), ("oldest_ms", min)):
                a, b = getattr(st, attr), getattr(piece, attr)
                setattr(st, attr, b if a is None else a if b is None else pick(a, b))

    def _key_lists(self) -> dict[str | None, tuple[Sequence[tuple[str, ...]], int]]:
        """Every series index's key list (None: the latency groups') and its length now."""
        agg = self._aggregator
        out: dict[str | None, tuple[Sequence[tuple[str, ...]], int]] = {
            s.spec.name: (s.series.keys, len(s.series.keys)) for s in agg.slos
        }
        if agg.latency is not None:
            out[None] = (agg.latency.series.keys, len(agg.latency.series.keys))
        return out

    def _note_from_pieces(self, before: dict[str | None, tuple[Sequence[tuple[str, ...]], int]]) -> None:
        """Record the keys a flush appended (`_from_pieces`): keys of pieces `_judge` accepted, made for
        this partition, and so owned by it (stage 1 cuts a range by `series_partition` /
        `latency_partition`, `sloguard.scale.partials.split`) -- save the ``__overflow__`` key a cap
        makes, which `owned_mask` still hashes. A list replaced meanwhile is not trusted at all."""
        for name, (keys, n) in self._key_lists().items():
            was, lo = before[name]
            if keys is not was or n == lo:
                continue
            seen = self._from_pieces.get(name)
            spans = seen[1] if seen is not None and seen[0] is keys else []
            if spans and spans[-1][1] == lo:  # (one span while nothing else appends keys)
                spans[-1] = (spans[-1][0], n)
            else:
                spans.append((lo, n))
            self._from_pieces[name] = (keys, spans)

    def owns(self, slo: str | None, key: tuple[str, ...]) -> bool:
        """Whether this partition exports series ``key`` of SLO ``slo`` (None: a latency group). Every
        partition's aggregator has the one series of an ungrouped SLO; only its owner exports it."""
        if slo is None:
            return latency_partition(key, self.partitions) == self.partition
        return series_partition(slo, key, self.partitions) == self.partition

    def owned_mask(self, slo: str | None, keys: Sequence[tuple[str, ...]]) -> Bools:
        """`owns` of each of ``keys`` (a series index's key list: it only grows, and a new index has a
        new list), computed once per key; without a hash for keys a flush added from pieces
        (`_note_from_pieces`: ~5 us a key, 0.13 s for bench-scale's 14k series at the first tick)."""
        seen = self._owned.get(slo)
        if seen is None or seen[0] is not keys:
            seen = (keys, [], np.zeros(0, np.bool_))
        flags, mask = seen[1], seen[2]
        if len(mask) != len(keys):
            start = len(flags)
            trusted = [False] * (len(keys) - start)
            seen_spans = self._from_pieces.get(slo)
            for lo, hi in seen_spans[1] if seen_spans is not None and seen_spans[0] is keys else ():
                lo, hi = max(lo, start) - start, hi - start
                if lo < hi:
                    trusted[lo:hi] = [True] * (hi - lo)
            # Hashed whatever their origin: the ungrouped SLO's () and any key with an ``__overflow__``
            # value (the cap's overflow key, which every partition past its cap has).
            flags.extend(
                (t and bool(k) and OVERFLOW not in k) or self.owns(slo, k)
                for k, t in zip(keys[start:], trusted, strict=True)
            )
            mask = np.array(flags, np.bool_)
        self._owned[slo] = (keys, flags, mask)
        return mask


def _known(series: SeriesState, index_keys: dict[tuple[str, ...], int]) -> bool:
    """Whether ``series`` (a piece's) adds nothing to an index: no events, and every key already there."""
    return not series.row_events.any() and all(k in index_keys for k in series.keys)


def _empty(saved: SloState, index_keys: dict[tuple[str, ...], int]) -> bool:
    """Whether an SLO's part of a piece only moves the rings: no cells, no counters, no new key."""
    return (
        not len(saved.fine.cells)
        and not len(saved.coarse.cells)
        and not saved.too_old
        and not saved.events
        and _known(saved.series, index_keys)
    )


def _move(ring: BucketRing | HistRing, state: RingState | HistRingState) -> bool:
    """What merging a restored ring without counts does (``merge_from``): move to its head, take its low.
    True if that changed the ring."""
    if state.head is None:
        return False
    before = (ring.head, ring.low)
    ring.advance(state.head)
    if state.low is not None:
        ring.low = state.low if ring.low is None else min(ring.low, state.low)
    return (ring.head, ring.low) != before


def _span(states: Sequence[RingState | HistRingState]) -> tuple[int | None, int | None]:
    """The newest head and the oldest low of ``states`` (None where none has one)."""
    heads = [s.head for s in states if s.head is not None]
    lows = [s.low for s in states if s.low is not None]
    return (max(heads) if heads else None), (min(lows) if lows else None)


def _merge_one(slo: SloAggregate, saved: SloState, config: Config) -> bool:
    """One piece's part, for an SLO with maintenance windows, added as `Aggregator.restore_state` then
    `merge` would (the windows drop the buckets they cover); True if the SLO's state changed."""
    if _empty(saved, slo.series.rows_by_key):
        moved = _move(slo.fine, saved.fine)
        return _move(slo.coarse, saved.coarse) or moved
    calendar = ExclusionCalendar.for_slo(config.exclusions, slo.spec)
    assert calendar is not None
    scratch = SloAggregate(slo.spec, calendar)
    scratch.series.cap = NO_CAP
    scratch.load(calendar.retroactive(saved))
    slo.merge(scratch)
    return True


def _merge_latency(lat: LatencyAggregate, parts: list[LatencyState]) -> None:
    """The latency groups' parts of the held pieces, merged into ``lat`` (as `_merge_slo`: restoring
    each and merging it, ``HistRing.merge_from``, comes down to moving each ring to the piece's head and
    adding its cells, rows renumbered; here all pieces' cells at once, one ``add_slots`` per ring)."""
    series = lat.series
    full = [
        s
        for s in parts
        if s.too_old or any(len(r.buckets) for r in s.rings) or not _known(s.series, series.rows_by_key)
    ]
    maps = [np.array(rows_of(series, s.series.keys), np.intp) for s in full]
    width = lat.rings[0].counts_len if lat.rings else 0
    # A piece's cell ``row · L + cell`` is ours at ``row_map[row] · L + cell``: the cell plus its row's
    # ``shift``.
    shifts = [_shift(m, width) for m in maps]
    for r, ring in enumerate(lat.rings):
        head, low = _span([s.rings[r] for s in parts])
        if head is None:
            continue
        ring.advance(head)
        hists = [
            (s.rings[r], shift) for s, shift in zip(full, shifts, strict=True) if len(s.rings[r].buckets)
        ]
        if hists:
            # Its count of too-old events is not wanted here: a piece's own ``too_old`` says how many
            # its cells lacked. (Piece by piece, then together: each pass on arrays still in cache.)
            ring.add_slots(
                np.concatenate([h.buckets for h, _ in hists]),
                np.concatenate([h.lengths for h, _ in hists]),
                np.concatenate(
                    [h.keys if shift is None else h.keys + shift[h.keys // width] for h, shift in hists]
                ),
                np.concatenate([h.counts for h, _ in hists]),
            )
        if low is not None:
            ring.low = low if ring.low is None else min(ring.low, low)
    if full:
        if len(series.row_events) < len(series.keys):
            grow = len(series.keys) - len(series.row_events)
            series.row_events = np.concatenate([series.row_events, np.zeros(grow, np.int64)])
        np.add.at(
            series.row_events,
            np.concatenate(maps),
            np.concatenate([s.series.row_events[: len(m)] for s, m in zip(full, maps, strict=True)]),
        )
        lat.too_old += sum(s.too_old for s in full)


def _shift(row_map: Intp, width: int) -> I64 | None:
    """What a piece's cells in each of its rows move by (rows of ``width`` cells, ``row_map`` ours for
    each); None when nothing moves (the piece's rows are ours: its cells are as they are)."""
    shift = (row_map - np.arange(len(row_map))) * width
    return shift if shift.any() else None
