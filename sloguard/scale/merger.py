"""Stage 2's state for one partials partition: the aggregator of its series and the ranges applied.

Pure: `Merger.offer` takes a decoded `Piece` and says what it did with it; the stage-2 runtime consumes,
checkpoints (`Merger.aggregator`'s state, `Merger.applied` and the partials offset, together) and exports
the series this partition owns (`owns`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from sloguard._types import Bools
from sloguard.core.aggregator import Aggregator, _LatencyState, _SloState
from sloguard.core.exclusions import ExclusionCalendar
from sloguard.core.histring import HistRing
from sloguard.core.snapshot import SloCounts
from sloguard.core.spec import Config
from sloguard.core.state import (
    AggregatorState,
    HistRingState,
    LatencyState,
    RingState,
    SeriesState,
    SloState,
)
from sloguard.core.windows import BucketRing
from sloguard.scale.applied import Applied, RangeKey, Verdict
from sloguard.scale.codec import Fingerprints, Piece, spec_fingerprints
from sloguard.scale.partials import NO_CAP, PartialError, latency_partition, series_partition

__all__ = ["Merger", "Refused"]


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
    aggregator: Aggregator = field(init=False)
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

    def __post_init__(self) -> None:
        self.aggregator = Aggregator(self.config)
        self._fingerprints = spec_fingerprints(self.config)

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
                state = piece.state(self.config, self._fingerprints)
            except PartialError as exc:
                return Refused(str(exc))
            self.version += 1
            self._apply(state)
            self.applied.record(key)
        return verdict

    def _apply(self, piece: AggregatorState) -> None:
        """Add ``piece`` to the aggregator: what `sloguard.scale.partials.apply` does (restore the piece
        into a fresh uncapped aggregator, merge that), SLO by SLO, and only where the piece holds counts
        or moves the rings. Most SLOs of a small piece hold nothing for this partition (the piece only
        carries their ring heads): for them, merging a restored empty state comes down to moving each
        ring's head and low, which is done directly; the others are restored and merged as before, one
        SLO at a time (a scratch `_SloState`, not a whole aggregator). Same state as `apply`, bucket by
        bucket (tests/unit/scale/test_merger.py).

        Raises `PartialError` if the piece was made for other SLO specs (it would restore as empty)."""
        agg = self.aggregator
        slo_fps, latency_fp = self._fingerprints
        saved = piece.slos
        if saved.keys() != slo_fps.keys() or any(saved[n].fingerprint != fp for n, fp in slo_fps.items()):
            fresh = [n for n, fp in slo_fps.items() if n not in saved or saved[n].fingerprint != fp]
            raise PartialError(
                f"partial made for other SLOs: not restored {fresh}, unknown {sorted(saved.keys() - slo_fps)}"
            )
        lat = piece.latency
        if (lat is not None) != (latency_fp is not None) or (
            lat is not None and lat.fingerprint != latency_fp
        ):
            raise PartialError("partial made for other latency groups")
        for i, slo in enumerate(agg.slos):
            if _merge_slo(slo, saved[slo.spec.name], self.config):
                self.slo_versions[i] = self.version
        if lat is not None and agg.latency is not None:
            _merge_latency(agg.latency, lat)
        st = agg.stats
        st.events += piece.events  # (a restored aggregator's ``unmatched`` is 0)
        for attr, pick in (("newest_ms", max), ("oldest_ms", min)):
            a, b = getattr(st, attr), getattr(piece, attr)
            setattr(st, attr, b if a is None else a if b is None else pick(a, b))

    def owns(self, slo: str | None, key: tuple[str, ...]) -> bool:
        """Whether this partition exports series ``key`` of SLO ``slo`` (None: a latency group). Every
        partition's aggregator has the one series of an ungrouped SLO; only its owner exports it."""
        if slo is None:
            return latency_partition(key, self.partitions) == self.partition
        return series_partition(slo, key, self.partitions) == self.partition

    def owned_mask(self, slo: str | None, keys: Sequence[tuple[str, ...]]) -> Bools:
        """`owns` of each of ``keys`` (a series index's key list: it only grows, and a new index has a
        new list), computed once per key."""
        seen = self._owned.get(slo)
        if seen is None or seen[0] is not keys:
            seen = (keys, [], np.zeros(0, np.bool_))
        flags, mask = seen[1], seen[2]
        if len(mask) != len(keys):
            flags.extend(self.owns(slo, k) for k in keys[len(flags) :])
            mask = np.array(flags, np.bool_)
        self._owned[slo] = (keys, flags, mask)
        return mask


def _known(series: SeriesState, index_keys: dict[tuple[str, ...], int]) -> bool:
    """Whether ``series`` (a piece's) adds nothing to an index: no events, and every key already there."""
    return not series.row_events.any() and all(k in index_keys for k in series.keys)


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


def _merge_slo(slo: _SloState, saved: SloState, config: Config) -> bool:
    """Merge one SLO's part of a piece into ``slo`` (as `Aggregator.restore_state` then `merge` would);
    True if its state changed."""
    if (
        not len(saved.fine.cells)
        and not len(saved.coarse.cells)
        and not saved.too_old
        and not saved.events
        and _known(saved.series, slo.series.rows_by_key)
    ):
        moved = _move(slo.fine, saved.fine)
        return _move(slo.coarse, saved.coarse) or moved
    calendar = ExclusionCalendar.for_slo(config.exclusions, slo.spec)
    if calendar is not None:
        # Maintenance windows drop the piece's buckets they cover: as `restore_state` would.
        scratch = _SloState(slo.spec, calendar)
        scratch.series.cap = NO_CAP
        scratch.load(calendar.retroactive(saved))
        slo.merge(scratch)
        return True
    # `_SloState.merge` of the piece restored, without restoring it: rings by their cells.
    series = slo.series
    row_map = np.array([series.row_for_key(k) for k in saved.series.keys], np.intp)
    rows = len(series)
    # The piece's keys are distinct, so are their rows, but for keys that share the overflow row.
    over = series.overflow_row
    distinct = over is None or int(np.count_nonzero(row_map == over)) <= 1
    for ring, state in ((slo.fine, saved.fine), (slo.coarse, saved.coarse)):
        ring.ensure_rows(rows)
        ring.add_cells(state, row_map, distinct)
    if len(series.row_events) < rows:
        series.row_events = np.concatenate(
            [series.row_events, np.zeros(rows - len(series.row_events), np.int64)]
        )
    np.add.at(series.row_events, row_map, saved.series.row_events[: len(row_map)])
    slo.too_old += saved.too_old
    slo.events += saved.events
    if slo.judged is not None:
        slo.judged.forget()
    return True


def _merge_latency(lat: _LatencyState, saved: LatencyState) -> None:
    """The latency groups' part of a piece, merged into ``lat`` (the same shortcut as `_merge_slo`)."""
    if (
        not saved.too_old
        and not any(len(r.buckets) for r in saved.rings)
        and _known(saved.series, lat.series.rows_by_key)
    ):
        for ring, state in zip(lat.rings, saved.rings, strict=True):
            _move(ring, state)
        return
    scratch = _LatencyState(lat.spec)
    scratch.series.cap = NO_CAP
    scratch.load(saved)
    lat.merge(scratch)
